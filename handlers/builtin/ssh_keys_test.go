package builtin

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/handlers/handlerstest"
)

// keysInstance is an instance whose image already has admin (uid 1000),
// so ssh-keys runs alone without useradd.
func keysInstance(t *testing.T, userData string) *instance {
	t.Helper()
	in := acctInstance(t, userData)
	f, _ := os.OpenFile(filepath.Join(in.Root, "etc/passwd"), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("admin:x:1000:1000::/home/admin:/bin/sh\n")
	f.Close()
	os.MkdirAll(filepath.Join(in.Root, "home/admin"), 0o755)
	os.Chown(filepath.Join(in.Root, "home/admin"), 1000, 1000)
	return in
}

func keysRun(t *testing.T, in *instance) (handlers.Result, string) {
	t.Helper()
	st, out := acctRun(t, in, func(s *handlers.Setup) { s.Only = []string{"ssh-keys"} })
	return handlerstest.Result(st, "ssh-keys"), out
}

func TestSymlinkedSSHPathsAreRefusedByTheHandler(t *testing.T) {
	tests := []struct {
		name  string
		setup func(home string)
	}{
		{"~/.ssh to /etc", func(home string) { os.Symlink("/etc", filepath.Join(home, ".ssh")) }},
		{"authorized_keys to /etc/shadow", func(home string) {
			os.Mkdir(filepath.Join(home, ".ssh"), 0o700)
			os.Symlink("/etc/shadow", filepath.Join(home, ".ssh/authorized_keys"))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := keysInstance(t, "")
			tt.setup(filepath.Join(in.Root, "home/admin"))
			shadow := in.ReadFile(t, "etc/shadow")
			before, _ := os.ReadDir(filepath.Join(in.Root, "etc"))
			r, out := keysRun(t, in)
			if r.Status != "failed" || !strings.Contains(r.Reason, "keys for admin: refused: a symlink") || strings.Contains(r.Reason, "\n") {
				t.Fatalf("ssh-keys = %s %q\n%s", r.Status, r.Reason, out)
			}
			if in.ReadFile(t, "etc/shadow") != shadow {
				t.Fatal("etc/shadow changed")
			}
			if after, _ := os.ReadDir(filepath.Join(in.Root, "etc")); len(after) != len(before) {
				t.Errorf("files appeared in etc: %v → %v", before, after)
			}
			// root's keys are still installed: one refused user does not stop the others.
			if !strings.Contains(in.ReadFile(t, "root/.ssh/authorized_keys"), "alice@laptop") {
				t.Error("root's keys not installed")
			}
		})
	}
}

func TestBadKeysAreReportedAndValidOnesInstalled(t *testing.T) {
	in := keysInstance(t, "#cloud-config\nssh_authorized_keys:\n  - ssh-foo AAAAB3NzaC1yc2E bad-type\n  - \""+handAdded+"\"\n")
	in.Emu.Set("meta-data/public-keys/0=alice/openssh-key", []byte(strings.Join([]string{
		"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO+kE/+KKx4mb6X truncated",
		"ssh-ed25519 " + strings.Repeat("A", 20<<10),
		"ssh-ed25519 AAAA\x00BBBB nul",
		newKey,
	}, "\n")))
	r, out := keysRun(t, in)
	if r.Status != "ok" {
		t.Fatalf("ssh-keys = %s %q\n%s", r.Status, r.Reason, out)
	}
	notes := strings.Join(r.Notes, "\n")
	for _, want := range []string{"truncated or corrupt", "longer than", "NUL", "unknown key type ssh-foo"} {
		if !strings.Contains(notes, want) {
			t.Errorf("no note about %q in:\n%s", want, notes)
		}
	}
	if len(notes) > 4000 {
		t.Errorf("notes quote too much: %d bytes", len(notes))
	}
	got := in.ReadFile(t, "home/admin/.ssh/authorized_keys")
	if want := newKey + "\n" + strings.TrimSpace(acctFixtureDeploy(t, in)) + "\n" + handAdded + "\n"; got != want {
		t.Fatalf("authorized_keys:\n%s\nwant\n%s", got, want)
	}
}

// acctFixtureDeploy is the fixture's second key (1=deploy).
func acctFixtureDeploy(t *testing.T, in *instance) string {
	t.Helper()
	return "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC2cvOgHI+bqiZR6OeScn50gYuXEI70C3fUABsTVHbnEPmOz1Av3TZB7+uO3EqtCLJ6Wz8mAbWFLMCcuoOyZVLir4sJSJn5yqdzuOF13ThJ16MWi84/6HpaMrhEM89qngdMOwkbRGl2svHBlUSCsiIyll9z226B2c14I4DEEcWWC7KaOhJlzWiP/ElsfBPfa0jCX/wYCPtebXcMJOWolnLNNfS7yuED1PjuAMJSn3X8/PFe3nIye9QTqyawzEc/nY54XIpVRyIe/PXKpE02TZA7v8aGmt99Ni3W1R79z5gS0FnKEXD0RaaCt/QX8gnaqx+g40Lh+vykyOgYLc/zrFDx deploy-key"
}

func TestDisableRootFalseGivesRootPlainKeys(t *testing.T) {
	in := keysInstance(t, "#cloud-config\ndisable_root: false\n")
	if r, out := keysRun(t, in); r.Status != "ok" {
		t.Fatalf("%s %q\n%s", r.Status, r.Reason, out)
	}
	got := in.ReadFile(t, "root/.ssh/authorized_keys")
	if strings.Contains(got, "command=") || !strings.HasPrefix(got, "ssh-ed25519 ") {
		t.Fatalf("root's keys: %q", got)
	}
}

func TestKeysGoWhereTheImagesSSHDConfigSays(t *testing.T) {
	in := keysInstance(t, "")
	os.MkdirAll(filepath.Join(in.Root, "etc/ssh"), 0o755)
	os.WriteFile(filepath.Join(in.Root, "etc/ssh/sshd_config"), []byte("AuthorizedKeysFile .ssh/authorized_keys2\n"), 0o644)
	if r, out := keysRun(t, in); r.Status != "ok" {
		t.Fatalf("%s %q\n%s", r.Status, r.Reason, out)
	}
	if !strings.Contains(in.ReadFile(t, "home/admin/.ssh/authorized_keys2"), "alice@laptop") {
		t.Fatal("keys not in the configured file")
	}
}
