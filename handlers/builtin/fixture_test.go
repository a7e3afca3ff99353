package builtin

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/flint-dev/flint/handlers/handlerstest"
)

// instance is an emulator serving the fixture, and a temp root, for runs
// of the built-in chain.
type instance = handlerstest.Instance

func newInstance(t testing.TB) *instance { return handlerstest.New(t, Catalog()) }

// setBootID makes the handlers see id as the current boot's id for the
// rest of the test: per-boot scripts run again only on a new boot, and
// tests simulate reboots with it. Tests using it must not run in parallel.
func setBootID(t testing.TB, id string) {
	t.Helper()
	old := bootIDFile
	path := filepath.Join(t.TempDir(), "boot_id")
	if err := os.WriteFile(path, []byte(id+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bootIDFile = path
	t.Cleanup(func() { bootIDFile = old })
}
