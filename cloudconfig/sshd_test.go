package cloudconfig

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flint-dev/flint/internal/testenv"
)

const debianSSHDConfig = "Include /etc/ssh/sshd_config.d/*.conf\n\n#PermitRootLogin prohibit-password\nKbdInteractiveAuthentication no\nUsePAM yes\n"

func TestSSHPwauthWritesWhatCloudInitWrites(t *testing.T) {
	type refCase struct {
		Name       string  `json:"name"`
		Value      any     `json:"value"`
		SSHDConfig *string `json:"sshd_config"`
		DropIn     *string `json:"drop_in"`
	}
	str := func(s string) *string { return &s }
	cases := []refCase{
		{"true with a drop-in directory", true, str(debianSSHDConfig), nil},
		{"false with a drop-in directory", false, str(debianSSHDConfig), nil},
		{"string yes", "yes", str(debianSSHDConfig), nil},
		{"string Off", "Off", str(debianSSHDConfig), nil},
		{"the drop-in already says so", true, str(debianSSHDConfig), str("PasswordAuthentication yes\n")},
		{"the drop-in says otherwise", false, str(debianSSHDConfig), str("# kept\nPasswordAuthentication   yes\nX11Forwarding=no\n")},
		{"no include: sshd_config itself", true, str("  # a comment  \nPort 22\nPasswordAuthentication no\nBanner\n\n"), nil},
		{"no include, key missing", false, str("Port 22"), nil},
		{"no sshd_config at all", true, nil, nil},
		{"unchanged", "unchanged", str(debianSSHDConfig), nil},
	}
	var ref map[string]struct {
		Files     map[string]string `json:"files"`
		Restarted bool              `json:"restarted"`
	}
	runReference(t, "sshd_ref.py", cases, &ref)
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			in := SSHPwauthInput{Value: c.Value, Present: true}
			want := map[string]string{}
			if c.SSHDConfig != nil {
				in.SSHDConfig = []byte(*c.SSHDConfig)
				want["/etc/ssh/sshd_config"] = *c.SSHDConfig
			}
			if c.DropIn != nil {
				in.DropIn = []byte(*c.DropIn)
				want["/etc/ssh/sshd_config.d/50-cloud-init.conf"] = *c.DropIn
			}
			f, restart, err := SSHPwauth(in)
			if err != nil {
				t.Fatal(err)
			}
			if f != nil {
				want[f.Path] = string(f.Content)
			}
			r := ref[c.Name]
			for name, content := range r.Files {
				p := "/etc/ssh/" + name
				if want[p] != content {
					t.Errorf("%s: flint %q, cloud-init %q", p, want[p], content)
				}
				delete(want, p)
			}
			if len(want) != 0 || restart != r.Restarted {
				t.Errorf("flint also writes %v; restart %v, cloud-init %v", want, restart, r.Restarted)
			}
		})
	}
}

func TestSSHPwauthOddValuesAndARealSSHD(t *testing.T) {
	_, _, err := SSHPwauth(SSHPwauthInput{Present: true, Value: "maybe", SSHDConfig: []byte(debianSSHDConfig)})
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Key != "ssh_pwauth" || !strings.Contains(err.Error(), "left unchanged") {
		t.Fatalf("got %v", err)
	}
	if f, _, err := SSHPwauth(SSHPwauthInput{Present: false, Value: true}); f != nil || err != nil {
		t.Fatalf("no key: %v %v", f, err)
	}

	// sshd itself accepts the drop-in: sshd -t on a config that includes it.
	sshd := testenv.SSHD(t)
	dir := t.TempDir()
	for _, v := range []any{true, false} {
		f, _, err := SSHPwauth(SSHPwauthInput{Present: true, Value: v, SSHDConfig: []byte(debianSSHDConfig)})
		if err != nil || f == nil {
			t.Fatalf("%v: %v %v", v, f, err)
		}
		dropIn := filepath.Join(dir, filepath.Base(f.Path))
		os.WriteFile(dropIn, f.Content, 0o600)
		key := filepath.Join(dir, "hostkey")
		if _, err := os.Stat(key); err != nil {
			if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
				t.Fatalf("ssh-keygen: %v %s", err, out)
			}
		}
		main := filepath.Join(dir, "sshd_config")
		os.WriteFile(main, []byte("Include "+dropIn+"\nHostKey "+key+"\nPasswordAuthentication "+map[bool]string{true: "no", false: "yes"}[v == true]+"\n"), 0o600)
		out, err := exec.Command(sshd, "-T", "-f", main, "-C", "user=root,host=h,addr=127.0.0.1").CombinedOutput()
		if err != nil {
			t.Fatalf("sshd -T: %v %s", err, out)
		}
		want := "passwordauthentication " + map[bool]string{true: "yes", false: "no"}[v == true]
		if !strings.Contains(string(out), want+"\n") {
			t.Fatalf("sshd does not see %q from the drop-in (it comes first):\n%s", want, out)
		}
		if out, err := exec.Command(sshd, "-t", "-f", main).CombinedOutput(); err != nil {
			t.Fatalf("sshd -t: %v %s", err, out)
		}
	}
}
