package testenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// ArmoredKey makes an ASCII-armored OpenPGP public key (ed25519, for
// repo@example.test) with gpg, in a keyring of the test's own.
func ArmoredKey(t testing.TB) string {
	t.Helper()
	gpg := Tool(t, "gpg")
	env := append(os.Environ(), "GNUPGHOME="+t.TempDir())
	gen := exec.Command(gpg, "--batch", "--passphrase", "", "--quick-gen-key", "repo@example.test", "ed25519", "sign", "never")
	gen.Env = env
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("gpg --quick-gen-key: %v %s", err, out)
	}
	exp := exec.Command(gpg, "--batch", "--armor", "--export", "repo@example.test")
	exp.Env = env
	out, err := exp.Output()
	if err != nil || !strings.Contains(string(out), "BEGIN PGP PUBLIC KEY BLOCK") {
		t.Fatalf("gpg --export: %v %s", err, out)
	}
	return string(out)
}
