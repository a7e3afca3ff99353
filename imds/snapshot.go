package imds

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// ErrNotKept is returned (wrapped) by a Snapshot for a path it does not
// hold: the value was not read by the boot that kept it. It is not
// ErrNotFound: nobody knows whether the service would have it.
var ErrNotKept = errors.New("not in the metadata kept from an earlier boot")

// Snapshot is what one run read from IMDS, kept so that a later boot of
// the same instance that cannot reach the service at all still has the
// values its per-boot work needs. It never holds user-data or
// credentials (SecretPath), and it is a Reader: values it holds, 404s it
// saw, and ErrNotKept for anything else.
type Snapshot struct {
	// Kept is when the run that read the values started.
	Kept time.Time `json:"kept"`
	// Values are leaves by the path they were asked for.
	Values map[string]string `json:"values"`
	// Lists are listings by the path they were asked for.
	Lists map[string][]string `json:"lists,omitempty"`
	// NotFound are paths the service answered 404 for.
	NotFound []string `json:"not_found,omitempty"`
}

// keepable reports whether a path's value may be written to a snapshot:
// user-data may carry passwords and keys, credentials are secrets.
func keepable(path string) bool {
	p := strings.TrimPrefix(path, "/")
	return p != "user-data" && !strings.HasPrefix(p, "user-data/") && !SecretPath(p)
}

// Snapshot returns what m has read successfully so far (values, listings
// and 404s), without user-data and credentials. Values that are not
// UTF-8 text are left out: metadata is text, and the snapshot is JSON.
func (m *Memo) Snapshot(kept time.Time) *Snapshot {
	s := &Snapshot{Kept: kept, Values: map[string]string{}, Lists: map[string][]string{}}
	m.mu.Lock()
	defer m.mu.Unlock()
	for key, e := range m.m {
		select {
		case <-e.done:
		default:
			continue // still being read
		}
		kind, path := key[:2], key[2:]
		if !keepable(path) {
			continue
		}
		switch {
		case isNotFound(e.err):
			s.NotFound = append(s.NotFound, path)
		case e.err != nil:
		case kind == "g:" && utf8.Valid(e.value):
			s.Values[path] = string(e.value)
		case kind == "l:":
			s.Lists[path] = slices.Clone(e.list)
		}
	}
	slices.Sort(s.NotFound)
	s.NotFound = slices.Compact(s.NotFound)
	return s
}

// Get returns the kept value at path.
func (s *Snapshot) Get(_ context.Context, path string) ([]byte, error) {
	if v, ok := s.Values[path]; ok {
		return []byte(v), nil
	}
	return nil, s.missing(path)
}

// List returns the kept listing at path.
func (s *Snapshot) List(_ context.Context, path string) ([]string, error) {
	if v, ok := s.Lists[path]; ok {
		return slices.Clone(v), nil
	}
	return nil, s.missing(path)
}

func (s *Snapshot) missing(path string) error {
	if slices.Contains(s.NotFound, path) {
		return fmt.Errorf("%s: %w", path, ErrNotFound)
	}
	return fmt.Errorf("%s: %w", path, ErrNotKept)
}

// Fill adds what older (an earlier snapshot of the same instance) holds
// and s does not mention: a run that read less (flint run --only) keeps
// the rest of what an earlier boot read. What s read or saw absent wins.
func (s *Snapshot) Fill(older *Snapshot) {
	if older == nil {
		return
	}
	seen := func(p string) bool {
		_, v := s.Values[p]
		_, l := s.Lists[p]
		return v || l || slices.Contains(s.NotFound, p)
	}
	for p, v := range older.Values {
		if !seen(p) && keepable(p) {
			s.Values[p] = v
		}
	}
	for p, v := range older.Lists {
		if !seen(p) && keepable(p) {
			s.Lists[p] = v
		}
	}
	for _, p := range older.NotFound {
		if !seen(p) && keepable(p) {
			s.NotFound = append(s.NotFound, p)
		}
	}
	slices.Sort(s.NotFound)
}
