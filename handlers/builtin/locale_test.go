package builtin

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/handlers/handlerstest"
	"github.com/flint-dev/flint/internal/testenv"
)

// planInstance is an instance whose root holds files (path: content) and
// the user-data ud.
func planInstance(t testing.TB, ud string, files map[string]string) *instance {
	t.Helper()
	in := newInstance(t)
	for rel, content := range files {
		p := filepath.Join(in.Root, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	in.Emu.Set("user-data", []byte(ud))
	return in
}

// notLiveOnly runs the named handlers and final-message without --live:
// the files are written, the programs planned.
func notLiveOnly(names ...string) func(*handlers.Setup) {
	return func(s *handlers.Setup) { s.Live = false; s.Only = append(names, "final-message") }
}

// wantOneFailedLine checks that handler name failed with one line holding
// reason, the run is degraded and final-message still ran.
func wantOneFailedLine(t *testing.T, st *handlers.Status, out, name, reason string) {
	t.Helper()
	r := handlerstest.Result(st, name)
	if r.Status != handlers.ResultFailed || !strings.Contains(r.Reason, reason) || strings.Contains(r.Reason, "\n") {
		t.Fatalf("%s %s: %q, want one failed line with %q\n%s", name, r.Status, r.Reason, reason, out)
	}
	if st.State != "degraded" {
		t.Errorf("run is %s, want degraded", st.State)
	}
	if r := handlerstest.Result(st, "final-message"); r.Status != handlers.ResultOK {
		t.Errorf("final-message %s after the failure, want ok", r.Status)
	}
}

var localeRoot = map[string]string{
	"etc/default/locale":       "LANG=C.UTF-8\n",
	"etc/locale.gen":           "# de_DE.UTF-8 UTF-8\n# en_US.UTF-8 UTF-8\n",
	"usr/share/i18n/SUPPORTED": "de_DE.UTF-8 UTF-8\nen_US.UTF-8 UTF-8\n",
	"usr/sbin/locale-gen":      "#!/bin/sh\n",
}

func TestLocaleWritesTheLocaleFilesAndPlansLocaleGen(t *testing.T) {
	in := planInstance(t, "#cloud-config\nlocale: de_DE.UTF-8\n", localeRoot)
	st, out := in.Run(t, notLiveOnly("locale"))
	r := handlerstest.Result(st, "locale")
	if r.Status != handlers.ResultPlanned || !strings.Contains(r.Reason, "locale-gen") {
		t.Fatalf("locale %s: %s, want locale-gen planned\n%s", r.Status, r.Reason, out)
	}
	if got, want := in.ReadFile(t, "etc/default/locale"), "LANG=de_DE.UTF-8\n"; got != want {
		t.Errorf("etc/default/locale = %q, want %q (as update-locale writes it)", got, want)
	}
	if got := in.ReadFile(t, "etc/locale.gen"); !strings.Contains(got, "\nde_DE.UTF-8 UTF-8") && !strings.HasPrefix(got, "de_DE.UTF-8 UTF-8") {
		t.Errorf("de_DE not enabled in locale.gen:\n%s", got)
	}
}

func TestLocaleBadInputIsOneLineAndNothingIsWritten(t *testing.T) {
	in := planInstance(t, "#cloud-config\nlocale: xx_YY.UTF-8\n", localeRoot)
	st, out := in.Run(t, notLiveOnly("locale"))
	wantOneFailedLine(t, st, out, "locale", `"xx_YY.UTF-8" is not a locale this system can build`)
	if got := in.ReadFile(t, "etc/default/locale"); got != localeRoot["etc/default/locale"] {
		t.Errorf("etc/default/locale changed: %q", got)
	}
}

func TestLocaleAskedOnAnImageWithoutLocalesSaysSo(t *testing.T) {
	in := planInstance(t, "#cloud-config\nlocale: de_DE.UTF-8\n", map[string]string{"etc/default/locale": "LANG=C.UTF-8\n"})
	st, out := in.Run(t, notLiveOnly("locale"))
	wantOneFailedLine(t, st, out, "locale", `"de_DE.UTF-8": the image has no locales to build it (no locale-gen`)
	if got := in.ReadFile(t, "etc/default/locale"); got != "LANG=C.UTF-8\n" {
		t.Errorf("etc/default/locale changed: %q", got)
	}
}

func TestLocaleWithoutAKeyLeavesAnImageWithoutLocaleGenAlone(t *testing.T) {
	in := planInstance(t, "#cloud-config\n{}\n", nil)
	st, out := in.Run(t, notLiveOnly("locale"))
	if r := handlerstest.Result(st, "locale"); r.Status != handlers.ResultOK {
		t.Fatalf("locale %s: %s\n%s", r.Status, r.Reason, out)
	}
	if _, err := os.Stat(filepath.Join(in.Root, "etc/default/locale")); err == nil {
		t.Error("etc/default/locale written on an image without locales")
	}
}

func TestLocaleLiveRunsTheImagesLocaleGenInTheRoot(t *testing.T) {
	testenv.Root(t)
	files := map[string]string{}
	for k, v := range localeRoot {
		files[k] = v
	}
	// The image's locale-gen, which sees the enabled line once chrooted.
	files["usr/sbin/locale-gen"] = "#!/bin/sh\ngrep '^de_DE' /etc/locale.gen > /built\n"
	in := planInstance(t, "#cloud-config\nlocale: de_DE.UTF-8\n", files)
	os.Chmod(filepath.Join(in.Root, "usr/sbin/locale-gen"), 0o755)
	st, out := in.Run(t, func(s *handlers.Setup) { s.Only = []string{"locale"} })
	if r := handlerstest.Result(st, "locale"); r.Status != handlers.ResultOK {
		t.Fatalf("locale %s: %s\n%s", r.Status, r.Reason, out)
	}
	if got := in.ReadFile(t, "built"); got != "de_DE.UTF-8 UTF-8\n" {
		t.Errorf("locale-gen saw %q in locale.gen", got)
	}
}
