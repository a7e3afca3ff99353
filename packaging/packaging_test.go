package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/flint-dev/flint/internal/config"
	"github.com/flint-dev/flint/internal/testenv"
)

// verify runs systemd-analyze verify on units copied to a temp dir with
// ExecStart pointing at a real flint binary, and returns what it printed:
// systemd-analyze exits 0 on many problems, so silence is the pass mark.
func verify(t *testing.T, units map[string]string) string {
	t.Helper()
	sa := testenv.Tool(t, "systemd-analyze")
	bin := testenv.FlintBinary(t)
	dir := t.TempDir()
	var paths []string
	for name, text := range units {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(strings.ReplaceAll(text, "/usr/bin/flint", bin)), 0o644)
		paths = append(paths, p)
	}
	out, err := exec.Command(sa, append([]string{"verify", "--man=no"}, paths...)...).CombinedOutput()
	if err != nil {
		return string(out) + err.Error()
	}
	return string(out)
}

func readUnit(t *testing.T, name string) string {
	b, err := os.ReadFile(filepath.Join("systemd", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestUnitsPassSystemdAnalyzeVerify(t *testing.T) {
	units := map[string]string{}
	for _, n := range []string{"flint.service", "flint-network.service", "flint-events.service", "flint-local.service", "flint-host-keys.service"} {
		units[n] = readUnit(t, n)
	}
	if out := verify(t, units); out != "" {
		t.Fatalf("systemd-analyze verify:\n%s", out)
	}
	// The check itself must be able to fail.
	if out := verify(t, map[string]string{"bad.service": "[Service]\nType=notfy\nExecStart=/usr/bin/flint run\n"}); out == "" {
		t.Fatal("systemd-analyze verify accepted a unit with a bad Type=")
	}
}

func TestBootUnitOrdersKeysBeforeLoginAndOutlastsTheIMDSDeadline(t *testing.T) {
	u := readUnit(t, "flint.service")
	for _, want := range []string{"Type=notify", "After=network-online.target", "Wants=network-online.target"} {
		if !strings.Contains(u, want) {
			t.Errorf("flint.service lacks %q", want)
		}
	}
	before := regexp.MustCompile(`(?m)^Before=(.*)$`).FindStringSubmatch(u)
	if before == nil || !strings.Contains(before[1], "sshd.service") || !strings.Contains(before[1], "ssh.service") || !strings.Contains(before[1], "systemd-user-sessions.service") {
		t.Errorf("flint.service must run before sshd/ssh and user sessions: %v", before)
	}
	m := regexp.MustCompile(`(?m)^TimeoutStartSec=(\d+)min$`).FindStringSubmatch(u)
	if m == nil {
		t.Fatal("flint.service has no TimeoutStartSec=Nmin")
	}
	d, _ := time.ParseDuration(m[1] + "m")
	if deadline := time.Duration(config.Default().IMDS.Deadline); d <= deadline {
		t.Errorf("TimeoutStartSec %v does not outlast the IMDS deadline %v", d, deadline)
	}
}

func TestPackagedConfigIsValidAndMatchesTheDefaults(t *testing.T) {
	bin := testenv.FlintBinary(t)
	out, err := exec.Command(bin, "config", "check", "flint.yaml").CombinedOutput()
	if err != nil {
		t.Fatalf("flint config check packaging/flint.yaml: %v\n%s", err, out)
	}
	def, err := exec.Command(bin, "config", "check", "--root", t.TempDir()).CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	strip := func(s []byte) string { _, rest, _ := strings.Cut(string(s), "\n"); return rest }
	if strip(out) != strip(def) {
		t.Errorf("packaging/flint.yaml differs from the built-in defaults:\n--- file\n%s\n--- defaults\n%s", strip(out), strip(def))
	}
}
