package builtin

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// failingTemp is a temp file whose chmod or close fails, as on a
// filesystem that refuses modes or loses a write at close (NFS, a full
// disk): neither can be made to happen to a local file in a test.
type failingTemp struct {
	chmod, close error
	closed       bool
}

func (f *failingTemp) WriteString(s string) (int, error) { return len(s), nil }
func (f *failingTemp) Chmod(os.FileMode) error           { return f.chmod }
func (f *failingTemp) Close() error                      { f.closed = true; return f.close }
func (f *failingTemp) Name() string                      { return "/tmp/flint-sudoers-1" }

func TestASudoersTempFileThatCannotBeFinishedIsNotChecked(t *testing.T) {
	for name, tc := range map[string]struct {
		f    *failingTemp
		want string
	}{
		"chmod fails": {&failingTemp{chmod: errors.New("operation not permitted")}, "chmod /tmp/flint-sudoers-1"},
		"close fails": {&failingTemp{close: errors.New("no space left on device")}, "closing /tmp/flint-sudoers-1"},
		"both fail":   {&failingTemp{chmod: errors.New("eperm"), close: errors.New("enospc")}, "chmod"},
	} {
		t.Run(name, func(t *testing.T) {
			err := finishTemp(tc.f, "admin ALL=(ALL) NOPASSWD:ALL\n", 0o440)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
			if !tc.f.closed {
				t.Error("the temp file was not closed")
			}
		})
	}
	if err := finishTemp(&failingTemp{}, "x", 0o440); err != nil {
		t.Fatalf("a temp file that finishes: %v", err)
	}
}
