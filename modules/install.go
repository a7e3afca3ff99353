package modules

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/flint-dev/flint/internal/rootfs"
)

// Names flint gives its own entries in <root>/lib/modules. They start with a
// dot or carry a suffix no kernel release has, so neither depmod nor modprobe
// mistakes them for a release.
const (
	// RecordName is the file, inside an installed tree, that records the
	// bundle it came from.
	RecordName  = ".flint-bundle"
	retiredName = ".flint-retired" // marks the previous tree once it is being replaced
	oldSuffix   = ".flint-old"
	stagingTag  = ".flint-staging-"
	trashTag    = ".flint-trash-"
	lockTag     = ".flint-lock"
)

// Bundle is one module bundle to install: where it is and what it must hash to.
type Bundle struct {
	URL    string
	SHA256 string // lower-case hex; required
	Size   int64  // bytes of the bundle as stored; 0 when unknown
	Format Format // "" to go by the URL and the magic bytes
	// Pinned says the digest came from configuration or a signed or pinned
	// manifest rather than from next to the bundle; only then may the bundle
	// travel over plain HTTP.
	Pinned bool
}

// Record is what an installed tree says about its origin (RecordName).
type Record struct {
	Release     string    `json:"release"`
	SHA256      string    `json:"sha256"`
	URL         string    `json:"url"` // without query string: presigned URLs carry credentials
	Format      Format    `json:"format"`
	Size        int64     `json:"size"`
	Files       int       `json:"files"`
	Bytes       int64     `json:"bytes"`
	InstalledAt time.Time `json:"installed_at"`
	// Index says where the tree's module index came from: IndexBundle or
	// IndexDepmod.
	Index string `json:"index,omitempty"`
	// IndexNote says why an index the bundle carried was not used.
	IndexNote string `json:"index_note,omitempty"`
}

// Where an installed tree's module index came from (Record.Index).
const (
	// IndexBundle: the bundle carried it, and its stamp agreed with
	// every file of the tree.
	IndexBundle = "bundle"
	// IndexDepmod: depmod built it on this machine.
	IndexDepmod = "depmod"
)

// Result reports what Install did.
type Result struct {
	Release string
	// AlreadyInstalled is true when the tree was in place with this digest
	// and nothing was fetched.
	AlreadyInstalled bool
	Record           Record
	// Replaced is true when a previous tree was swapped out (and removed).
	Replaced bool
}

// Installer puts module bundles into <Root>/lib/modules/<Release>.
type Installer struct {
	Root    string // "" means "/"
	Release string
	Limits  Limits
	// Open returns the bundle's byte stream. Nil means a Fetcher with
	// default settings.
	Open func(ctx context.Context, b Bundle) (io.ReadCloser, error)
	// Depmod builds the module indexes for base/lib/modules/<release>. It
	// runs on the staging tree, before the tree becomes visible, unless
	// the bundle carries an index that its stamp shows to be the tree's
	// (see IndexStampName). Nil means RunDepmod; a bundle without stamp
	// that carries modules.dep is accepted without depmod when the tool is
	// missing.
	Depmod func(ctx context.Context, base, release string) error
	// NoSync skips syncfs and the directory fsyncs. Only for scratch roots
	// (tests, throw-away image builds): without them a power cut right
	// after the swap can expose empty files.
	NoSync bool
}

// stepHook lets the crash tests stop the installer between its steps.
var stepHook = func(string) {}

// exchange swaps two paths atomically; a variable so that tests can take
// the fallback a filesystem without RENAME_EXCHANGE forces.
var exchange = func(a, b string) error {
	return unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE)
}

// ModulesDir is <root>/lib/modules, lexically. Installs go through
// resolveModulesDir, which also follows lib -> usr/lib inside the root.
func ModulesDir(root string) string {
	if root == "" {
		root = "/"
	}
	return filepath.Join(root, "lib", "modules")
}

// resolveModulesDir returns the host path of <root>/lib/modules with
// symlinks resolved inside the root, creating it when create is set: an
// image whose /lib is a symlink (merged /usr) must get its modules in its
// own usr/lib, never in the host's through an absolute link. A missing
// directory without create yields the lexical path.
func resolveModulesDir(root string, create bool) (string, error) {
	if root == "" || root == "/" {
		if create {
			if err := os.MkdirAll("/lib/modules", 0o755); err != nil {
				return "", fmt.Errorf("create /lib/modules: %w", err)
			}
		}
		if p, err := filepath.EvalSymlinks("/lib/modules"); err == nil {
			return p, nil
		}
		return "/lib/modules", nil
	}
	if create {
		if err := os.MkdirAll(root, 0o755); err != nil {
			return "", fmt.Errorf("create root %s: %w", root, err)
		}
	}
	r, err := rootfs.Open(root)
	if errors.Is(err, fs.ErrNotExist) && !create {
		return ModulesDir(root), nil
	}
	if err != nil {
		return "", err
	}
	defer r.Close()
	if create {
		if err := r.MkdirAll("lib/modules", 0o755, rootfs.NoOwner, rootfs.InRoot); err != nil {
			return "", err
		}
	}
	p, err := r.Resolve("lib/modules", rootfs.InRoot)
	if !create && errors.Is(err, fs.ErrNotExist) {
		return ModulesDir(root), nil
	}
	return p, err
}

// Install makes the tree of in.Release the content of bundle b, verified.
//
// The bundle is streamed through SHA-256 and the decompressor into a staging
// directory next to the target; only when the whole stream hashed to
// b.SHA256 and depmod succeeded does the staged tree replace the target, in
// one atomic rename (renameat2 RENAME_EXCHANGE), the previous tree then
// being kept as <release>.flint-old until the new one is verified and finally
// removed. Killed at any point, Install leaves either the previous tree or
// the complete new one in place; the next call (or Recover) finishes or
// rolls back the interrupted one. A tree that already records b.SHA256 and
// has modules.dep is left alone.
func (in *Installer) Install(ctx context.Context, b Bundle) (Result, error) {
	res := Result{Release: in.Release}
	want, err := normDigest(b.SHA256)
	if err != nil {
		return res, err
	}
	if err := validRelease(in.Release); err != nil {
		return res, err
	}
	dir, err := resolveModulesDir(in.Root, true)
	if err != nil {
		return res, err
	}
	unlock, err := lock(dir, in.Release)
	if err != nil {
		return res, err
	}
	defer unlock()
	if err := Recover(dir, in.Release); err != nil {
		return res, err
	}
	if rec, ok := installed(dir, in.Release); ok && rec.SHA256 == want {
		res.AlreadyInstalled, res.Record = true, rec
		return res, nil
	}

	stepHook("stage")
	staging, err := os.MkdirTemp(dir, "."+in.Release+stagingTag)
	if err != nil {
		return res, fmt.Errorf("create staging directory in %s: %w", dir, err)
	}
	defer discard(dir, staging)
	tree := filepath.Join(staging, "lib", "modules", in.Release)
	if err := os.MkdirAll(tree, 0o755); err != nil {
		return res, fmt.Errorf("create staging directory: %w", err)
	}

	rec, x, err := in.fetchAndExtract(ctx, b, want, tree)
	if err != nil {
		return res, fmt.Errorf("install modules for %s from %s: %w", in.Release, redactURL(b.URL), err)
	}
	stepHook("depmod")
	if err := in.index(ctx, staging, tree, x, &rec); err != nil {
		return res, err
	}
	if err := writeRecord(tree, rec); err != nil {
		return res, err
	}
	stepHook("sync")
	// One syncfs instead of an fsync per file: the tree must be on disk
	// before the rename makes it visible, or a power cut could expose empty
	// files under a committed name. (The extraction started writing it
	// back already; this waits for the rest.)
	if !in.NoSync {
		if err := syncFS(staging); err != nil {
			return res, err
		}
	}
	replaced, err := swapIn(dir, in.Release, tree, durable(!in.NoSync))
	if err != nil {
		return res, err
	}
	stepHook("verify")
	target := filepath.Join(dir, in.Release)
	if got, ok := installed(dir, in.Release); !ok || got.SHA256 != want {
		what, err := rollback(dir, in.Release)
		if err != nil {
			return res, fmt.Errorf("install modules for %s: %s does not verify after the swap, and rolling back failed: %w", in.Release, target, err)
		}
		return res, fmt.Errorf("install modules for %s: %s does not verify after the swap; %s", in.Release, target, what)
	}
	stepHook("cleanup")
	if replaced {
		discard(dir, filepath.Join(dir, in.Release+oldSuffix))
	}
	res.Record, res.Replaced = rec, replaced
	return res, nil
}

func (in *Installer) fetchAndExtract(ctx context.Context, b Bundle, want, tree string) (Record, extracted, error) {
	open := in.Open
	if open == nil {
		open = (&Fetcher{}).Open
	}
	stepHook("fetch")
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	src, err := open(ctx, b)
	if err != nil {
		return Record{}, extracted{}, err
	}
	defer src.Close()
	h := &hashCounter{h: sha256.New()}
	raw := io.TeeReader(ctxReader{ctx, src}, h)
	declared := b.Format
	if declared == "" {
		declared = FormatFromURL(b.URL)
	}
	dr, format, closeDec, err := Decompress(raw, declared)
	if err != nil {
		return Record{}, extracted{}, err
	}
	defer closeDec()
	ra := newReadAhead(decodeErrors{dr, format}, cancel)
	defer ra.Close()
	stepHook("extract")
	x, err := extract(ra, tree, filepath.Base(tree), in.Limits, !in.NoSync)
	if err != nil {
		return Record{}, extracted{}, err
	}
	// The digest covers every byte of the bundle, so read what follows the
	// end-of-archive marker too; a few records of padding are normal, more
	// is a bundle hiding data after its archive.
	if n, err := io.Copy(io.Discard, io.LimitReader(ra, 1<<20+1)); err != nil {
		return Record{}, extracted{}, streamError(err)
	} else if n > 1<<20 {
		return Record{}, extracted{}, refuse("", "more than 1 MiB of data after the end of the archive")
	}
	if _, err := io.Copy(io.Discard, raw); err != nil {
		return Record{}, extracted{}, fmt.Errorf("read bundle: %w", err)
	}
	if b.Size > 0 && h.n != b.Size {
		return Record{}, extracted{}, refuse("", "size %d bytes, expected %d", h.n, b.Size)
	}
	got := hex.EncodeToString(h.h.Sum(nil))
	if got != want {
		return Record{}, extracted{}, refuse("", "sha256 %s does not match the expected %s", got, want)
	}
	return Record{
		Release:     filepath.Base(tree),
		SHA256:      want,
		URL:         redactURL(b.URL),
		Format:      format,
		Size:        h.n,
		Files:       x.stats.Files,
		Bytes:       x.stats.Bytes,
		InstalledAt: time.Now().UTC().Truncate(time.Second),
	}, x, nil
}

// index gives the staged tree its module index: the one the bundle
// carries when its stamp agrees with the tree (no depmod run), else
// depmod's. A shipped index that does not agree is removed first, so no
// file of it outlives the rebuild, and the reason is recorded.
func (in *Installer) index(ctx context.Context, staging, tree string, x extracted, rec *Record) error {
	if x.stamp != nil {
		_, err := checkShippedIndex(tree, filepath.Base(tree), x)
		if err == nil {
			rec.Index = IndexBundle
			return nil
		}
		rec.IndexNote = "the bundle's module index was not used: " + err.Error()
		for _, name := range depmodOutputs {
			if err := os.Remove(filepath.Join(tree, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("install modules for %s: remove the bundle's %s: %w", filepath.Base(tree), name, err)
			}
		}
	}
	rec.Index = IndexDepmod
	err := in.depmod(ctx, staging, tree)
	if err != nil && rec.IndexNote != "" {
		return fmt.Errorf("%w (%s)", err, rec.IndexNote)
	}
	return err
}

func (in *Installer) depmod(ctx context.Context, staging, tree string) error {
	run := in.Depmod
	if run == nil {
		run = RunDepmod
	}
	err := run(ctx, staging, filepath.Base(tree))
	if errors.Is(err, ErrNoDepmod) {
		if _, serr := os.Stat(filepath.Join(tree, "modules.dep")); serr == nil {
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("install modules for %s: %w", filepath.Base(tree), err)
	}
	return nil
}

type hashCounter struct {
	h hash.Hash
	n int64
}

func (c *hashCounter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.h.Write(p)
}

// ctxReader stops a stream when the context ends, so a cancelled install
// does not read a local file to its end.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, sourceError{err}
	}
	n, err := c.r.Read(p)
	if err != nil && err != io.EOF {
		err = sourceError{err}
	}
	return n, err
}

// decodeErrors turns what the decompressor rejects into a refusal naming
// the format, leaving failures of the source as they are.
type decodeErrors struct {
	r      io.Reader
	format Format
}

func (d decodeErrors) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if err == nil || err == io.EOF {
		return n, err
	}
	var se sourceError
	if errors.As(err, &se) || errors.Is(err, io.ErrUnexpectedEOF) {
		return n, err
	}
	return n, refuse("", "corrupt or hostile %s stream: %v", d.format, err)
}

func normDigest(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(s, "sha256:")))
	if len(s) != 64 {
		return "", fmt.Errorf("sha256 %q: want 64 hex digits", s)
	}
	if _, err := hex.DecodeString(s); err != nil {
		return "", fmt.Errorf("sha256 %q: not hex", s)
	}
	return s, nil
}

func validRelease(r string) error {
	if r == "" || r == "." || r == ".." || strings.ContainsAny(r, "/\x00") || strings.HasPrefix(r, ".") ||
		strings.HasSuffix(r, oldSuffix) {
		return fmt.Errorf("invalid kernel release %q", r)
	}
	return nil
}

// redactURL drops the query and any user info: presigned URLs carry
// credentials there, and the URL is logged and recorded.
func redactURL(u string) string {
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		u = u[:i]
	}
	if i := strings.Index(u, "://"); i >= 0 {
		if j := strings.IndexByte(u[i+3:], '@'); j >= 0 && !strings.Contains(u[i+3:i+3+j], "/") {
			u = u[:i+3] + u[i+3+j+1:]
		}
	}
	return u
}

// ReadRecord returns the record of the tree <dir>/<release>.
func ReadRecord(dir, release string) (Record, error) {
	var rec Record
	b, err := os.ReadFile(filepath.Join(dir, release, RecordName))
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, fmt.Errorf("read %s: %w", filepath.Join(dir, release, RecordName), err)
	}
	return rec, nil
}

// installed reports a tree that flint installed completely: modules.dep
// present and a readable record.
func installed(dir, release string) (Record, bool) {
	if _, err := os.Lstat(filepath.Join(dir, release, "modules.dep")); err != nil {
		return Record{}, false
	}
	rec, err := ReadRecord(dir, release)
	return rec, err == nil && rec.SHA256 != ""
}

func writeRecord(tree string, rec Record) error {
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tree, RecordName), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write bundle record: %w", err)
	}
	return nil
}

func syncFS(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

func syncDir(dir string) error {
	return durable(true).dir(dir)
}

// durable says whether metadata changes are fsynced.
type durable bool

func (d durable) dir(dir string) error {
	if !d {
		return nil
	}
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// swapIn makes tree the content of <dir>/<release>.
//
// With a previous tree: first mark it retired (so a crash after the swap
// tells Recover which of the two trees in the staging directory is the old
// one), exchange the two atomically, then move the old one to
// <release>.flint-old. Without one: a single no-replace rename.
func swapIn(dir, release, tree string, d durable) (replaced bool, err error) {
	target := filepath.Join(dir, release)
	old := target + oldSuffix
	fi, err := os.Lstat(target)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		stepHook("rename")
		if err := unix.Renameat2(unix.AT_FDCWD, tree, unix.AT_FDCWD, target, unix.RENAME_NOREPLACE); err != nil {
			return false, fmt.Errorf("move new tree into %s: %w", target, err)
		}
		return false, d.dir(dir)
	case err != nil:
		return false, fmt.Errorf("inspect %s: %w", target, err)
	case !fi.IsDir():
		return false, fmt.Errorf("%s exists and is not a directory; remove it", target)
	}
	stepHook("retire")
	if err := touchSync(filepath.Join(target, retiredName), d); err != nil {
		return false, fmt.Errorf("mark previous tree %s: %w", target, err)
	}
	stepHook("exchange")
	err = exchange(tree, target)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		// No RENAME_EXCHANGE on this filesystem: two renames, with a moment
		// where only <release>.flint-old exists; Recover restores it if we
		// die there.
		if err := os.Rename(target, old); err != nil {
			return false, fmt.Errorf("move previous tree aside: %w", err)
		}
		stepHook("between")
		if err := os.Rename(tree, target); err != nil {
			if rerr := os.Rename(old, target); rerr != nil {
				return false, fmt.Errorf("move new tree into %s: %w; putting the previous tree back from %s also failed: %v (the next install or boot restores it)", target, err, old, rerr)
			}
			return false, fmt.Errorf("move new tree into %s: %w; previous tree kept", target, err)
		}
		return true, d.dir(dir)
	}
	if err != nil {
		os.Remove(filepath.Join(target, retiredName))
		return false, fmt.Errorf("swap new tree into %s: %w", target, err)
	}
	stepHook("keep-old")
	if err := os.Rename(tree, old); err != nil {
		return true, fmt.Errorf("keep previous tree as %s: %w", old, err)
	}
	return true, d.dir(dir)
}

func touchSync(name string, d durable) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return d.dir(filepath.Dir(name))
}

// rollback takes a tree that failed verification out of the live name
// and says what is live instead: <release>.flint-old put back, or, on a
// first install with no previous tree, nothing (a tree that failed its
// check never stays live). An error means the live tree is still the one
// that failed.
func rollback(dir, release string) (string, error) {
	target := filepath.Join(dir, release)
	old := target + oldSuffix
	if _, err := os.Lstat(old); errors.Is(err, fs.ErrNotExist) {
		if err := discard(dir, target); err != nil {
			return "", fmt.Errorf("remove %s: %w", target, err)
		}
		if err := syncDir(dir); err != nil {
			return "", err
		}
		return "it was removed (there was no previous tree to restore)", nil
	} else if err != nil {
		return "", fmt.Errorf("inspect %s: %w", old, err)
	}
	if err := unix.Renameat2(unix.AT_FDCWD, old, unix.AT_FDCWD, target, unix.RENAME_EXCHANGE); err != nil {
		return "", fmt.Errorf("put the previous tree %s back: %w", old, err)
	}
	if err := os.Remove(filepath.Join(target, retiredName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("previous tree restored, but its mark stays: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return "", err
	}
	// The failed tree now sits under the old name: leftovers of a failed
	// removal are removed by the next Recover.
	discard(dir, old)
	return "previous tree restored", nil
}

// discard removes a directory of ours without ever leaving it half-removed
// under a name Recover would trust: it is renamed to a trash name first.
// The error says whether p is gone from its name; what is left in the
// trash is removed by the next Recover.
func discard(dir, p string) error {
	if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	trash, err := os.MkdirTemp(dir, "."+strings.TrimPrefix(filepath.Base(p), ".")+trashTag)
	if err != nil {
		return os.RemoveAll(p)
	}
	dest := filepath.Join(trash, "t")
	if err := os.Rename(p, dest); err != nil {
		os.RemoveAll(trash)
		return os.RemoveAll(p)
	}
	stepHook("discard")
	os.RemoveAll(trash)
	return nil
}

// Recover finishes or rolls back an install of release into dir
// (<root>/lib/modules) that was interrupted, and removes flint's leftovers:
//   - a staging directory holding a retired tree means the swap happened:
//     that tree becomes <release>.flint-old; any other staging directory was
//     never visible and is removed;
//   - a retired mark on the live tree means the swap never happened: the
//     mark is removed;
//   - <release>.flint-old without a live tree (the two-rename fallback) is
//     put back; with a live, complete tree it is removed.
//
// Install calls it first; the handler may call it at boot on its own.
func Recover(dir, release string) error {
	if err := validRelease(release); err != nil {
		return err
	}
	target := filepath.Join(dir, release)
	old := target + oldSuffix
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("recover %s: %w", dir, err)
	}
	stagingPrefix := "." + release + stagingTag
	for _, e := range ents {
		name := e.Name()
		switch {
		case strings.HasPrefix(name, "."+release) && strings.Contains(name, trashTag):
			os.RemoveAll(filepath.Join(dir, name))
		case strings.HasPrefix(name, stagingPrefix):
			p := filepath.Join(dir, name)
			inner := filepath.Join(p, "lib", "modules", release)
			if _, err := os.Lstat(filepath.Join(inner, retiredName)); err == nil {
				if _, err := os.Lstat(old); errors.Is(err, fs.ErrNotExist) {
					if err := os.Rename(inner, old); err != nil {
						return fmt.Errorf("recover %s: keep previous tree: %w", target, err)
					}
				}
			}
			discard(dir, p)
		}
	}
	if _, err := os.Lstat(old); err == nil {
		if _, err := os.Lstat(target); errors.Is(err, fs.ErrNotExist) {
			if err := os.Rename(old, target); err != nil {
				return fmt.Errorf("recover %s: restore previous tree: %w", target, err)
			}
			os.Remove(filepath.Join(target, retiredName))
		} else if _, ok := installed(dir, release); ok {
			discard(dir, old)
		} else if _, err := rollback(dir, release); err != nil {
			return fmt.Errorf("recover %s: %w", target, err)
		}
	}
	// Marked but never swapped, or swapped back by a rollback.
	if err := os.Remove(filepath.Join(target, retiredName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("recover %s: %w", target, err)
	}
	return syncDir(dir)
}

// lock serialises installs of one release (a boot-time handler and a manual
// "flint modules install" may overlap). The kernel drops the lock when the
// process dies, so a killed install never blocks the next one.
func lock(dir, release string) (func(), error) {
	name := filepath.Join(dir, "."+release+lockTag)
	// No following a lock file planted as a symlink in an image root.
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	return func() { f.Close() }, nil
}
