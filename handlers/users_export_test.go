package handlers

import "testing"

// SetLookTool replaces how the users handler finds useradd, visudo … for
// the rest of the test (a missing tool). Tests using it must not run in
// parallel.
func SetLookTool(t testing.TB, f func(name string) (string, error)) {
	t.Helper()
	old := lookTool
	lookTool = f
	t.Cleanup(func() { lookTool = old })
}
