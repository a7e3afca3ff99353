package sshkeys

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flint-dev/flint/internal/rootfs"
	"github.com/flint-dev/flint/internal/testenv"
)

// sshd -T is skipped where it cannot start: with no host key at all it
// exits before printing the configuration (checked here with the real
// sshd), so the root's files are read instead, without a process start.
func TestSSHDTestModeIsNotStartedWithoutAHostKey(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string
		want  bool
	}{
		{"a first boot: no key yet", map[string]string{"etc/ssh/sshd_config": "Include /etc/ssh/sshd_config.d/*.conf\n"}, false},
		{"only a public half", map[string]string{"etc/ssh/ssh_host_rsa_key.pub": "x"}, false},
		{"a default key", map[string]string{"etc/ssh/ssh_host_ed25519_key": "x"}, true},
		{"keys the image names itself", map[string]string{"etc/ssh/sshd_config": "HostKey /etc/ssh/keys/host\n"}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			os.MkdirAll(filepath.Join(dir, "etc/ssh"), 0o755)
			for p, s := range c.files {
				os.WriteFile(filepath.Join(dir, p), []byte(s), 0o600)
			}
			r, err := rootfs.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if got := sshdCanTest(r); got != c.want {
				t.Errorf("sshdCanTest = %v, want %v", got, c.want)
			}
		})
	}

	t.Run("the real sshd -T refuses without a host key", func(t *testing.T) {
		sshd := testenv.SSHD(t)
		dir := t.TempDir()
		key := filepath.Join(dir, "ssh_host_ed25519_key")
		cfg := filepath.Join(dir, "sshd_config")
		os.WriteFile(cfg, []byte("HostKey "+key+"\nAuthorizedKeysFile .ssh/k2\n"), 0o600)
		test := func() (string, error) {
			out, err := exec.Command(sshd, "-T", "-f", cfg, "-C", "user=root,host=localhost,addr=127.0.0.1").CombinedOutput()
			return string(out), err
		}
		if out, err := test(); err == nil || !strings.Contains(out, "no hostkeys available") {
			t.Fatalf("sshd -T without a host key: %v\n%s", err, out)
		}
		k, err := GenerateHostKey("ed25519", "")
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(key, k.Private, 0o600)
		if out, err := test(); err != nil || !strings.Contains(out, "authorizedkeysfile .ssh/k2") {
			t.Fatalf("sshd -T with a host key: %v\n%s", err, out)
		}
	})
}

// sshd -T is asked only where a Match block sets AuthorizedKeysFile: the
// files alone say what it would print otherwise.
func TestSSHDTestModeOnlyWhereAMatchBlockSetsTheKeysFile(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string
		want  bool
	}{
		{"Debian's: an Include, nothing set", map[string]string{"etc/ssh/sshd_config": "Include /etc/ssh/sshd_config.d/*.conf\nKbdInteractiveAuthentication no\n"}, false},
		{"set outside Match", map[string]string{"etc/ssh/sshd_config": "AuthorizedKeysFile .ssh/k2\nMatch User git\n  PasswordAuthentication no\n"}, false},
		{"set in a Match block", map[string]string{"etc/ssh/sshd_config": "Match User git\n  AuthorizedKeysFile /srv/git/keys\n"}, true},
		{"set in an included drop-in's Match block", map[string]string{
			"etc/ssh/sshd_config":            "Include sshd_config.d/*.conf\n",
			"etc/ssh/sshd_config.d/git.conf": "Match Group git\nAuthorizedKeysFile=/srv/git/keys\n",
		}, true},
		{"a drop-in included inside a Match block", map[string]string{
			"etc/ssh/sshd_config":        "Match User git\n  Include /etc/ssh/git.conf\n",
			"etc/ssh/git.conf":           "AuthorizedKeysFile /srv/git/keys\n",
			"etc/ssh/sshd_config.d/x.cf": "AuthorizedKeysFile elsewhere\n",
		}, true},
		{"no sshd_config", map[string]string{}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			for p, s := range c.files {
				os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755)
				os.WriteFile(filepath.Join(dir, p), []byte(s), 0o600)
			}
			r, err := rootfs.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if got := matchSets(r, "etc/ssh/sshd_config", "authorizedkeysfile"); got != c.want {
				t.Errorf("matchSets = %v, want %v", got, c.want)
			}
		})
	}
}
