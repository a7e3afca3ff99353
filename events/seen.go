package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/flint-dev/flint/internal/rootfs"
)

// SeenPath is where the notices handled in this boot are recorded,
// relative to the root. /run is emptied at boot; the boot ID in the file
// covers roots whose run/ is not.
const SeenPath = "run/flint/events.json"

type seenFile struct {
	BootID  string               `json:"boot_id"`
	Notices map[string]time.Time `json:"notices"` // ID → when first seen
}

// Seen records the IDs of notices already handled, so that each notice
// runs its hooks once per boot, also across restarts of the watcher.
type Seen struct {
	root *rootfs.Root
	mu   sync.Mutex
	f    seenFile
}

// BootID returns the kernel's ID of this boot, "" when it cannot be read.
func BootID() string {
	b, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	return strings.TrimSpace(string(b))
}

// OpenSeen reads the record below root. A missing record, or one from
// another boot, starts empty. An unreadable or malformed one also starts
// empty and is reported in the error, which the caller logs: the
// notices still pending are then handled once more.
func OpenSeen(root *rootfs.Root, bootID string) (*Seen, error) {
	s := &Seen{root: root, f: seenFile{BootID: bootID, Notices: map[string]time.Time{}}}
	b, err := root.ReadFile(SeenPath, rootfs.InRoot)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("notice record %s: %w; starting with none", root.Path(SeenPath), err)
	}
	var f seenFile
	if err := json.Unmarshal(b, &f); err != nil {
		return s, fmt.Errorf("notice record %s is malformed (%v); starting with none", root.Path(SeenPath), err)
	}
	if f.BootID == bootID && f.Notices != nil {
		s.f = f
	}
	return s, nil
}

// Has reports whether the notice id was handled in this boot.
func (s *Seen) Has(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.f.Notices[id]
	return ok
}

// Add records id as handled at at, replacing the record atomically. It
// reports false when id was already recorded.
func (s *Seen) Add(id string, at time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.f.Notices[id]; ok {
		return false, nil
	}
	s.f.Notices[id] = at.UTC()
	b, _ := json.MarshalIndent(s.f, "", "  ")
	err := s.root.WriteFile(SeenPath, append(b, '\n'), rootfs.WriteOptions{Perm: 0o644, MkdirPerm: 0o755, NoSync: true})
	if err != nil {
		return true, fmt.Errorf("recording notice %s: %w", id, err)
	}
	return true, nil
}
