package sshkeys_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flint-dev/flint/internal/testenv"
	"github.com/flint-dev/flint/sshkeys"
)

func TestGeneratedHostKeysAreWhatSSHKeygenReads(t *testing.T) {
	keygen := testenv.Tool(t, "ssh-keygen")
	dir := t.TempDir()
	// A key started in the background gets its comment when it is taken.
	background := func(typ, comment string) (sshkeys.HostKey, error) {
		return sshkeys.StartHostKey(typ).Key(context.Background(), comment)
	}
	for _, typ := range sshkeys.HostKeyTypes {
		for how, generate := range map[string]func(string, string) (sshkeys.HostKey, error){"at once": sshkeys.GenerateHostKey, "in the background": background} {
			t.Run(typ+" "+how, func(t *testing.T) {
				testGeneratedHostKey(t, keygen, dir, typ, generate)
			})
		}
	}
}

func testGeneratedHostKey(t *testing.T, keygen, dir, typ string, generate func(string, string) (sshkeys.HostKey, error)) {
	k, err := generate(typ, "root@web-1")
	if err != nil {
		t.Fatal(err)
	}
	if err := sshkeys.CheckHostKeyPair(k.Private, k.Public); err != nil {
		t.Fatal(err)
	}
	priv := filepath.Join(dir, "ssh_host_"+typ+"_key")
	os.WriteFile(priv, k.Private, 0o600)
	os.WriteFile(priv+".pub", k.Public, 0o644)
	// ssh-keygen derives the same public key from the private file…
	out, err := exec.Command(keygen, "-y", "-f", priv).Output()
	if err != nil || strings.Fields(string(out))[1] != strings.Fields(string(k.Public))[1] {
		t.Fatalf("ssh-keygen -y: %v %q", err, out)
	}
	// …and prints the fingerprint line flint prints.
	out, err = exec.Command(keygen, "-l", "-f", priv+".pub").Output()
	if err != nil {
		t.Fatal(err)
	}
	got, err := sshkeys.FingerprintLine(k.Public)
	if err != nil || got != strings.TrimSpace(string(out)) {
		t.Fatalf("FingerprintLine = %q, ssh-keygen -l = %q", got, out)
	}
	if !strings.HasSuffix(strings.TrimSpace(string(out)), "root@web-1 ("+strings.ToUpper(typ)+")") {
		t.Fatalf("comment: %q", out)
	}
}

func TestMismatchedHostKeyPairsAreRefused(t *testing.T) {
	a, _ := sshkeys.GenerateHostKey("ed25519", "")
	b, _ := sshkeys.GenerateHostKey("ed25519", "")
	if err := sshkeys.CheckHostKeyPair(a.Private, b.Public); err == nil {
		t.Fatal("a mismatched pair passed")
	}
	if err := sshkeys.CheckHostKeyPair([]byte("junk"), a.Public); err == nil || strings.Contains(err.Error(), "junk") {
		t.Fatalf("junk private key: %v", err)
	}
	if _, err := sshkeys.GenerateHostKey("dsa", ""); err == nil {
		t.Fatal("dsa generated")
	}
	if _, err := sshkeys.StartHostKey("dsa").Key(context.Background(), ""); err == nil || !strings.Contains(err.Error(), `"dsa"`) {
		t.Fatalf("dsa started in the background: %v", err)
	}
	// A run that is stopped does not wait for a key still being made.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// (An RSA key made already by then may be returned instead.)
	if _, err := sshkeys.StartHostKey("rsa").Key(ctx, ""); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled wait: %v", err)
	}
}

func TestFingerprintsBlockIsCloudInitsConsoleFormat(t *testing.T) {
	got := sshkeys.FingerprintsBlock([]string{"256 SHA256:x root@h (ED25519)"}, []string{"ssh-ed25519 AAAA root@h\n"})
	want := `ec2: #############################################################
ec2: -----BEGIN SSH HOST KEY FINGERPRINTS-----
ec2: 256 SHA256:x root@h (ED25519)
ec2: -----END SSH HOST KEY FINGERPRINTS-----
ec2: #############################################################
-----BEGIN SSH HOST KEY KEYS-----
ssh-ed25519 AAAA root@h
-----END SSH HOST KEY KEYS-----
`
	if got != want {
		t.Fatalf("got\n%s", got)
	}
}
