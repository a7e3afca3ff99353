package handlers

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/flint-dev/flint/internal/rootfs"
)

func TestAFailedCheckNamesItsLastLineOfOutputOnlyWhenAskedTo(t *testing.T) {
	root, err := rootfs.Open("/")
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	b := &Boot{Root: root, Live: true, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, tc := range []struct {
		explain bool
		want    string
	}{
		{true, "check: exited with status 3: the second line says why"},
		{false, "check: exited with status 3"},
	} {
		err := b.RunProcess(context.Background(), Process{Name: "check", Explain: tc.explain,
			Argv: []string{"/bin/sh", "-c", "echo first; echo 'the second line says why' >&2; echo; exit 3"}})
		if err == nil || err.Error() != tc.want {
			t.Errorf("Explain %v: %v, want %q", tc.explain, err, tc.want)
		}
	}
}
