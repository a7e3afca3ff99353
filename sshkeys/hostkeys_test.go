package sshkeys_test

import (
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
	for _, typ := range sshkeys.HostKeyTypes {
		t.Run(typ, func(t *testing.T) {
			k, err := sshkeys.GenerateHostKey(typ, "root@web-1")
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
		})
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
