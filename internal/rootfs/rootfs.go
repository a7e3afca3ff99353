// Package rootfs performs file operations relative to a root directory
// that they cannot escape: paths resolve with openat2(RESOLVE_IN_ROOT), so
// ".." and absolute symlinks stay inside the root, and callers that must
// not follow any symlink at all (a user's ~/.ssh) ask for Strict
// resolution. Writes are atomic: a temporary file in the same directory,
// fsync, rename, fsync of the directory.
package rootfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Root is an open root directory. The zero value is not usable.
type Root struct {
	dir string
	fd  int
}

// Open opens dir as a root. dir "/" is the live system.
func Open(dir string) (*Root, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Open(abs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open root", Path: abs, Err: err}
	}
	return &Root{dir: abs, fd: fd}, nil
}

// Close releases the root's descriptor.
func (r *Root) Close() error { return unix.Close(r.fd) }

// Dir returns the root's absolute host path.
func (r *Root) Dir() string { return r.dir }

// IsHost reports whether the root is the live system's "/".
func (r *Root) IsHost() bool { return r.dir == "/" }

// Path returns the host path of rel (for tools that take paths, such as
// depmod -b). It does not resolve symlinks; use it only for reading by
// trusted tools.
func (r *Root) Path(rel string) string { return filepath.Join(r.dir, clean(rel)) }

func clean(rel string) string {
	return strings.TrimPrefix(filepath.Clean("/"+rel), "/")
}

// Resolution says how symlinks inside the root are treated.
type Resolution int

const (
	// InRoot follows symlinks, resolving them as if the root were "/".
	InRoot Resolution = iota
	// Strict refuses every symlink on the path, including the last element.
	Strict
)

func (res Resolution) flags() uint64 {
	// Not RESOLVE_NO_XDEV: a real root has /run, /var, /home on other
	// mounts, and crossing them is what a path does.
	f := uint64(unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS)
	if res == Strict {
		f |= unix.RESOLVE_NO_SYMLINKS
	}
	return f
}

// open opens rel below the root with openat2.
func (r *Root) open(rel string, flags int, mode uint32, res Resolution) (int, error) {
	rel = clean(rel)
	if rel == "" {
		rel = "."
	}
	how := unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Mode: uint64(mode), Resolve: res.flags()}
	for {
		fd, err := unix.Openat2(r.fd, rel, &how)
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		if err != nil {
			return -1, r.pathErr("open", rel, err, res)
		}
		return fd, nil
	}
}

// ErrSymlink is wrapped by errors for paths refused under Strict resolution
// because an element is a symlink.
var ErrSymlink = errors.New("path contains a symlink")

func (r *Root) pathErr(op, rel string, err error, res Resolution) error {
	if res == Strict && err == unix.ELOOP {
		return &fs.PathError{Op: op, Path: r.Path(rel), Err: ErrSymlink}
	}
	return &fs.PathError{Op: op, Path: r.Path(rel), Err: err}
}

// ReadFile reads rel.
func (r *Root) ReadFile(rel string, res Resolution) ([]byte, error) {
	fd, err := r.open(rel, unix.O_RDONLY, 0, res)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), r.Path(rel))
	defer f.Close()
	return io.ReadAll(f)
}

// Stat returns information on rel (the link itself under Strict).
func (r *Root) Stat(rel string, res Resolution) (fs.FileInfo, error) {
	fd, err := r.open(rel, unix.O_PATH, 0, res)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), r.Path(rel))
	defer f.Close()
	return f.Stat()
}

// Owner is a numeric owner; a negative field leaves it unchanged.
type Owner struct{ UID, GID int }

// NoOwner leaves ownership as the process creates it.
var NoOwner = Owner{-1, -1}

// MkdirAll creates rel and missing parents with perm, owned by owner.
// Existing directories are left as they are.
func (r *Root) MkdirAll(rel string, perm os.FileMode, owner Owner, res Resolution) error {
	rel = clean(rel)
	if rel == "" {
		return nil
	}
	parts := strings.Split(rel, "/")
	for i := range parts {
		sub := strings.Join(parts[:i+1], "/")
		fd, err := r.open(sub, unix.O_PATH|unix.O_DIRECTORY, 0, res)
		if err == nil {
			unix.Close(fd)
			continue
		}
		if !errors.Is(err, unix.ENOENT) {
			return err
		}
		pfd, err := r.open(strings.Join(parts[:i], "/"), unix.O_PATH|unix.O_DIRECTORY, 0, res)
		if err != nil {
			return err
		}
		err = unix.Mkdirat(pfd, parts[i], uint32(perm.Perm()))
		if err == nil {
			// Set owner and mode through a descriptor of the directory just
			// made: by name, a swap for a symlink in between (in a home the
			// user controls) would redirect the chmod to any file.
			var dfd int
			dfd, err = unix.Openat(pfd, parts[i], unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err == nil {
				if owner != NoOwner {
					err = unix.Fchown(dfd, owner.UID, owner.GID)
				}
				if err == nil {
					// mkdir is subject to umask: set the mode asked for.
					err = unix.Fchmod(dfd, uint32(perm.Perm()))
				}
				unix.Close(dfd)
			}
		} else if err == unix.EEXIST {
			err = nil
		}
		unix.Close(pfd)
		if err != nil {
			return &fs.PathError{Op: "mkdir", Path: r.Path(sub), Err: err}
		}
	}
	return nil
}

// WriteOptions tune WriteFile.
type WriteOptions struct {
	Perm  os.FileMode
	Owner Owner
	// Resolution applies to the directory and to an existing file at rel.
	Resolution Resolution
	// MkdirPerm, if non-zero, creates missing parent directories.
	MkdirPerm os.FileMode
	// NoSync skips the fsyncs: the replacement stays atomic for readers
	// and against a crash of the process, but not against power loss.
	// For files on tmpfs (/run) or that are rewritten anyway.
	NoSync bool
}

// WriteFile atomically replaces rel with data: readers see the old file
// or the new one, never a mix, and a crash leaves one of them in place.
func (r *Root) WriteFile(rel string, data []byte, o WriteOptions) error {
	p, err := r.stage(rel, data, o, !o.NoSync)
	if err != nil {
		return err
	}
	defer unix.Close(p.dfd)
	crashPoint()
	if err := p.publish(); err != nil {
		return err
	}
	if o.NoSync {
		return nil
	}
	if err := unix.Fsync(p.dfd); err != nil {
		return &fs.PathError{Op: "fsync", Path: r.Path(p.dir), Err: err}
	}
	return nil
}

// FileWrite is one file of WriteFiles.
type FileWrite struct {
	Rel     string
	Data    []byte
	Options WriteOptions // NoSync is ignored: WriteFiles syncs once
}

// WriteFiles replaces several files as WriteFile does each, in order,
// durable together: every new file is written under a temporary name and
// the files are fsynced at once (a journaling file system commits them
// together: one commit, not one a file), then they are renamed into
// place and their directories fsynced. A crash leaves each file old or
// new, never partly written; before the renames, nothing has changed.
func (r *Root) WriteFiles(writes []FileWrite) error {
	var staged []*stagedFile
	var fds []int // the staged files', open until they are synced
	var paths []string
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
		for _, p := range staged {
			if p.tmp != "" {
				unix.Unlinkat(p.dfd, p.tmp, 0)
			}
			unix.Close(p.dfd)
		}
	}()
	for _, w := range writes {
		p, err := r.stage(w.Rel, w.Data, w.Options, false)
		if err != nil {
			return err
		}
		staged = append(staged, p)
		fd, err := unix.Openat(p.dfd, p.tmp, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return &fs.PathError{Op: "open", Path: r.Path(p.rel), Err: err}
		}
		fds, paths = append(fds, fd), append(paths, r.Path(p.rel))
	}
	err := SyncAll(fds, paths)
	for _, fd := range fds {
		unix.Close(fd)
	}
	fds = nil
	if err != nil {
		return err
	}
	for _, p := range staged {
		crashPoint()
		if err := p.publish(); err != nil {
			return err
		}
	}
	dirs, dirPaths := make([]int, 0, len(staged)), make([]string, 0, len(staged))
	for _, p := range staged {
		dirs, dirPaths = append(dirs, p.dfd), append(dirPaths, r.Path(p.dir))
	}
	return SyncAll(dirs, dirPaths)
}

// SyncAll fsyncs the descriptors (of the paths named, for errors) at
// once, each in a goroutine: on a journaling file system the fsyncs
// waiting together share a commit.
func SyncAll(fds []int, paths []string) error {
	errs := make([]error, len(fds))
	var wg sync.WaitGroup
	for i, fd := range fds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := unix.Fsync(fd); err != nil {
				errs[i] = &fs.PathError{Op: "fsync", Path: paths[i], Err: err}
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// stagedFile is a file's new content written under a temporary name in
// its directory (dfd, open until the caller closes it).
type stagedFile struct {
	r              *Root
	dfd            int
	dir, name, tmp string
	rel            string
}

// publish renames the staged file into place.
func (p *stagedFile) publish() error {
	if err := unix.Renameat(p.dfd, p.tmp, p.dfd, p.name); err != nil {
		unix.Unlinkat(p.dfd, p.tmp, 0)
		p.tmp = ""
		return &fs.PathError{Op: "rename", Path: p.r.Path(p.rel), Err: err}
	}
	p.tmp = ""
	return nil
}

// stage writes rel's new content under a temporary name beside it,
// fsynced when sync is set.
func (r *Root) stage(rel string, data []byte, o WriteOptions, sync bool) (*stagedFile, error) {
	rel = clean(rel)
	dir, name := filepath.Split(rel)
	if name == "" {
		return nil, fmt.Errorf("write %s: not a file path", r.Path(rel))
	}
	if o.MkdirPerm != 0 {
		if err := r.MkdirAll(dir, o.MkdirPerm, NoOwner, o.Resolution); err != nil {
			return nil, err
		}
	}
	if o.Resolution == Strict {
		// Refuse to replace a symlink (or anything but a regular file).
		if fi, err := r.Stat(rel, Strict); err == nil && !fi.Mode().IsRegular() {
			return nil, &fs.PathError{Op: "write", Path: r.Path(rel), Err: errors.New("exists and is not a regular file")}
		} else if err != nil && !errors.Is(err, unix.ENOENT) {
			return nil, err
		}
	}
	dfd, err := r.open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0, o.Resolution)
	if err != nil {
		return nil, err
	}
	perm := o.Perm
	if perm == 0 {
		perm = 0o644
	}
	var tmp string
	var fd int
	for i := 0; ; i++ {
		tmp = fmt.Sprintf(".%s.flint-tmp-%d-%d", name, os.Getpid(), i)
		fd, err = unix.Openat(dfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != unix.EEXIST || i > 100 {
			break
		}
	}
	if err != nil {
		unix.Close(dfd)
		return nil, &fs.PathError{Op: "create", Path: r.Path(filepath.Join(dir, tmp)), Err: err}
	}
	f := os.NewFile(uintptr(fd), tmp)
	fail := func(op string, err error) (*stagedFile, error) {
		f.Close()
		unix.Unlinkat(dfd, tmp, 0)
		unix.Close(dfd)
		return nil, &fs.PathError{Op: op, Path: r.Path(rel), Err: err}
	}
	if _, err := f.Write(data); err != nil {
		return fail("write", err)
	}
	if o.Owner != NoOwner {
		if err := f.Chown(o.Owner.UID, o.Owner.GID); err != nil {
			return fail("chown", err)
		}
	}
	if err := f.Chmod(perm.Perm()); err != nil {
		return fail("chmod", err)
	}
	if sync {
		if err := f.Sync(); err != nil {
			return fail("fsync", err)
		}
	}
	if err := f.Close(); err != nil {
		unix.Unlinkat(dfd, tmp, 0)
		unix.Close(dfd)
		return nil, &fs.PathError{Op: "close", Path: r.Path(rel), Err: err}
	}
	return &stagedFile{r: r, dfd: dfd, dir: dir, name: name, tmp: tmp, rel: rel}, nil
}

// Remove removes rel (a file or an empty directory); a missing rel is not an error.
func (r *Root) Remove(rel string, res Resolution) error {
	rel = clean(rel)
	dir, name := filepath.Split(rel)
	dfd, err := r.open(dir, unix.O_PATH|unix.O_DIRECTORY, 0, res)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return err
	}
	defer unix.Close(dfd)
	err = unix.Unlinkat(dfd, name, 0)
	if err == unix.EISDIR {
		err = unix.Unlinkat(dfd, name, unix.AT_REMOVEDIR)
	}
	if err != nil && err != unix.ENOENT {
		return &fs.PathError{Op: "remove", Path: r.Path(rel), Err: err}
	}
	return nil
}

// Symlink atomically points rel at target (a new link renamed over the old).
func (r *Root) Symlink(target, rel string) error {
	rel = clean(rel)
	dir, name := filepath.Split(rel)
	dfd, err := r.open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0, InRoot)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	tmp := fmt.Sprintf(".%s.flint-tmp-%d", name, os.Getpid())
	unix.Unlinkat(dfd, tmp, 0)
	if err := unix.Symlinkat(target, dfd, tmp); err != nil {
		return &fs.PathError{Op: "symlink", Path: r.Path(rel), Err: err}
	}
	crashPoint()
	if err := unix.Renameat(dfd, tmp, dfd, name); err != nil {
		unix.Unlinkat(dfd, tmp, 0)
		return &fs.PathError{Op: "rename", Path: r.Path(rel), Err: err}
	}
	return unix.Fsync(dfd)
}

// OpenFile opens rel below the root (flags as for open(2), O_CREAT allowed).
func (r *Root) OpenFile(rel string, flags int, perm os.FileMode, res Resolution) (*os.File, error) {
	fd, err := r.open(rel, flags, uint32(perm.Perm()), res)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), r.Path(rel)), nil
}

// ReadDir lists the directory rel below the root.
func (r *Root) ReadDir(rel string, res Resolution) ([]fs.DirEntry, error) {
	f, err := r.OpenFile(rel, unix.O_RDONLY|unix.O_DIRECTORY, 0, res)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.ReadDir(-1)
}

// Rename renames rel to a new name in the same directory.
func (r *Root) Rename(rel, newName string) error {
	rel = clean(rel)
	dir, name := filepath.Split(rel)
	dfd, err := r.open(dir, unix.O_PATH|unix.O_DIRECTORY, 0, InRoot)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	crashPoint()
	if err := unix.Renameat(dfd, name, dfd, newName); err != nil {
		return &fs.PathError{Op: "rename", Path: r.Path(rel), Err: err}
	}
	return nil
}

// Resolve returns the host path rel names, its symlinks resolved inside
// the root as the kernel resolved them, for code that hands the path to
// plain file calls or other programs (an image whose /lib links to
// usr/lib gets its own usr/lib, never the host's).
func (r *Root) Resolve(rel string, res Resolution) (string, error) {
	fd, err := r.open(rel, unix.O_PATH, 0, res)
	if err != nil {
		return "", err
	}
	defer unix.Close(fd)
	p, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
	if err != nil {
		return "", &fs.PathError{Op: "resolve", Path: r.Path(rel), Err: err}
	}
	return p, nil
}

// Contains reports whether the host path p, symlinks resolved, lies
// inside the root: for handing a path to code that uses plain file calls.
func (r *Root) Contains(p string) bool {
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return false
	}
	rel, err := filepath.Rel(r.dir, real)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}
