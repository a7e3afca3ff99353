package builtin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/internal/accounts"
	"github.com/flint-dev/flint/internal/rootfs"
	"github.com/flint-dev/flint/internal/state"
	"github.com/flint-dev/flint/userdata"
)

// writeFilesHandler writes cloud-config `write_files` entries without `defer`,
// early and once per instance, as cloud-init's write_files module does.
var writeFilesHandler = handlers.Builtin{
	Name: "write-files", Frequency: state.PerInstance,
	Run: func(ctx context.Context, b *handlers.Boot) error { return runWriteFiles(ctx, b, false) },
}

func runWriteFiles(ctx context.Context, b *handlers.Boot, deferred bool) error {
	cc, err := b.CloudConfig(ctx)
	if err != nil {
		return err
	}
	var files []userdata.WriteFile
	for _, w := range cc.WriteFiles {
		if w.Defer == deferred {
			files = append(files, w)
		}
	}
	if len(files) == 0 {
		return nil
	}
	db, err := accounts.Read(b.Root)
	if err != nil {
		// Files without an owner can still be written; owned ones fail.
		b.Log.Warn("cannot read the root's accounts", "error", err)
		db = accounts.Parse(nil, nil)
	}
	f := failures{what: "files", total: len(files)}
	for _, w := range files {
		f.add(writeOneFile(b, db, w))
	}
	return f.err()
}

func writeOneFile(b *handlers.Boot, db *accounts.DB, w userdata.WriteFile) error {
	rel, err := writeFilePath(w.Path)
	if err != nil {
		return err
	}
	data, err := w.Decoded()
	if err != nil {
		return fmt.Errorf("%s: %w", w.Path, err)
	}
	owner, err := db.Owner(w.Owner)
	if err != nil {
		return fmt.Errorf("%s: %w", w.Path, err)
	}
	perm := w.Permissions
	zeroMode := perm.Perm() == 0
	if zeroMode {
		// rootfs reads a zero mode as "default" (0644): never widen what
		// the user narrowed.
		perm |= 0o600
	}
	verb := "wrote"
	if w.Append {
		verb = "appended to"
	}
	what := fmt.Sprintf("/%s (%d bytes, %#o, %s)", rel, len(data), perm.Perm(), w.Owner)
	if b.DryRun {
		b.Note("would have %s %s", verb, what)
		return nil
	}
	var appendRecord string
	if w.Append {
		// A failed handler runs again next boot; an append that already
		// happened must not happen twice. The record, written before the
		// file, holds the digest of the file as the append leaves it: a
		// crash between the two is told apart by comparing the file.
		sum := sha256.Sum256([]byte(rel + "\x00" + string(data)))
		if r, err := instancePath(b, "sem/write-files-appended/"+hex.EncodeToString(sum[:12])); err == nil {
			appendRecord = r
		}
		old, err := b.Root.ReadFile(rel, rootfs.InRoot)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if appendRecord != "" {
			if want, err := b.Root.ReadFile(appendRecord, rootfs.InRoot); err == nil {
				got := sha256.Sum256(old)
				if string(want) == hex.EncodeToString(got[:]) {
					b.Note("already appended to /%s", rel)
					return nil
				}
			}
		}
		data = append(old, data...)
		if appendRecord != "" {
			next := sha256.Sum256(data)
			if err := b.Root.WriteFile(appendRecord, []byte(hex.EncodeToString(next[:])), rootfs.WriteOptions{Perm: 0o600, MkdirPerm: 0o700}); err != nil {
				return err
			}
		}
	}
	if owner.UID == os.Geteuid() && owner.GID == os.Getegid() {
		owner = rootfs.NoOwner
	}
	if err := b.Root.WriteFile(rel, data, rootfs.WriteOptions{Perm: perm, Owner: owner, MkdirPerm: 0o755}); err != nil {
		return err
	}
	if w.Permissions&(os.ModeSetuid|os.ModeSetgid|os.ModeSticky) != 0 {
		verb += " (setuid/setgid/sticky bits not applied)"
	}
	if zeroMode {
		verb += " (mode 0 given, 0600 used)"
	}
	b.Note("%s %s", verb, what)
	return nil
}

// writeFilePath turns a write_files path into one below the root. Paths
// are taken as absolute (cloud-init runs with cwd /); a ".." element is
// refused rather than resolved, since it can only be a mistake or an
// attempt to leave the target tree.
func writeFilePath(p string) (string, error) {
	switch {
	case strings.TrimSpace(p) == "":
		return "", errors.New("write_files: empty path")
	case strings.ContainsRune(p, 0):
		return "", fmt.Errorf("write_files: path %q contains a NUL byte", p)
	case strings.HasSuffix(p, "/"):
		return "", fmt.Errorf("write_files: path %q names a directory, not a file", p)
	}
	for _, el := range strings.Split(p, "/") {
		if el == ".." {
			return "", fmt.Errorf("write_files: path %q has a \"..\" element; refused", p)
		}
	}
	rel := strings.TrimPrefix(path.Clean("/"+p), "/")
	if rel == "" || rel == "." {
		return "", fmt.Errorf("write_files: path %q names the root", p)
	}
	return rel, nil
}
