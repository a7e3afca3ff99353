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

const aptOSRelease = "ID=debian\nVERSION_CODENAME=bookworm\n"

func aptUserData(key string) string {
	return "#cloud-config\napt:\n  primary: [{arches: [default], uri: 'http://mirror.example.test/debian'}]\n" +
		"  proxy: 'http://user:pr0xy-pass@proxy.example.test:3128'\n" +
		"  sources:\n    example:\n      source: 'deb [signed-by=$KEY_FILE] http://repo.example.test/apt $RELEASE main'\n" +
		"      key: |\n        " + strings.ReplaceAll(strings.TrimSpace(key), "\n", "\n        ") + "\n"
}

func TestAptWritesSourcesProxyAndKeys(t *testing.T) {
	key := testenv.ArmoredKey(t)
	in := planInstance(t, aptUserData(key), map[string]string{"etc/os-release": aptOSRelease, "etc/apt/sources.list": "deb http://old.example.test/debian bookworm main\n"})
	st, out := in.Run(t, notLiveOnly("apt"))
	if r := handlerstest.Result(st, "apt"); r.Status != handlers.ResultOK {
		t.Fatalf("apt %s: %s\n%s", r.Status, r.Reason, out)
	}
	if got := in.ReadFile(t, "etc/apt/sources.list"); !strings.Contains(got, "deb http://mirror.example.test/debian bookworm main") || strings.Contains(got, "old.example.test") {
		t.Errorf("sources.list not from the template with the primary mirror:\n%s", got)
	}
	if got := in.ReadFile(t, "etc/apt/apt.conf.d/90cloud-init-aptproxy"); !strings.Contains(got, `Acquire::http::Proxy "http://user:pr0xy-pass@proxy.example.test:3128";`) {
		t.Errorf("proxy file:\n%s", got)
	}
	src := in.ReadFile(t, "etc/apt/sources.list.d/example.list")
	if !strings.Contains(src, "[signed-by=/etc/apt/cloud-init.gpg.d/example.gpg] http://repo.example.test/apt bookworm main") {
		t.Errorf("example.list:\n%s", src)
	}
	if bin := in.ReadFile(t, "etc/apt/cloud-init.gpg.d/example.gpg"); len(bin) == 0 || bin[0]&0x80 == 0 {
		t.Errorf("the key is not a dearmored OpenPGP packet (%d bytes)", len(bin))
	}
	if strings.Contains(out, "pr0xy-pass") {
		t.Error("the proxy password is in the run log")
	}
}

func TestAptBadKeyIsOneLineAndNothingIsWritten(t *testing.T) {
	key := testenv.ArmoredKey(t)
	bad := strings.Replace(key, "\n=", "\nX", 1) // a broken armor checksum
	const list = "deb http://old.example.test/debian bookworm main\n"
	in := planInstance(t, aptUserData(bad), map[string]string{"etc/os-release": aptOSRelease, "etc/apt/sources.list": list})
	st, out := in.Run(t, notLiveOnly("apt"))
	wantOneFailedLine(t, st, out, "apt", "apt.sources.example.key")
	if got := in.ReadFile(t, "etc/apt/sources.list"); got != list {
		t.Errorf("sources.list changed though the apt configuration failed:\n%s", got)
	}
	for _, f := range []string{"etc/apt/apt.conf.d/90cloud-init-aptproxy", "etc/apt/sources.list.d/example.list", "etc/apt/cloud-init.gpg.d/example.gpg"} {
		if _, err := os.Stat(filepath.Join(in.Root, f)); err == nil {
			t.Errorf("%s written though the apt configuration failed", f)
		}
	}
	if strings.Contains(out, "pr0xy-pass") {
		t.Error("the proxy password is in the run log")
	}
}
