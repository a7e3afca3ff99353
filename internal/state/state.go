// Package state keeps what flint remembers between runs, below
// <root>/var/lib/flint (0700): the current instance, per-instance and
// once-ever semaphores, and each instance's results. A semaphore is written
// only after its handler succeeded, so a crash re-runs the handler.
//
// Semaphores and records (results, kept metadata) are replaced atomically
// but not fsynced one by one: a handler's effects are made durable by the
// handler before its semaphore is written, so a semaphore lost to a power
// cut only re-runs an idempotent handler. Sync, once at the end of a run,
// makes them durable together. What must be durable before something runs
// (the at-most-once markers of user-data scripts) is not written here.
package state

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/flint-dev/flint/internal/rootfs"
)

// Dir is the state directory below the root.
const Dir = "var/lib/flint"

// Frequency says how often a handler runs.
type Frequency string

// Frequencies.
const (
	PerInstance Frequency = "per-instance"
	PerBoot     Frequency = "per-boot"
	Once        Frequency = "once"
)

// ParseFrequency checks a frequency name.
func ParseFrequency(s string) (Frequency, error) {
	switch f := Frequency(s); f {
	case PerInstance, PerBoot, Once:
		return f, nil
	}
	return "", fmt.Errorf("unknown frequency %q (want per-instance, per-boot or once)", s)
}

// Store is the state of one root.
type Store struct {
	root     *rootfs.Root
	instance string
}

// ValidName reports whether s is safe as one path element (instance ids,
// handler names): 1 to 128 of [A-Za-z0-9._-], starting with a letter or
// digit, no "..". (A loop, not a regexp: this runs in every process and
// compiling {0,127} costs more than the check.)
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > 128 || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != '-') {
			return false
		}
	}
	return true
}

// Open prepares the state directory (0700).
func Open(root *rootfs.Root) (*Store, error) {
	if err := root.MkdirAll(Dir, 0o700, rootfs.NoOwner, rootfs.InRoot); err != nil {
		return nil, err
	}
	return &Store{root: root}, nil
}

// View is a read-only store for a dry run: it answers Done for instance
// id from what is on disk and creates nothing.
func View(root *rootfs.Root, id string) *Store { return &Store{root: root, instance: id} }

// SetInstance makes id the current instance: it creates
// instances/<id>/ and switches the "instance" link atomically. It returns
// the previous instance id ("" on a first boot).
func (s *Store) SetInstance(id string) (previous string, err error) {
	if !ValidName(id) {
		return "", fmt.Errorf("instance id %q is not a safe name", id)
	}
	if target, err := os.Readlink(s.root.Path(Dir + "/instance")); err == nil {
		previous = filepath.Base(target)
	}
	if err := s.root.MkdirAll(s.InstanceDir(id)+"/sem", 0o700, rootfs.NoOwner, rootfs.InRoot); err != nil {
		return previous, err
	}
	if previous != id {
		if err := s.root.Symlink("instances/"+id, Dir+"/instance"); err != nil {
			return previous, err
		}
	}
	s.instance = id
	return previous, nil
}

// Current returns the instance the "instance" link points at: the one
// the last run set ("" when no run set one).
func Current(root *rootfs.Root) (string, error) {
	target, err := os.Readlink(root.Path(Dir + "/instance"))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return filepath.Base(target), nil
}

// Instance returns the current instance id.
func (s *Store) Instance() string { return s.instance }

// InstanceDir returns instances/<id> below the root.
func (s *Store) InstanceDir(id string) string { return Dir + "/instances/" + id }

func (s *Store) semPath(f Frequency, name string) (string, error) {
	if !ValidName(name) {
		return "", fmt.Errorf("handler name %q is not a safe name", name)
	}
	switch f {
	case PerInstance:
		if s.instance == "" {
			return "", errors.New("no instance set")
		}
		return s.InstanceDir(s.instance) + "/sem/" + name, nil
	case Once:
		return Dir + "/sem/" + name + ".once", nil
	}
	return "", nil
}

// Done reports whether handler name already ran at frequency f. Per-boot
// handlers are never done: flint runs once per boot.
func (s *Store) Done(f Frequency, name string) (bool, error) {
	p, err := s.semPath(f, name)
	if err != nil || p == "" {
		return false, err
	}
	_, err = s.root.Stat(p, rootfs.InRoot)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// MarkDone records that name succeeded: atomically, durable at the next
// Sync (see the package comment for why that is enough).
func (s *Store) MarkDone(f Frequency, name string) error {
	p, err := s.semPath(f, name)
	if err != nil || p == "" {
		return err
	}
	stamp := time.Now().UTC().Format(time.RFC3339Nano) + "\n"
	return s.root.WriteFile(p, []byte(stamp), rootfs.WriteOptions{Perm: 0o600, MkdirPerm: 0o700, NoSync: true})
}

// Sync makes every semaphore and record written so far durable, with one
// syncfs(2) of the filesystem holding the state directory.
func (s *Store) Sync() error {
	fd, err := unix.Open(s.root.Path(Dir), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return &fs.PathError{Op: "open", Path: s.root.Path(Dir), Err: err}
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		return &fs.PathError{Op: "syncfs", Path: s.root.Path(Dir), Err: err}
	}
	return nil
}

// Clear forgets that name ran, so it runs again (--force).
func (s *Store) Clear(f Frequency, name string) error {
	p, err := s.semPath(f, name)
	if err != nil || p == "" {
		return err
	}
	return s.root.Remove(p, rootfs.InRoot)
}

// WriteInstanceFile writes a 0600 file in the current instance directory.
func (s *Store) WriteInstanceFile(name string, data []byte) error {
	if s.instance == "" {
		return errors.New("no instance set")
	}
	return s.root.WriteFile(s.InstanceDir(s.instance)+"/"+name, data, rootfs.WriteOptions{Perm: 0o600, MkdirPerm: 0o700})
}

// WriteInstanceRecord writes a 0600 file in the current instance
// directory that the next Sync makes durable (results, kept metadata):
// replaced atomically, a power cut before the Sync leaves the old one.
func (s *Store) WriteInstanceRecord(name string, data []byte) error {
	if s.instance == "" {
		return errors.New("no instance set")
	}
	return s.root.WriteFile(s.InstanceDir(s.instance)+"/"+name, data, rootfs.WriteOptions{Perm: 0o600, MkdirPerm: 0o700, NoSync: true})
}

// KeepInstanceFile writes a 0600 instance file unless it already holds
// data: a reboot of the same instance rewrites (and fsyncs) nothing.
func (s *Store) KeepInstanceFile(name string, data []byte) error {
	if old, err := s.ReadInstanceFile(name); err == nil && bytes.Equal(old, data) {
		return nil
	}
	return s.WriteInstanceFile(name, data)
}

// ReadInstanceFile reads a file of the current instance ("" = the one the
// "instance" link points at, for commands that run after the boot).
func (s *Store) ReadInstanceFile(name string) ([]byte, error) {
	dir := Dir + "/instance"
	if s.instance != "" {
		dir = s.InstanceDir(s.instance)
	}
	return s.root.ReadFile(dir+"/"+name, rootfs.InRoot)
}
