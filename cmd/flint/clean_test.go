package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// handlerStatus reads the last run's status of each handler in root.
func handlerStatus(t *testing.T, root string) map[string]string {
	t.Helper()
	code, out, stderr := run("status", "--root", root, "--json")
	if code != 0 && code != 2 {
		t.Fatalf("flint status: exit %d: %s", code, stderr)
	}
	var st struct {
		Handlers []struct{ Name, Status string }
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, h := range st.Handlers {
		m[h.Name] = h.Status
	}
	return m
}

func TestABakeTimeRunCleanedLeavesTheNextRunAFirstBoot(t *testing.T) {
	_, url := emulator(t)
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc/flint"), 0o755)
	boot := func() map[string]string {
		t.Helper()
		if code, _, stderr := run("run", "--root", root, "--endpoint", url); code != 0 && code != 2 {
			t.Fatalf("flint run: exit %d: %s", code, stderr)
		}
		return handlerStatus(t, root)
	}
	perInstance := []string{"write-files", "host-keys", "timezone", "runcmd"}
	if st := boot(); st["host-keys"] != "ok" {
		t.Fatalf("bake-time run: host-keys %q", st["host-keys"])
	}
	if st := boot(); st["host-keys"] != "skipped" {
		t.Fatalf("second run of the same instance: host-keys %q, want skipped (the test's premise)", st["host-keys"])
	}
	os.WriteFile(filepath.Join(root, "var/lib/flint/sem/plug.once"), []byte("x"), 0o600)
	code, out, stderr := run("clean", "--root", root, "--logs", "--host-keys")
	if code != 0 {
		t.Fatalf("flint clean: exit %d: %s", code, stderr)
	}
	if !strings.Contains(out, "removed "+filepath.Join(root, "var/lib/flint")) {
		t.Errorf("flint clean did not say what it removed:\n%s", out)
	}
	for _, p := range []string{"var/lib/flint", "run/flint", "var/log/flint-output.log", "etc/ssh/ssh_host_ed25519_key"} {
		if _, err := os.Lstat(filepath.Join(root, p)); err == nil {
			t.Errorf("%s survived flint clean", p)
		}
	}
	st := boot()
	for _, h := range perInstance {
		if st[h] != "ok" {
			t.Errorf("after clean, per-instance %s: %q, want ok (a first boot)", h, st[h])
		}
	}
}

func TestCleanRefusesARootThatIsNotFlintsInOneLine(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/machine-id"), []byte("mine\n"), 0o644)
	code, _, stderr := run("clean", "--root", root, "--machine-id")
	if code != exitFail || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "not a root flint is installed in or ran in") || !strings.Contains(stderr, "nothing removed") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(root, "etc/machine-id")); err != nil {
		t.Fatal("machine-id of a root that is not flint's was removed")
	}
}
