package image

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/flint-dev/flint/internal/rootfs"
)

func write(t *testing.T, root, rel, data string) {
	t.Helper()
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func open(t *testing.T, dir string) *rootfs.Root {
	t.Helper()
	r, err := rootfs.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func exists(p string) bool { _, err := os.Lstat(p); return err == nil }

// baked is a root as a bake-time run leaves it.
func baked(t *testing.T) string {
	root := t.TempDir()
	write(t, root, "etc/flint/flint.yaml", "")
	write(t, root, "var/lib/flint/instances/i-1/sem/host-keys", "x")
	write(t, root, "var/lib/flint/sem/plug.once", "x")
	os.Symlink("instances/i-1", filepath.Join(root, "var/lib/flint/instance"))
	write(t, root, "run/flint/status.json", "{}")
	write(t, root, "var/log/flint-output.log", "x")
	write(t, root, "var/log/flint-output.log.1", "x")
	write(t, root, "var/log/syslog", "kept")
	write(t, root, "etc/ssh/ssh_host_ed25519_key", "k")
	write(t, root, "etc/ssh/ssh_host_ed25519_key.pub", "k")
	write(t, root, "etc/ssh/sshd_config", "kept")
	write(t, root, "etc/machine-id", "0123456789abcdef0123456789abcdef\n")
	return root
}

func TestCleanRemovesWhatEachOptionNamesAndNothingElse(t *testing.T) {
	always := []string{"var/lib/flint", "run/flint"}
	for _, tc := range []struct {
		name    string
		o       Options
		removed []string
	}{
		{"with no options only the instance state goes", Options{}, always},
		{"--logs also removes the output log and its rotated copy", Options{Logs: true}, append(always, "var/log/flint-output.log", "var/log/flint-output.log.1")},
		{"--host-keys also removes every host key file", Options{HostKeys: true}, append(always, "etc/ssh/ssh_host_ed25519_key", "etc/ssh/ssh_host_ed25519_key.pub")},
		{"--machine-id also removes /etc/machine-id", Options{MachineID: true}, append(always, "etc/machine-id")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := baked(t)
			got, err := Clean(open(t, root), tc.o)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.removed) {
				t.Fatalf("removed %v, want %v", got, tc.removed)
			}
			for _, p := range tc.removed {
				if exists(filepath.Join(root, p)) {
					t.Errorf("%s still exists", p)
				}
			}
			for _, p := range []string{"var/log/syslog", "etc/ssh/sshd_config", "etc/flint/flint.yaml"} {
				if !exists(filepath.Join(root, p)) {
					t.Errorf("%s, not flint's instance state, was removed", p)
				}
			}
		})
	}
}

func TestCleanDryRunListsAndRemovesNothing(t *testing.T) {
	root := baked(t)
	got, err := Clean(open(t, root), Options{Logs: true, HostKeys: true, MachineID: true, DryRun: true})
	if err != nil || len(got) != 7 {
		t.Fatalf("dry run: %v, %v", got, err)
	}
	for _, p := range got {
		if !exists(filepath.Join(root, p)) {
			t.Errorf("dry run removed %s", p)
		}
	}
}

func TestCleanRefusesARootThatIsNotFlints(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files []string
	}{
		{"a home directory", []string{".bashrc", "etc/machine-id"}},
		{"a root without flint", []string{"etc/machine-id", "etc/ssh/ssh_host_rsa_key", "var/lib/cloud/x"}},
		{"a flint state directory outside a root filesystem", []string{"var/lib/flint/x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			for _, f := range tc.files {
				write(t, root, f, "mine")
			}
			if tc.name == "a flint state directory outside a root filesystem" {
				os.RemoveAll(filepath.Join(root, "etc"))
			}
			got, err := Clean(open(t, root), Options{Logs: true, HostKeys: true, MachineID: true})
			if !errors.Is(err, ErrNotFlints) || len(got) != 0 {
				t.Fatalf("Clean = %v, %v; want ErrNotFlints and nothing removed", got, err)
			}
			for _, f := range tc.files {
				if !exists(filepath.Join(root, f)) {
					t.Errorf("%s was removed", f)
				}
			}
		})
	}
}

func TestCleanNeverFollowsASymlinkOutOfTheRoot(t *testing.T) {
	outside := t.TempDir()
	write(t, outside, "precious", "x")
	write(t, outside, "lib/flint/precious", "x")
	root := t.TempDir()
	write(t, root, "etc/flint/flint.yaml", "")
	// Every path Clean removes, as a link to the host.
	os.MkdirAll(filepath.Join(root, "var/log"), 0o755)
	os.Symlink(filepath.Join(outside, "lib/flint"), filepath.Join(root, "var/lib"))
	os.Symlink(outside, filepath.Join(root, "run"))
	os.Symlink(filepath.Join(outside, "precious"), filepath.Join(root, "var/log/flint-output.log"))
	os.Symlink(filepath.Join(outside, "precious"), filepath.Join(root, "etc/machine-id"))
	os.Symlink(outside, filepath.Join(root, "etc/ssh"))
	Clean(open(t, root), Options{Logs: true, HostKeys: true, MachineID: true})
	for _, p := range []string{"precious", "lib/flint/precious"} {
		if !exists(filepath.Join(outside, p)) {
			t.Errorf("clean removed %s outside the root", p)
		}
	}
}
