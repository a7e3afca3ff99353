package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/flint-dev/flint/internal/rootfs"
)

// StatusPath is the run's status below the root: 0644, no secrets.
const StatusPath = "run/flint/status.json"

// Run states.
const (
	StateRunning  = "running"
	StateDone     = "done"
	StateDegraded = "degraded" // a handler failed, the chain went on
	StateError    = "error"    // the chain could not run or a required handler failed
)

// Handler result statuses.
const (
	ResultOK      = "ok"
	ResultFailed  = "failed"
	ResultSkipped = "skipped" // already ran at its frequency, or disabled
	ResultPlanned = "planned" // live change not made (--root without --live, or --dry-run)
	ResultNotRun  = "not-run" // the chain stopped before it, a handler it needs failed, or it waits for user-data
	ResultPartial = "partial" // did what it could; not marked done, a later boot does the rest
	ResultPending = "pending"
)

// Result is one handler's outcome.
type Result struct {
	Name       string    `json:"name"`
	Frequency  string    `json:"frequency"`
	Status     string    `json:"status"`
	Reason     string    `json:"reason,omitempty"`
	Started    time.Time `json:"started,omitzero"`
	DurationMS float64   `json:"duration_ms"`
	// Beside: it ran beside the chain (Builtin.Beside), overlapping the
	// handlers after it.
	Beside bool     `json:"beside,omitempty"`
	Notes  []string `json:"notes,omitempty"`

	partial []string // Boot.Partial's lines
}

// Status is /run/flint/status.json.
type Status struct {
	State      string    `json:"state"`
	InstanceID string    `json:"instance_id,omitempty"`
	Previous   string    `json:"previous_instance_id,omitempty"`
	Started    time.Time `json:"started"`
	Finished   time.Time `json:"finished,omitzero"`
	// Ready is when the handlers sshd waits for were done (READY=1 to
	// systemd), the handlers beside the chain started before them
	// included.
	Ready      time.Time `json:"ready,omitzero"`
	DurationMS float64   `json:"duration_ms"`
	Error      string    `json:"error,omitempty"`
	// Warnings are the run's, each once: what was asked and dropped
	// (user-data that could not be read, a part or key not supported, a
	// template that did not render). A run with warnings is degraded.
	Warnings []string `json:"warnings,omitempty"`
	Handlers []Result `json:"handlers"`
}

// Final reports whether the run has ended.
func (s *Status) Final() bool { return s.State != StateRunning }

// ExitCode is `flint status`'s exit code: 0 done, 1 error, 2 degraded.
func (s *Status) ExitCode() int {
	switch s.State {
	case StateDone:
		return 0
	case StateDegraded:
		return 2
	}
	return 1
}

// WriteStatus replaces the status file atomically.
func WriteStatus(root *rootfs.Root, s *Status) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	// /run is tmpfs on a booted system and the file describes this boot
	// only: atomic rename is what readers need, fsync buys nothing.
	return root.WriteFile(StatusPath, append(b, '\n'), rootfs.WriteOptions{Perm: 0o644, MkdirPerm: 0o755, NoSync: true})
}

// ReadStatus reads the status file; a missing file is fs.ErrNotExist.
func ReadStatus(root *rootfs.Root) (*Status, error) {
	b, err := root.ReadFile(StatusPath, rootfs.InRoot)
	if err != nil {
		return nil, err
	}
	var s Status
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", root.Path(StatusPath), err)
	}
	return &s, nil
}

// WaitStatus polls until the status file exists and is final. Called before
// the run starts, it waits for the run to begin too. Polling (not inotify)
// keeps it simple and works on any filesystem; the interval is short next
// to a boot.
func WaitStatus(ctx context.Context, root *rootfs.Root, every time.Duration) (*Status, error) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		s, err := ReadStatus(root)
		switch {
		case err == nil && s.Final():
			return s, nil
		case err != nil && !errors.Is(err, fs.ErrNotExist):
			return nil, err
		}
		select {
		case <-ctx.Done():
			return s, ctx.Err()
		case <-t.C:
		}
	}
}

// ReadStatusDir reads the status file of the root at dir.
func ReadStatusDir(dir string) (*Status, error) {
	r, err := rootfs.Open(dir)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return ReadStatus(r)
}
