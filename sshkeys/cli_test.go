package sshkeys_test

import (
	"bytes"
	"errors"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flint-dev/flint/internal/testenv"
)

// runSSHKeys runs `flint ssh-keys` as sshd would: a fresh process with an
// empty environment.
func runSSHKeys(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(testenv.FlintBinary(t), append([]string{"ssh-keys"}, args...)...)
	cmd.Env = []string{}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

func cliRoot(t *testing.T, yaml string) string {
	t.Helper()
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc/flint"), 0o755)
	if err := os.WriteFile(filepath.Join(root, "etc/flint/flint.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestTheCommandPrintsTheDefaultUsersKeysAndNothingForOthers(t *testing.T) {
	_, url := emulator(t)
	root := cliRoot(t, "users:\n  default_user:\n    name: admin\n")
	out, errOut, code := runSSHKeys(t, "--root", root, "--endpoint", url, "admin")
	if code != 0 || strings.Count(out, "\n") != 2 || !strings.HasPrefix(out, alice+"\n") || errOut != "" {
		t.Fatalf("admin: code %d\nstdout %q\nstderr %q", code, out, errOut)
	}
	out, errOut, code = runSSHKeys(t, "--root", root, "--endpoint", url, "bob")
	if code != 0 || out != "" || errOut != "" {
		t.Fatalf("bob: code %d stdout %q stderr %q", code, out, errOut)
	}
}

func TestTheCommandServesVerifiedInstanceConnectKeys(t *testing.T) {
	emu, url := emulator(t)
	p := newEICPKI(t, "")
	p.serve(t, emu.Set, "bob", p.block(t, eicKey, testInstance, time.Now().Add(time.Minute)))
	root := cliRoot(t, "ssh_keys:\n  ca_bundle: /ca.crt\n")
	b, _ := os.ReadFile(p.bundlePath)
	os.WriteFile(filepath.Join(root, "ca.crt"), b, 0o644)
	out, errOut, code := runSSHKeys(t, "--root", root, "--endpoint", url, "bob")
	if code != 0 || out != eicKey+"\n" {
		t.Fatalf("code %d stdout %q stderr %q", code, out, errOut)
	}
	// Turned off in config: nothing.
	root = cliRoot(t, "ssh_keys:\n  instance_connect: false\n")
	if out, _, _ := runSSHKeys(t, "--root", root, "--endpoint", url, "bob"); out != "" {
		t.Fatalf("instance_connect: false still served %q", out)
	}
}

func TestWhenIMDSIsDownTheCommandPrintsNothingAndLogsOnce(t *testing.T) {
	// A port nobody listens on, and one that accepts but never answers.
	ts := httptest.NewServer(nil)
	refused := ts.URL
	ts.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	root := cliRoot(t, "users:\n  default_user:\n    name: admin\n")
	for name, url := range map[string]string{"refused": refused, "silent": "http://" + l.Addr().String()} {
		t.Run(name, func(t *testing.T) {
			out, errOut, code := runSSHKeys(t, "--root", root, "--endpoint", url, "admin")
			if code != 0 || out != "" || strings.Count(errOut, "\n") != 1 || !strings.HasPrefix(errOut, "flint ssh-keys: ") {
				t.Fatalf("code %d stdout %q stderr %q", code, out, errOut)
			}
		})
	}
}

func TestTheCommandNeedsExactlyOneUser(t *testing.T) {
	if _, _, code := runSSHKeys(t); code != 2 {
		t.Fatalf("no user: exit %d", code)
	}
	if _, _, code := runSSHKeys(t, "a", "b"); code != 2 {
		t.Fatalf("two users: exit %d", code)
	}
}
