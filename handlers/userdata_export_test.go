package handlers

import (
	"os"
	"path/filepath"
	"testing"
)

// SetBootID makes the handlers see id as the current boot's id for the
// rest of the test: per-boot scripts run again only on a new boot, and
// tests simulate reboots with it. Tests using it must not run in parallel.
func SetBootID(t testing.TB, id string) {
	t.Helper()
	old := bootIDFile
	path := filepath.Join(t.TempDir(), "boot_id")
	if err := os.WriteFile(path, []byte(id+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bootIDFile = path
	t.Cleanup(func() { bootIDFile = old })
}
