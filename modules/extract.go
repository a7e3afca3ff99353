package modules

import (
	"archive/tar"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Limits caps what a bundle may hold, so a hostile or broken one cannot fill
// the disk or exhaust inodes. Zero fields take the DefaultLimits value.
type Limits struct {
	MaxEntries   int   // archive entries of any type
	MaxFileSize  int64 // bytes of one regular file
	MaxTotalSize int64 // bytes of all regular files together (the unpacked size)
}

// DefaultLimits fits every distribution kernel's module tree with a wide
// margin (Debian's cloud kernel: ~1,100 files, ~90 MB; a full generic kernel:
// ~6,000 files, ~400 MB).
var DefaultLimits = Limits{
	MaxEntries:   100_000,
	MaxFileSize:  256 << 20,
	MaxTotalSize: 4 << 30,
}

func (l Limits) withDefaults() Limits {
	if l.MaxEntries <= 0 {
		l.MaxEntries = DefaultLimits.MaxEntries
	}
	if l.MaxFileSize <= 0 {
		l.MaxFileSize = DefaultLimits.MaxFileSize
	}
	if l.MaxTotalSize <= 0 {
		l.MaxTotalSize = DefaultLimits.MaxTotalSize
	}
	return l
}

// ExtractStats describes what an extraction wrote.
type ExtractStats struct {
	Entries int
	Files   int
	Bytes   int64
}

// Extract reads a tar stream and writes the tree of release into dir, which
// must be an existing, empty directory; dir becomes lib/modules/<release>.
// Every entry is checked with CheckEntry and against lim; the first refusal
// or error stops extraction and is returned, leaving dir partly filled (the
// caller discards it). No path outside dir is ever opened for writing: every
// operation is relative to a descriptor of dir and never follows a symbolic
// link. Modes and modification times are kept; files are owned by root when
// running as root. A module index stamp (IndexStampName) is read, checked
// to be a regular file of bounded size, and not written.
func Extract(r io.Reader, dir, release string, lim Limits) (ExtractStats, error) {
	x, err := extract(r, dir, release, lim, false)
	return x.stats, err
}

// extracted is what an extraction leaves besides the tree: the size and
// checksum of every file and the target of every link, by tree-relative
// path, and the module index stamp when the bundle carries one (it is
// not written to the tree).
type extracted struct {
	stats ExtractStats
	sums  map[string]fileSum
	stamp []byte
}

// extract is Extract keeping what the installer checks the module index
// with; writeback starts writing the tree to disk while it is extracted
// (see extractor.writeback).
func extract(r io.Reader, dir, release string, lim Limits, writeback bool) (extracted, error) {
	root, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return extracted{}, fmt.Errorf("open staging directory %s: %w", dir, err)
	}
	x := &extractor{
		root:    root,
		release: release,
		lim:     lim.withDefaults(),
		seen:    make(map[string]seenEntry),
		sums:    make(map[string]fileSum),
		asRoot:  os.Geteuid() == 0,
		buf:     make([]byte, 256<<10),
		lastDir: -1,
		early:   writeback,
	}
	defer x.close()
	err = x.run(tar.NewReader(r))
	if serr := x.waitWriteback(); err == nil && serr != nil {
		err = fmt.Errorf("write %s to disk: %w", dir, serr)
	}
	return extracted{stats: x.stats, sums: x.sums, stamp: x.stamp}, err
}

type seenEntry struct {
	typ      byte
	implicit bool // a directory created for its children before (or without) its own entry
}

type dirMeta struct {
	rel   string
	mode  uint32
	mtime time.Time
}

type extractor struct {
	root    int
	release string
	lim     Limits
	seen    map[string]seenEntry
	dirs    []dirMeta
	links   []string
	sums    map[string]fileSum
	stamp   []byte
	asRoot  bool
	buf     []byte
	stats   ExtractStats

	// Early writeback: a syncfs running on its own goroutine (syncing,
	// closed when it returns, with its error in syncErr), started when
	// syncedAt was the bytes written.
	early    bool
	syncing  chan struct{}
	syncErr  error
	syncedAt int64

	// The parent of the previous entry, kept open: archives list a
	// directory's files together.
	lastDirRel string
	lastDir    int
}

func (x *extractor) close() {
	if x.lastDir >= 0 {
		unix.Close(x.lastDir)
	}
	unix.Close(x.root)
}

func (x *extractor) run(tr *tar.Reader) error {
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return streamError(err)
		}
		x.stats.Entries++
		if x.stats.Entries > x.lim.MaxEntries {
			return refuse("", "more than %d entries", x.lim.MaxEntries)
		}
		if err := x.entry(tr, h); err != nil {
			return err
		}
	}
	if err := x.checkLinks(); err != nil {
		return err
	}
	return x.applyDirMeta()
}

// streamError names a damaged stream; a cut-off download is the common cause.
func streamError(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return refuse("", "truncated archive (stream ended inside an entry)")
	}
	if errors.Is(err, tar.ErrHeader) {
		return refuse("", "not a valid tar archive: %v", err)
	}
	var re *RefusedError
	if errors.As(err, &re) {
		return err
	}
	var se sourceError
	if errors.As(err, &se) {
		return fmt.Errorf("read bundle: %w", se.error)
	}
	return refuse("", "corrupt archive stream: %v", err)
}

// sourceError marks a failure of the bundle's source (file, network,
// cancellation) as opposed to bad content found by the decompressor.
type sourceError struct{ error }

func (e sourceError) Unwrap() error { return e.error }

func (x *extractor) entry(tr *tar.Reader, h *tar.Header) error {
	e, err := CheckEntry(h, x.release)
	if err != nil {
		return err
	}
	if e.Parent {
		return nil
	}
	if prev, dup := x.seen[e.Rel]; dup && !(prev.implicit && h.Typeflag == tar.TypeDir) {
		return refuse(h.Name, "duplicate path %q", e.Rel)
	}
	// Group and world write bits are dropped: root loads these files, and a
	// bundle packed under umask 000 must not let any user swap a module.
	mode := uint32(h.Mode) & 0o755
	if e.Rel == "" {
		x.seen[""] = seenEntry{typ: tar.TypeDir}
		x.dirs = append(x.dirs, dirMeta{rel: ".", mode: mode, mtime: h.ModTime})
		return nil
	}
	if e.Rel == IndexStampName {
		return x.readStamp(tr, h)
	}
	dirRel, base := path.Split(e.Rel)
	dirRel = strings.TrimSuffix(dirRel, "/")
	pfd, err := x.parent(h.Name, dirRel)
	if err != nil {
		return err
	}
	switch h.Typeflag {
	case tar.TypeDir:
		if prev, ok := x.seen[e.Rel]; !ok || !prev.implicit {
			if err := unix.Mkdirat(pfd, base, 0o700); err != nil {
				return fmt.Errorf("create directory %s: %w", e.Rel, err)
			}
		}
		x.seen[e.Rel] = seenEntry{typ: tar.TypeDir}
		x.dirs = append(x.dirs, dirMeta{rel: e.Rel, mode: mode, mtime: h.ModTime})
		return nil
	case tar.TypeReg:
		if h.Size > x.lim.MaxFileSize {
			return refuse(h.Name, "size %d exceeds the per-file cap of %d bytes", h.Size, x.lim.MaxFileSize)
		}
		if x.stats.Bytes+h.Size > x.lim.MaxTotalSize {
			return refuse(h.Name, "unpacked size exceeds the cap of %d bytes", x.lim.MaxTotalSize)
		}
		x.seen[e.Rel] = seenEntry{typ: tar.TypeReg}
		sum, err := x.writeFile(pfd, base, e.Rel, tr, h.Size, mode)
		if err != nil {
			return err
		}
		x.sums[e.Rel] = sum
		x.stats.Files++
		x.stats.Bytes += h.Size
		x.writeback()
	case tar.TypeSymlink:
		x.seen[e.Rel] = seenEntry{typ: tar.TypeSymlink}
		if err := unix.Symlinkat(h.Linkname, pfd, base); err != nil {
			return fmt.Errorf("create symbolic link %s: %w", e.Rel, err)
		}
		x.links = append(x.links, e.Rel)
		x.sums[e.Rel] = fileSum{Link: h.Linkname}
	case tar.TypeLink:
		if t, ok := x.seen[e.Link]; !ok || t.typ != tar.TypeReg {
			return refuse(h.Name, "hard link target %q is not a regular file earlier in the bundle", h.Linkname)
		}
		ldir, lbase := path.Split(e.Link)
		lfd, err := openDir(x.root, strings.TrimSuffix(ldir, "/"))
		if err != nil {
			return refuse(h.Name, "hard link target %q: %v", h.Linkname, err)
		}
		// flags 0: never follow a link at the final component.
		err = unix.Linkat(lfd, lbase, pfd, base, 0)
		unix.Close(lfd)
		if err != nil {
			return fmt.Errorf("create hard link %s: %w", e.Rel, err)
		}
		x.seen[e.Rel] = seenEntry{typ: tar.TypeLink}
		x.sums[e.Rel] = x.sums[e.Link]
		return nil // a hard link shares its target's metadata
	}
	return x.setMeta(pfd, base, e.Rel, h.Typeflag == tar.TypeSymlink, h.ModTime)
}

// earlyWriteback is how many bytes more an early writeback waits for.
const earlyWriteback = 16 << 20

// writeback starts a syncfs of the tree's file system on its own goroutine
// whenever earlyWriteback more bytes were written and none is running:
// the kernel's flusher threads write what is extracted while the rest is
// still being decoded, and the installer's final syncfs, which is what
// makes the tree durable, has less left to wait for. Its error fails the
// extraction: a writeback error it reports is not reported again to the
// final syncfs.
func (x *extractor) writeback() {
	if !x.early || x.stats.Bytes-x.syncedAt < earlyWriteback {
		return
	}
	if x.syncing != nil {
		select {
		case <-x.syncing:
		default:
			return
		}
		if x.syncErr != nil {
			return
		}
	}
	fd, err := unix.Dup(x.root)
	if err != nil {
		return
	}
	done := make(chan struct{})
	x.syncing, x.syncedAt = done, x.stats.Bytes
	go func() {
		defer close(done)
		x.syncErr = unix.Syncfs(fd)
		unix.Close(fd)
	}()
}

// waitWriteback waits for a running early writeback and returns the
// first error of any.
func (x *extractor) waitWriteback() error {
	if x.syncing == nil {
		return nil
	}
	<-x.syncing
	return x.syncErr
}

// parent returns a descriptor of the directory dirRel inside the tree,
// creating missing directories (archives may omit them).
func (x *extractor) parent(name, dirRel string) (int, error) {
	if dirRel == "" {
		return x.root, nil
	}
	if x.lastDir >= 0 && x.lastDirRel == dirRel {
		return x.lastDir, nil
	}
	if t, ok := x.seen[dirRel]; ok && t.typ != tar.TypeDir {
		return -1, refuse(name, "parent %q is not a directory", dirRel)
	}
	fd, err := openDir(x.root, dirRel)
	if errors.Is(err, unix.ENOENT) {
		fd, err = x.mkdirAll(name, dirRel)
	}
	if err != nil {
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.EXDEV) {
			return -1, refuse(name, "parent %q is not a plain directory", dirRel)
		}
		if errors.Is(err, ErrRefused) {
			return -1, err
		}
		return -1, fmt.Errorf("open directory %s: %w", dirRel, err)
	}
	if x.lastDir >= 0 {
		unix.Close(x.lastDir)
	}
	x.lastDir, x.lastDirRel = fd, dirRel
	return fd, nil
}

func (x *extractor) mkdirAll(name, dirRel string) (int, error) {
	fd, err := unix.Dup(x.root)
	if err != nil {
		return -1, err
	}
	done := ""
	for _, c := range strings.Split(dirRel, "/") {
		done = path.Join(done, c)
		if _, ok := x.seen[done]; !ok {
			if err := unix.Mkdirat(fd, c, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
				unix.Close(fd)
				return -1, err
			}
			x.seen[done] = seenEntry{typ: tar.TypeDir, implicit: true}
			x.stats.Entries++
			if x.stats.Entries > x.lim.MaxEntries {
				unix.Close(fd)
				return -1, refuse("", "more than %d entries", x.lim.MaxEntries)
			}
		}
		if fd, err = stepDown(fd, c); err != nil {
			return -1, err
		}
	}
	return fd, nil
}

// stepDown opens the directory name in the directory fd, never following
// a symbolic link, and closes fd.
func stepDown(fd int, name string) (int, error) {
	nfd, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	unix.Close(fd)
	if err != nil {
		return -1, err
	}
	return nfd, nil
}

func (x *extractor) writeFile(pfd int, base, rel string, r io.Reader, size int64, mode uint32) (fileSum, error) {
	sum := fileSum{Size: size}
	fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return sum, fmt.Errorf("create %s: %w", rel, err)
	}
	f := os.NewFile(uintptr(fd), rel)
	n, err := copyWithCRC(f, io.LimitReader(r, size), x.buf, &sum.CRC)
	if err == nil && n != size {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		f.Close()
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return sum, refuse(rel, "truncated archive (stream ended inside this file)")
		}
		var re *RefusedError
		if errors.As(err, &re) {
			return sum, err
		}
		return sum, fmt.Errorf("write %s: %w", rel, err)
	}
	if err := unix.Fchmod(fd, mode); err != nil {
		f.Close()
		return sum, fmt.Errorf("chmod %s: %w", rel, err)
	}
	if x.asRoot {
		if err := unix.Fchown(fd, 0, 0); err != nil {
			f.Close()
			return sum, fmt.Errorf("chown %s: %w", rel, err)
		}
	}
	if err := f.Close(); err != nil {
		return sum, fmt.Errorf("write %s: %w", rel, err)
	}
	return sum, nil
}

// copyWithCRC copies r to w through buf, folding what passes into the
// CRC-32C at crc.
func copyWithCRC(w io.Writer, r io.Reader, buf []byte, crc *uint32) (int64, error) {
	var n int64
	for {
		m, rerr := r.Read(buf)
		if m > 0 {
			*crc = crc32.Update(*crc, castagnoli(), buf[:m])
			k, werr := w.Write(buf[:m])
			n += int64(k)
			if werr != nil {
				return n, werr
			}
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}

// stampType marks the stamp among the entries seen: it is no file of the
// tree, so nothing may link to it or lie under it.
const stampType = 'I'

// readStamp keeps the module index stamp in memory: it describes the
// bundle and is checked against what was extracted, never installed.
func (x *extractor) readStamp(tr io.Reader, h *tar.Header) error {
	if h.Typeflag != tar.TypeReg {
		return refuse(h.Name, "%s is reserved for the module index stamp and must be a regular file", IndexStampName)
	}
	if h.Size > maxStampSize {
		return refuse(h.Name, "module index stamp of %d bytes exceeds the %d-byte cap", h.Size, maxStampSize)
	}
	b, err := io.ReadAll(io.LimitReader(tr, h.Size))
	if err != nil {
		return streamError(err)
	}
	if int64(len(b)) != h.Size {
		return refuse(h.Name, "truncated archive (stream ended inside this file)")
	}
	x.seen[IndexStampName] = seenEntry{typ: stampType}
	x.stamp = b
	return nil
}

func (x *extractor) setMeta(pfd int, base, rel string, isLink bool, mtime time.Time) error {
	if x.asRoot && isLink {
		if err := unix.Fchownat(pfd, base, 0, 0, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("chown %s: %w", rel, err)
		}
	}
	ts := unix.NsecToTimespec(mtime.UnixNano())
	if err := unix.UtimesNanoAt(pfd, base, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set mtime of %s: %w", rel, err)
	}
	return nil
}

// checkLinks resolves every symbolic link beneath the tree: a link whose
// target passes through another link can leave the tree although each one
// alone looks contained. Dangling links inside the tree are allowed.
func (x *extractor) checkLinks() error {
	for _, rel := range x.links {
		fd, err := unix.Openat2(x.root, rel, &unix.OpenHow{
			Flags:   unix.O_PATH | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
		})
		if err == nil {
			unix.Close(fd)
			continue
		}
		switch {
		case errors.Is(err, unix.ENOENT):
		case errors.Is(err, unix.ENOSYS):
			return nil // pre-5.6 kernel: the lexical check stands alone
		case errors.Is(err, unix.EXDEV), errors.Is(err, unix.ELOOP):
			return refuse(rel, "symbolic link resolves outside the release tree")
		default:
			return fmt.Errorf("resolve symbolic link %s: %w", rel, err)
		}
	}
	return nil
}

// applyDirMeta runs last and deepest first, since creating entries changes a
// directory's mtime and a read-only mode would stop its children being made.
func (x *extractor) applyDirMeta() error {
	for i := len(x.dirs) - 1; i >= 0; i-- {
		d := x.dirs[i]
		fd, err := openDir(x.root, d.rel)
		if err != nil {
			return fmt.Errorf("open directory %s: %w", d.rel, err)
		}
		err = unix.Fchmod(fd, d.mode)
		if err == nil && x.asRoot {
			err = unix.Fchown(fd, 0, 0)
		}
		if err == nil {
			tv := unix.NsecToTimeval(d.mtime.UnixNano())
			err = unix.Futimes(fd, []unix.Timeval{tv, tv})
		}
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("set metadata of directory %s: %w", d.rel, err)
		}
	}
	return nil
}

// openDir opens a directory beneath root without following any symbolic
// link, so a hostile entry cannot redirect a later write.
func openDir(root int, rel string) (int, error) {
	if rel == "" || rel == "." {
		return unix.Dup(root)
	}
	fd, err := unix.Openat2(root, rel, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	})
	if !errors.Is(err, unix.ENOSYS) {
		return fd, err
	}
	// Pre-5.6 kernels: walk component by component, refusing links.
	fd, err = unix.Dup(root)
	if err != nil {
		return -1, err
	}
	for _, c := range strings.Split(rel, "/") {
		if fd, err = stepDown(fd, c); err != nil {
			return -1, err
		}
	}
	return fd, nil
}
