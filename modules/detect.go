package modules

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/flint-dev/flint/imds"
	"golang.org/x/sys/unix"
)

// Metadata reads instance metadata; paths are relative to latest/ (for
// example "meta-data/kernel-id"), and an absent key is an error wrapping
// imds.ErrNotFound.
type Metadata interface {
	Get(ctx context.Context, path string) ([]byte, error)
}

// Uname returns the running kernel's release and machine.
func Uname() (release, machine string, err error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", "", fmt.Errorf("uname: %w", err)
	}
	return unix.ByteSliceToString(u.Release[:]), unix.ByteSliceToString(u.Machine[:]), nil
}

// Detect identifies the running kernel: uname, plus kernel-id and
// ramdisk-id from metadata when md is not nil (absent keys stay empty).
func Detect(ctx context.Context, md Metadata) (Kernel, error) {
	var k Kernel
	var err error
	if k.Release, k.Machine, err = Uname(); err != nil {
		return k, err
	}
	if md == nil {
		return k, nil
	}
	return k, k.readIDs(ctx, md)
}

// readIDs fills KernelID and RamdiskID from metadata; absent keys stay
// empty.
func (k *Kernel) readIDs(ctx context.Context, md Metadata) error {
	var err error
	if k.KernelID, err = optional(ctx, md, "meta-data/kernel-id"); err != nil {
		return err
	}
	k.RamdiskID, err = optional(ctx, md, "meta-data/ramdisk-id")
	return err
}

func optional(ctx context.Context, md Metadata, p string) (string, error) {
	b, err := md.Get(ctx, p)
	if errors.Is(err, imds.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read %s: %w", p, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// Status describes the module tree of one release under a root.
type Status struct {
	Release string `json:"release"`
	Dir     string `json:"dir"`
	// Present: the tree exists. Indexed: modules.dep exists.
	Present bool `json:"present"`
	Indexed bool `json:"indexed"`
	// Record is set when flint installed the tree.
	Record *Record `json:"record,omitempty"`
	// Old: a previous tree is still kept (an install is unfinished).
	Old bool `json:"old,omitempty"`
	// Leftovers are staging or trash directories an interrupted install left.
	Leftovers []string `json:"leftovers,omitempty"`
}

// ReadStatus inspects <root>/lib/modules/<release> without changing it.
func ReadStatus(root, release string) (Status, error) {
	st := Status{Release: release, Dir: filepath.Join(ModulesDir(root), release)}
	if err := validRelease(release); err != nil {
		return st, err
	}
	dir, err := resolveModulesDir(root, false)
	if err != nil {
		return st, err
	}
	st.Dir = filepath.Join(dir, release)
	if fi, err := os.Lstat(st.Dir); err == nil && fi.IsDir() {
		st.Present = true
	}
	if _, err := os.Lstat(filepath.Join(st.Dir, "modules.dep")); err == nil {
		st.Indexed = true
	}
	if rec, err := ReadRecord(dir, release); err == nil {
		st.Record = &rec
	}
	if _, err := os.Lstat(st.Dir + oldSuffix); err == nil {
		st.Old = true
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, "."+release+stagingTag) || (strings.HasPrefix(n, "."+release) && strings.Contains(n, trashTag)) {
			st.Leftovers = append(st.Leftovers, n)
		}
	}
	return st, nil
}

// Installed reports whether the tree is complete and came from the bundle
// with digest sha (any bundle when sha is "").
func (s Status) Installed(sha string) bool {
	if !s.Indexed || s.Record == nil {
		return false
	}
	if sha == "" {
		return true
	}
	d, err := normDigest(sha)
	return err == nil && d == s.Record.SHA256
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
