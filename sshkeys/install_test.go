package sshkeys_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/flint-dev/flint/internal/accounts"
	"github.com/flint-dev/flint/internal/rootfs"
	"github.com/flint-dev/flint/internal/testenv"
	"github.com/flint-dev/flint/sshkeys"
)

// homeRoot is a temp root with etc/shadow and a home for the current uid.
func homeRoot(t *testing.T) (*rootfs.Root, accounts.User) {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"etc/ssh", "home/admin"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, "etc/shadow"), []byte("root:SECRET:1::::::\n"), 0o600)
	r, err := rootfs.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, accounts.User{Name: "admin", UID: os.Getuid(), GID: os.Getgid(), Home: "/home/admin"}
}

func mustKeys(t *testing.T, text string) []sshkeys.Key {
	t.Helper()
	k, p := sshkeys.Parse("t", text)
	if len(p) > 0 {
		t.Fatal(p)
	}
	return k
}

func mode(t *testing.T, p string) (os.FileMode, int) {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode(), int(fi.Sys().(*syscall.Stat_t).Uid)
}

func TestInstallCreatesPrivateFilesAndKeepsHandAddedKeys(t *testing.T) {
	r, u := homeRoot(t)
	rel := "home/admin/.ssh/authorized_keys"
	res, err := sshkeys.Install(r, u, rel, mustKeys(t, alice))
	if err != nil || res.Added != 1 || !res.Wrote {
		t.Fatalf("first install: %+v %v", res, err)
	}
	if m, uid := mode(t, r.Path("home/admin/.ssh")); m.Perm() != 0o700 || !m.IsDir() || uid != u.UID {
		t.Errorf(".ssh mode %v uid %d", m, uid)
	}
	if m, uid := mode(t, r.Path(rel)); m.Perm() != 0o600 || uid != u.UID {
		t.Errorf("authorized_keys mode %v uid %d", m, uid)
	}
	// A person adds a key by hand; the next instance brings another.
	f, _ := os.OpenFile(r.Path(rel), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("# my laptop\n" + bob + "\n")
	f.Close()
	res, err = sshkeys.Install(r, u, rel, mustKeys(t, alice+"\n"+otherKey))
	if err != nil || res.Added != 1 {
		t.Fatalf("second install: %+v %v", res, err)
	}
	got, _ := os.ReadFile(r.Path(rel))
	if want := alice + "\n# my laptop\n" + bob + "\n" + otherKey + "\n"; string(got) != want {
		t.Fatalf("file = %q, want %q", got, want)
	}
	// Nothing new: nothing written.
	res, err = sshkeys.Install(r, u, rel, mustKeys(t, otherKey))
	if err != nil || res.Wrote || res.Added != 0 {
		t.Fatalf("third install: %+v %v", res, err)
	}
}

func TestSymlinkAttacksAreRefusedAndNothingIsWrittenOutsideTheHome(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, r *rootfs.Root)
	}{
		{"~/.ssh pointing at /etc", func(t *testing.T, r *rootfs.Root) {
			os.Symlink("/etc", r.Path("home/admin/.ssh"))
		}},
		{"~/.ssh pointing at /etc relatively", func(t *testing.T, r *rootfs.Root) {
			os.Symlink("../../etc", r.Path("home/admin/.ssh"))
		}},
		{"authorized_keys pointing at /etc/shadow", func(t *testing.T, r *rootfs.Root) {
			os.Mkdir(r.Path("home/admin/.ssh"), 0o700)
			os.Symlink("/etc/shadow", r.Path("home/admin/.ssh/authorized_keys"))
		}},
		{"authorized_keys pointing at the host's /etc/shadow by full path", func(t *testing.T, r *rootfs.Root) {
			os.Mkdir(r.Path("home/admin/.ssh"), 0o700)
			os.Symlink(r.Path("etc/shadow"), r.Path("home/admin/.ssh/authorized_keys"))
		}},
		{"the home directory itself a symlink", func(t *testing.T, r *rootfs.Root) {
			os.Remove(r.Path("home/admin"))
			os.Symlink("/etc", r.Path("home/admin"))
		}},
		{"authorized_keys a hard-to-read FIFO", func(t *testing.T, r *rootfs.Root) {
			os.Mkdir(r.Path("home/admin/.ssh"), 0o700)
			syscall.Mkfifo(r.Path("home/admin/.ssh/authorized_keys"), 0o600)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is refused", func(t *testing.T) {
			r, u := homeRoot(t)
			tt.setup(t, r)
			before := snapshot(t, r.Path("etc"))
			_, err := sshkeys.Install(r, u, "home/admin/.ssh/authorized_keys", mustKeys(t, alice))
			if err == nil {
				t.Fatal("install succeeded")
			}
			if !strings.Contains(tt.name, "FIFO") && !errors.Is(err, rootfs.ErrSymlink) {
				t.Errorf("error does not say symlink: %v", err)
			}
			if after := snapshot(t, r.Path("etc")); after != before {
				t.Errorf("etc changed:\n%s\n→\n%s", before, after)
			}
		})
	}
}

// snapshot lists a directory's files with their sizes and modes.
func snapshot(t *testing.T, dir string) string {
	var b strings.Builder
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil {
			c, _ := os.ReadFile(p)
			b.WriteString(p + " " + fi.Mode().String() + " " + string(c) + "\n")
		}
		return nil
	})
	return b.String()
}

func TestWrongOwnershipIsRepairedInsideTheHomeAndRefusedForTheHome(t *testing.T) {
	testenv.Root(t)
	r, u := homeRoot(t)
	u.UID, u.GID = 1234, 1234
	os.Chown(r.Path("home/admin"), 1234, 1234)
	os.Mkdir(r.Path("home/admin/.ssh"), 0o777)
	os.Chmod(r.Path("home/admin/.ssh"), 0o777)
	os.WriteFile(r.Path("home/admin/.ssh/authorized_keys"), []byte(alice+"\n"), 0o666)
	os.Chmod(r.Path("home/admin/.ssh/authorized_keys"), 0o666)
	res, err := sshkeys.Install(r, u, "home/admin/.ssh/authorized_keys", mustKeys(t, alice))
	if err != nil || len(res.Repaired) < 2 {
		t.Fatalf("install: %+v %v", res, err)
	}
	if m, uid := mode(t, r.Path("home/admin/.ssh")); m.Perm() != 0o700 || uid != 1234 {
		t.Errorf(".ssh not repaired: %v uid %d", m, uid)
	}
	if m, uid := mode(t, r.Path("home/admin/.ssh/authorized_keys")); m.Perm() != 0o600 || uid != 1234 {
		t.Errorf("authorized_keys not repaired: %v uid %d", m, uid)
	}
	// A home that belongs to somebody else is not taken over.
	os.Chown(r.Path("home/admin"), 4321, 4321)
	_, err = sshkeys.Install(r, u, "home/admin/.ssh/authorized_keys", mustKeys(t, bob))
	if err == nil || !strings.Contains(err.Error(), "owned by uid 4321") {
		t.Fatalf("home of another owner: %v", err)
	}
}

func TestAuthorizedKeysFileFollowsTheRootsSSHDConfig(t *testing.T) {
	u := accounts.User{Name: "admin", UID: 1000, Home: "/home/admin"}
	tests := []struct {
		name, main, dropin, want string
	}{
		{"no sshd_config gives the default", "", "", "home/admin/.ssh/authorized_keys"},
		{"the first of several files", "AuthorizedKeysFile .ssh/ak2 .ssh/authorized_keys\n", "", "home/admin/.ssh/ak2"},
		{"tokens are expanded", "AuthorizedKeysFile /etc/ssh/keys/%u/%U_%%\n", "", "etc/ssh/keys/admin/1000_%"},
		{"an earlier Include wins", "Include /etc/ssh/sshd_config.d/*.conf\nAuthorizedKeysFile .ssh/main\n", "AuthorizedKeysFile %h/.ssh/dropin\n", "home/admin/.ssh/dropin"},
		{"Match blocks do not apply to everyone", "Match user bob\n  AuthorizedKeysFile .ssh/bob\n", "", "home/admin/.ssh/authorized_keys"},
		{"none means no file", "AuthorizedKeysFile none\n", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			os.MkdirAll(filepath.Join(dir, "etc/ssh/sshd_config.d"), 0o755)
			if tt.main != "" {
				os.WriteFile(filepath.Join(dir, "etc/ssh/sshd_config"), []byte(tt.main), 0o644)
			}
			if tt.dropin != "" {
				os.WriteFile(filepath.Join(dir, "etc/ssh/sshd_config.d/10-x.conf"), []byte(tt.dropin), 0o644)
			}
			r := mustRoot(t, dir)
			got, _, err := sshkeys.AuthorizedKeysFile(context.Background(), r, u)
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
