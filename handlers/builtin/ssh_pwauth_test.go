package builtin

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/handlers/handlerstest"
	"github.com/flint-dev/flint/internal/testenv"
)

// debianSSHDConfig is the part of Debian's sshd_config that matters: it
// includes its drop-ins first.
const debianSSHDConfig = "Include /etc/ssh/sshd_config.d/*.conf\nKbdInteractiveAuthentication no\nUsePAM yes\nX11Forwarding yes\nPrintMotd no\nAcceptEnv LANG LC_*\nSubsystem sftp /usr/lib/openssh/sftp-server\n"

// hostSSHDCheck makes the handler check with the host's real sshd -t
// (the test roots hold busybox, no sshd): the root's sshd_config with its
// Include pointed at the root's drop-ins, and a host key made for it.
func hostSSHDCheck(t *testing.T) {
	t.Helper()
	sshd := testenv.Tool(t, "/usr/sbin/sshd")
	testenv.Tool(t, "ssh-keygen")
	dir := t.TempDir()
	key := filepath.Join(dir, "hostkey")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	old := sshdCheck
	sshdCheck = func(ctx context.Context, b *handlers.Boot) (bool, error) {
		main, err := os.ReadFile(b.Root.Path("etc/ssh/sshd_config"))
		if err != nil {
			return true, err
		}
		cfg := strings.ReplaceAll(string(main), "Include /etc/ssh/", "Include "+b.Root.Path("etc/ssh")+"/") + "HostKey " + key + "\n"
		test := filepath.Join(dir, "sshd_config")
		if err := os.WriteFile(test, []byte(cfg), 0o600); err != nil {
			return true, err
		}
		out, err := exec.CommandContext(ctx, sshd, "-t", "-f", test).CombinedOutput()
		if err != nil {
			return true, &sshdError{strings.TrimSpace(string(out))}
		}
		return true, nil
	}
	t.Cleanup(func() { sshdCheck = old })
}

type sshdError struct{ msg string }

func (e *sshdError) Error() string { return e.msg }

// pwauthInstance is an instance whose root holds Debian's sshd_config
// (or main, when given) and the user-data ud.
func pwauthInstance(t *testing.T, ud, main string) *instance {
	t.Helper()
	in := newInstance(t)
	os.MkdirAll(filepath.Join(in.Root, "etc/ssh/sshd_config.d"), 0o755)
	if err := os.WriteFile(filepath.Join(in.Root, "etc/ssh/sshd_config"), []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	in.Emu.Set("user-data", []byte(ud))
	return in
}

func onlyPwauth(s *handlers.Setup) { s.Only = []string{"ssh-pwauth", "timezone", "final-message"} }

func TestSSHPwauthWritesTheDropInSSHDAccepts(t *testing.T) {
	testenv.Root(t)
	hostSSHDCheck(t)
	for _, tc := range []struct {
		name, ud, file, want string
	}{
		{"true enables passwords in the drop-in", "#cloud-config\nssh_pwauth: true\n", "etc/ssh/sshd_config.d/50-cloud-init.conf", "PasswordAuthentication yes\n"},
		{"\"no\" disables them", "#cloud-config\nssh_pwauth: \"no\"\n", "etc/ssh/sshd_config.d/50-cloud-init.conf", "PasswordAuthentication no\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := pwauthInstance(t, tc.ud, debianSSHDConfig)
			st, out := in.Run(t, onlyPwauth)
			if r := handlerstest.Result(st, "ssh-pwauth"); r.Status != handlers.ResultOK {
				t.Fatalf("ssh-pwauth %s: %s\n%s", r.Status, r.Reason, out)
			}
			if got := in.ReadFile(t, tc.file); got != tc.want {
				t.Errorf("%s = %q, want %q", tc.file, got, tc.want)
			}
			if fi, _ := os.Stat(filepath.Join(in.Root, tc.file)); fi.Mode().Perm() != 0o600 {
				t.Errorf("%s mode %v, want 0600 as cloud-init writes it", tc.file, fi.Mode())
			}
			if got := in.ReadFile(t, "etc/ssh/sshd_config"); got != debianSSHDConfig {
				t.Errorf("sshd_config changed:\n%s", got)
			}
		})
	}
}

func TestSSHPwauthWithoutDropInsUpdatesSSHDConfig(t *testing.T) {
	testenv.Root(t)
	hostSSHDCheck(t)
	in := pwauthInstance(t, "#cloud-config\nssh_pwauth: false\n", "PasswordAuthentication yes\nUsePAM yes\n")
	st, out := in.Run(t, onlyPwauth)
	if r := handlerstest.Result(st, "ssh-pwauth"); r.Status != handlers.ResultOK {
		t.Fatalf("ssh-pwauth %s: %s\n%s", r.Status, r.Reason, out)
	}
	if got, want := in.ReadFile(t, "etc/ssh/sshd_config"), "PasswordAuthentication no\nUsePAM yes\n"; got != want {
		t.Errorf("sshd_config = %q, want %q", got, want)
	}
}

func TestSSHPwauthBadInputIsOneLineAndTheChainGoesOn(t *testing.T) {
	testenv.Root(t)
	hostSSHDCheck(t)
	for _, tc := range []struct {
		name, ud, main, reason string
	}{
		{"a value that is no boolean", "#cloud-config\nssh_pwauth: maybe\n", debianSSHDConfig, `ssh_pwauth: "maybe" is not true, false or "unchanged"`},
		// The image's own config is broken: sshd -t refuses the whole, and
		// the drop-in does not stay behind.
		{"a configuration sshd refuses", "#cloud-config\nssh_pwauth: true\n", debianSSHDConfig + "NoSuchOption yes\n", "sshd -t refuses the configuration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := pwauthInstance(t, tc.ud, tc.main)
			st, out := in.Run(t, onlyPwauth)
			r := handlerstest.Result(st, "ssh-pwauth")
			if r.Status != handlers.ResultFailed || !strings.Contains(r.Reason, tc.reason) || strings.Contains(r.Reason, "\n") {
				t.Fatalf("ssh-pwauth %s: %q, want one failed line with %q\n%s", r.Status, r.Reason, tc.reason, out)
			}
			if st.State != "degraded" {
				t.Errorf("run is %s, want degraded", st.State)
			}
			if r := handlerstest.Result(st, "final-message"); r.Status != handlers.ResultOK {
				t.Errorf("final-message %s after the failure, want ok", r.Status)
			}
			if _, err := os.Stat(filepath.Join(in.Root, "etc/ssh/sshd_config.d/50-cloud-init.conf")); err == nil {
				t.Errorf("the drop-in was left in place")
			}
			if got := in.ReadFile(t, "etc/ssh/sshd_config"); got != tc.main {
				t.Errorf("sshd_config changed:\n%s", got)
			}
		})
	}
}
