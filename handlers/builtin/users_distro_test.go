package builtin

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/handlers/handlerstest"
)

// distroInstance is an account instance whose flint.yaml names no default
// user and whose image says which distribution it is.
func distroInstance(t *testing.T, osRelease string) *instance {
	t.Helper()
	in := acctInstance(t, "")
	in.Config(t, "")
	if osRelease != "" {
		os.MkdirAll(filepath.Join(in.Root, "usr/lib"), 0o755)
		os.WriteFile(filepath.Join(in.Root, "usr/lib/os-release"), []byte(osRelease), 0o644)
		os.Symlink("../usr/lib/os-release", filepath.Join(in.Root, "etc/os-release"))
	}
	return in
}

func TestWithoutADefaultUserADebianImageGetsAdmin(t *testing.T) {
	needAccountTools(t)
	in := distroInstance(t, "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n")
	st, out := acctRun(t, in, func(s *handlers.Setup) { s.Only = []string{"users", "ssh-keys"} })
	for _, name := range []string{"users", "ssh-keys"} {
		if r := handlerstest.Result(st, name); r.Status != handlers.ResultOK {
			t.Fatalf("%s = %s %q\n%s", name, r.Status, r.Reason, out)
		}
	}
	if notes := strings.Join(handlerstest.Result(st, "users").Notes, "\n"); !strings.Contains(notes, "default user admin: the distribution's (os-release ID debian)") {
		t.Errorf("users notes:\n%s", notes)
	}
	if p := in.ReadFile(t, "etc/passwd"); !strings.Contains(p, "admin:x:") || !strings.Contains(p, ":Debian:/home/admin:/bin/bash") {
		t.Errorf("etc/passwd:\n%s", p)
	}
	if g := in.ReadFile(t, "etc/group"); !strings.Contains(g, "sudo:x:27:admin") {
		t.Errorf("admin is not in sudo:\n%s", g)
	}
	if s := in.ReadFile(t, "etc/sudoers.d/90-flint-users"); !strings.Contains(s, "admin ALL=(ALL) NOPASSWD:ALL") {
		t.Errorf("sudoers: %q", s)
	}
	if k := in.ReadFile(t, "home/admin/.ssh/authorized_keys"); !strings.Contains(k, "alice@laptop") {
		t.Errorf("admin's keys: %q", k)
	}
	if k := in.ReadFile(t, "root/.ssh/authorized_keys"); !strings.Contains(k, `Please login as the user \"admin\"`) {
		t.Errorf("root's keys should send logins to admin: %q", k)
	}
}

func TestAnImageWithNoKnownDistributionGivesRootNoKeysAndSaysWhy(t *testing.T) {
	for _, tt := range []struct{ name, osRelease, why string }{
		{"an unknown ID", "ID=nixos\n", `os-release's ID "nixos"`},
		{"no os-release", "", "the image has no os-release"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			needAccountTools(t)
			in := distroInstance(t, tt.osRelease)
			st, out := acctRun(t, in, func(s *handlers.Setup) { s.Only = []string{"users", "ssh-keys"} })
			r := handlerstest.Result(st, "ssh-keys")
			if r.Status != handlers.ResultOK {
				t.Fatalf("ssh-keys = %s %q\n%s", r.Status, r.Reason, out)
			}
			notes := strings.Join(r.Notes, "\n")
			if !strings.Contains(notes, tt.why) || !strings.Contains(notes, "root: 2 instance keys not installed") {
				t.Errorf("ssh-keys notes:\n%s", notes)
			}
			if _, err := os.Stat(filepath.Join(in.Root, "root/.ssh/authorized_keys")); !os.IsNotExist(err) {
				t.Errorf("root got a key file: %v %q", err, in.ReadFile(t, "root/.ssh/authorized_keys"))
			}
			if p := in.ReadFile(t, "etc/passwd"); strings.Count(p, "\n") != 1 {
				t.Errorf("an account was guessed:\n%s", p)
			}
		})
	}
}
