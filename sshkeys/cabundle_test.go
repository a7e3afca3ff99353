package sshkeys

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flint-dev/flint/internal/testenv"
)

func TestDefaultCABundlesAreLookedForBelowTheRoot(t *testing.T) {
	root := t.TempDir()
	// Nothing below the root: the host's bundles must not stand in.
	_, _, err := loadBundle(root, "")
	if err == nil || !strings.Contains(err.Error(), filepath.Join(root, DefaultCABundles[0])) {
		t.Fatalf("empty root: err = %v, want the bundles below %s named", err, root)
	}
	host, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	testenv.Need(t, err == nil, "needs the ca-certificates bundle to copy")
	p := filepath.Join(root, DefaultCABundles[1])
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, host, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, certs, err := loadBundle(root, ""); err != nil || len(certs) == 0 {
		t.Fatalf("bundle below the root: %d certificates, %v", len(certs), err)
	}
}
