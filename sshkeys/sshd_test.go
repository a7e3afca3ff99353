package sshkeys_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/flint-dev/flint/internal/accounts"
	"github.com/flint-dev/flint/internal/rootfs"
	"github.com/flint-dev/flint/internal/testenv"
	"github.com/flint-dev/flint/sshkeys"
)

// clientKey makes an ed25519 key pair: the private key file for ssh -i
// and the authorized_keys line.
func clientKey(t *testing.T, dir, name string) (string, string) {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	blk, err := ssh.MarshalPrivateKey(priv, name)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(blk), 0o600); err != nil {
		t.Fatal(err)
	}
	pub, _ := ssh.NewPublicKey(priv.Public())
	return p, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub))) + " " + name
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// throwawayUser adds flinttest-XXXX to the live system, removed (with
// its home) when the test ends.
func throwawayUser(t *testing.T) string {
	t.Helper()
	b := make([]byte, 2)
	rand.Read(b)
	name := "flinttest-" + hex.EncodeToString(b)
	if out, err := exec.Command(testenv.Tool(t, "useradd"), "--create-home", "--shell", "/bin/sh", name).CombinedOutput(); err != nil {
		t.Fatalf("useradd: %v %s", err, out)
	}
	userdel := testenv.Tool(t, "userdel")
	t.Cleanup(func() {
		if out, err := exec.Command(userdel, "--remove", name).CombinedOutput(); err != nil {
			t.Errorf("userdel %s: %v %s", name, err, out)
		}
	})
	return name
}

// commandDir is a directory sshd accepts an AuthorizedKeysCommand in: it
// and every parent are root-owned and not group- or world-writable (which
// rules out /tmp). It holds the flint binary and the root whose flint.yaml
// names the default user.
func commandDir(t *testing.T, defaultUser string, caBundle []byte) (flint, root string) {
	t.Helper()
	dir, err := os.MkdirTemp("/run", "flinttest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	src, err := os.ReadFile(testenv.FlintBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	flint = filepath.Join(dir, "flint")
	if err := os.WriteFile(flint, src, 0o755); err != nil {
		t.Fatal(err)
	}
	root = filepath.Join(dir, "root")
	os.MkdirAll(filepath.Join(root, "etc/flint"), 0o755)
	cfg := "users:\n  default_user:\n    name: " + defaultUser + "\nssh_keys:\n  ca_bundle: /ca.crt\n"
	if err := os.WriteFile(filepath.Join(root, "ca.crt"), caBundle, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/flint/flint.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return flint, root
}

// startSSHD runs sshd in the foreground on 127.0.0.1:port with config.
func startSSHD(t *testing.T, sshd, config string, port int) *bytes.Buffer {
	t.Helper()
	if out, err := exec.Command(sshd, "-t", "-f", config).CombinedOutput(); err != nil {
		t.Fatalf("sshd -t -f %s: %v\n%s", config, err, out)
	}
	var log bytes.Buffer
	cmd := exec.Command(sshd, "-D", "-e", "-f", config)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			return &log
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd did not listen: %v\n%s", err, log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func login(ssh, key, user string, port int) ([]byte, error) {
	return exec.Command(ssh, "-i", key, "-p", fmt.Sprint(port), "-F", "/dev/null",
		"-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=10",
		user+"@127.0.0.1", "true").CombinedOutput()
}

func TestARealSSHDLogsInWithTheKeysFlintServes(t *testing.T) {
	testenv.Short(t)
	sshd := testenv.SSHD(t)
	sshc := testenv.Tool(t, "ssh")
	user := throwawayUser(t)
	pki := newEICPKI(t, "")
	flint, root := commandDir(t, user, pemCerts(pki.root))
	emu, url := emulator(t)
	dir := t.TempDir()
	served, servedPub := clientKey(t, dir, "served")
	stranger, _ := clientKey(t, dir, "stranger")
	connectKey, connectPub := clientKey(t, dir, "instance-connect")
	expiredKey, expiredPub := clientKey(t, dir, "expired")
	emu.Set("meta-data/public-keys/2=flinttest/openssh-key", []byte(servedPub+"\n"))
	pki.serve(t, emu.Set, user,
		pki.block(t, connectPub, testInstance, time.Now().Add(time.Hour)),
		pki.block(t, expiredPub, testInstance, time.Now().Add(-time.Minute)))
	hk, err := sshkeys.GenerateHostKey("ed25519", "root@flinttest")
	if err != nil {
		t.Fatal(err)
	}
	hostKey := filepath.Join(dir, "host_key")
	os.WriteFile(hostKey, hk.Private, 0o600)

	shadowField := func() string {
		f, err := accounts.ShadowField(mustRoot(t, "/"), user)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	setField := func(f string) {
		if out, err := exec.Command(testenv.Tool(t, "usermod"), "--password", f, user).CombinedOutput(); err != nil {
			t.Fatalf("usermod: %v %s", err, out)
		}
	}
	if f := shadowField(); f != "!" {
		t.Fatalf("useradd left %q; the test expects Debian's !", f)
	}
	for _, pam := range []string{"yes", "no"} {
		t.Run("UsePAM "+pam, func(t *testing.T) {
			port := freePort(t)
			config := filepath.Join(dir, "sshd_config_pam_"+pam)
			os.WriteFile(config, []byte(fmt.Sprintf(`ListenAddress 127.0.0.1:%d
HostKey %s
PidFile %s
UsePAM %s
AuthorizedKeysFile none
AuthorizedKeysCommand %s ssh-keys --root %s --endpoint %s %%u
AuthorizedKeysCommandUser nobody
PasswordAuthentication no
KbdInteractiveAuthentication no
`, port, hostKey, filepath.Join(dir, "sshd.pid."+pam), pam, flint, root, url)), 0o600)
			log := startSSHD(t, sshd, config, port)

			if pam == "no" {
				// useradd's "!" locks the account for sshd without PAM, key or not …
				setField("!")
				if out, err := login(sshc, served, user, port); err == nil {
					t.Fatalf("a !-locked account logged in without PAM: %s", out)
				}
				// … which is why flint locks passwords with what accounts.PasswordField says.
				setField(accounts.PasswordField(true, shadowField(), false))
				defer setField("!")
			}
			if out, err := login(sshc, served, user, port); err != nil {
				t.Fatalf("login with the served key: %v\n%s\nsshd:\n%s", err, out, log.String())
			}
			if out, err := login(sshc, connectKey, user, port); err != nil {
				t.Fatalf("login with a verified Instance Connect key: %v\n%s\nsshd:\n%s", err, out, log.String())
			}
			if out, err := login(sshc, stranger, user, port); err == nil {
				t.Fatalf("login with a key the emulator does not serve succeeded: %s", out)
			}
			if out, err := login(sshc, expiredKey, user, port); err == nil {
				t.Fatalf("login with an expired Instance Connect key succeeded: %s", out)
			}
			if out, err := login(sshc, served, "nobody", port); err == nil {
				t.Fatalf("another user logged in with the default user's key: %s", out)
			}
		})
	}
}

func mustRoot(t *testing.T, dir string) *rootfs.Root {
	t.Helper()
	r, err := rootfs.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestThePackagedDropInPassesSSHDAndYieldsToAnEarlierCommand(t *testing.T) {
	sshd := testenv.SSHD(t)
	dropIn, err := os.ReadFile("../packaging/sshd/flint.conf")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	hk, _ := sshkeys.GenerateHostKey("ed25519", "")
	os.WriteFile(filepath.Join(dir, "host_key"), hk.Private, 0o600)
	os.Mkdir(filepath.Join(dir, "d"), 0o755)
	os.WriteFile(filepath.Join(dir, "d/99-flint.conf"), dropIn, 0o644)
	config := filepath.Join(dir, "sshd_config")
	os.WriteFile(config, []byte("Include "+dir+"/d/*.conf\nHostKey "+dir+"/host_key\nListenAddress 127.0.0.1:1\n"), 0o600)
	effective := func() string {
		out, err := exec.Command(sshd, "-t", "-f", config).CombinedOutput()
		if err != nil {
			t.Fatalf("sshd -t: %v %s", err, out)
		}
		out, err = exec.Command(sshd, "-T", "-f", config).Output()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, "authorizedkeyscommand ") {
				return strings.TrimPrefix(l, "authorizedkeyscommand ")
			}
		}
		return ""
	}
	if got := effective(); got != "/usr/bin/flint ssh-keys %u" {
		t.Fatalf("with the drop-in alone: %q", got)
	}
	os.WriteFile(filepath.Join(dir, "d/50-other.conf"), []byte("AuthorizedKeysCommand /usr/bin/other %u\nAuthorizedKeysCommandUser nobody\n"), 0o644)
	if got := effective(); got != "/usr/bin/other %u" {
		t.Fatalf("an earlier drop-in's command was overridden: %q", got)
	}
}
