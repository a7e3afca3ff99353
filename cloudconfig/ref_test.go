package cloudconfig

import (
	"testing"

	"github.com/flint-dev/flint/internal/testenv"
)

// runReference runs testdata/<script> with Debian's cloud-init on a JSON
// manifest of cases and decodes its JSON answer into out
// (testenv.CloudInit).
func runReference(t *testing.T, script string, cases, out any) {
	t.Helper()
	testenv.CloudInit(t, script, cases, out)
}
