package handlers

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flint-dev/flint/internal/rootfs"
	"github.com/flint-dev/flint/internal/state"
)

func TestARunThatCannotRecordItsFailureSaysSo(t *testing.T) {
	dir := t.TempDir()
	// run/flint is a file: no status can be written below it.
	os.MkdirAll(filepath.Join(dir, "run"), 0o755)
	os.WriteFile(filepath.Join(dir, "run/flint"), nil, 0o644)
	root, err := rootfs.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	st, err := fail(&Status{State: StateRunning}, root, errors.New("cannot read the instance id"))
	if st.State != StateError {
		t.Errorf("state %s", st.State)
	}
	if err == nil || !strings.Contains(err.Error(), "cannot read the instance id") || !strings.Contains(err.Error(), "status could not be recorded") {
		t.Fatalf("error %v, want the failure and that the status was not recorded", err)
	}
}

func TestResultsThatCannotBeEncodedAreAnError(t *testing.T) {
	root, err := rootfs.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	store, err := state.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.SetInstance("i-1"); err != nil {
		t.Fatal(err)
	}
	if err := writeResults(store, &Status{State: StateDone}); err != nil {
		t.Fatalf("good results: %v", err)
	}
	if err := writeResults(store, &Status{State: StateDone, DurationMS: math.NaN()}); err == nil || !strings.Contains(err.Error(), "results.json") {
		t.Fatalf("results JSON cannot carry: %v, want an error naming results.json", err)
	}
}
