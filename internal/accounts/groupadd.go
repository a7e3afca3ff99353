package accounts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/flint-dev/flint/internal/rootfs"
)

// errUseGroupadd says the root needs the image's groupadd: something
// writing the files directly would not do as groupadd does.
type errUseGroupadd struct{ why string }

func (e errUseGroupadd) Error() string { return "groupadd is needed: " + e.why }

// NewGroup is a group addGroups created.
type NewGroup struct {
	Name string
	GID  int
}

// addGroups adds groups to the root's etc/group and etc/gshadow as
// groupadd (shadow 4.x, no options) does, without starting it: each
// time a process starts on a first boot counts, and under emulation a
// groupadd is a tenth of a second. The same locks (etc/.pwd.lock, as
// lckpwdf(3) takes it, and group.lock, gshadow.lock as shadow's tools
// make them), the same GID (above the highest in GID_MIN..GID_MAX of
// login.defs, else the lowest free one there), the same lines ("name:x:GID:"
// and "name:!::") added at the end, the same backups (group-, gshadow-:
// the previous file, its owner, mode and times), each file replaced by
// rename after an fsync.
//
// Where groupadd would do more than that, addGroups returns
// errUseGroupadd and changes nothing: a name outside the portable set,
// an SELinux label on etc/group (groupadd labels what it writes), nscd
// or sss_cache in the root (groupadd flushes their caches), groups from
// other NSS sources than files and systemd (groupadd avoids their GIDs
// too), NIS lines ("+", "-") in the files, an entry of the name already
// in gshadow, no etc/group (groupadd makes one).
func addGroups(ctx context.Context, root *rootfs.Root, names []string) ([]NewGroup, error) {
	for _, n := range names {
		if !portableName(n) {
			return nil, errUseGroupadd{fmt.Sprintf("%q is outside the portable name set", n)}
		}
	}
	for _, tool := range []string{"usr/sbin/nscd", "usr/sbin/sss_cache", "sbin/nscd", "sbin/sss_cache"} {
		if _, err := root.Stat(tool, rootfs.InRoot); err == nil {
			return nil, errUseGroupadd{"the root has " + tool}
		}
	}
	if err := nssFilesOnly(root); err != nil {
		return nil, err
	}
	etc, err := root.OpenFile("etc", unix.O_RDONLY|unix.O_DIRECTORY, 0, rootfs.InRoot)
	if err != nil {
		return nil, err
	}
	defer etc.Close()
	dfd := int(etc.Fd())
	var gst unix.Stat_t
	if err := unix.Fstatat(dfd, "group", &gst, unix.AT_SYMLINK_NOFOLLOW); err != nil || gst.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, errUseGroupadd{"etc/group is not a regular file"}
	}
	if selinuxLabeled(dfd, "group") {
		return nil, errUseGroupadd{"etc/group has an SELinux label"}
	}

	unlock, err := lockAccounts(ctx, dfd, root.Path("etc"))
	if err != nil {
		return nil, err
	}
	defer unlock()
	files := []string{"group"}
	if err := unix.Fstatat(dfd, "gshadow", &unix.Stat_t{}, unix.AT_SYMLINK_NOFOLLOW); err == nil {
		files = append(files, "gshadow")
	}
	for _, f := range files {
		release, err := lockFile(dfd, f, root.Path("etc/"+f))
		if err != nil {
			return nil, err
		}
		defer release()
	}

	// Read, decide and check everything before anything is written.
	old := map[string][]byte{}
	stats := map[string]unix.Stat_t{}
	for _, f := range files {
		var st unix.Stat_t
		b, err := readAt(dfd, f, &st)
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: root.Path("etc/" + f), Err: err}
		}
		if hasNIS(b) {
			return nil, errUseGroupadd{"etc/" + f + " has NIS entries"}
		}
		old[f], stats[f] = b, st
	}
	used := map[int]bool{}
	names0 := map[string]bool{}
	entries(old["group"], 4, func(f []string) {
		names0[f[0]] = true
		if gid, err := strconv.Atoi(f[2]); err == nil {
			used[gid] = true
		}
	}, func(string) bool { return false })
	shadowNames := map[string]bool{}
	entries(old["gshadow"], 4, func(f []string) { shadowNames[f[0]] = true }, func(string) bool { return false })
	gidMin, gidMax := loginDefsRange(root)
	var made []NewGroup
	var group, gshadow []byte
	for _, n := range names {
		if names0[n] {
			return nil, fmt.Errorf("groupadd %s: group '%s' already exists", n, n)
		}
		if shadowNames[n] {
			return nil, errUseGroupadd{"etc/gshadow already has an entry for " + n}
		}
		gid, ok := newGID(used, gidMin, gidMax)
		if !ok {
			return nil, fmt.Errorf("groupadd %s: can't get unique GID (no more available GIDs in %d-%d)", n, gidMin, gidMax)
		}
		used[gid], names0[n] = true, true
		made = append(made, NewGroup{Name: n, GID: gid})
		group = fmt.Appendf(group, "%s:x:%d:\n", n, gid)
		gshadow = fmt.Appendf(gshadow, "%s:!::\n", n)
	}
	add := map[string][]byte{"group": group, "gshadow": gshadow}
	for _, f := range files {
		st := stats[f]
		if err := writeAt(dfd, f+"-", old[f], st, true); err != nil {
			return nil, &os.PathError{Op: "write", Path: root.Path("etc/" + f + "-"), Err: err}
		}
		next := old[f]
		if len(next) > 0 && next[len(next)-1] != '\n' {
			next = append(next[:len(next):len(next)], '\n')
		}
		next = append(next[:len(next):len(next)], add[f]...)
		if err := writeAt(dfd, f+"+", next, st, false); err != nil {
			unix.Unlinkat(dfd, f+"+", 0)
			return nil, &os.PathError{Op: "write", Path: root.Path("etc/" + f + "+"), Err: err}
		}
		if err := unix.Renameat(dfd, f+"+", dfd, f); err != nil {
			unix.Unlinkat(dfd, f+"+", 0)
			return nil, &os.PathError{Op: "rename", Path: root.Path("etc/" + f), Err: err}
		}
	}
	if err := unix.Fsync(dfd); err != nil {
		return nil, &os.PathError{Op: "fsync", Path: root.Path("etc"), Err: err}
	}
	return made, nil
}

// selinuxLabeled reports whether name in dfd carries an SELinux label.
func selinuxLabeled(dfd int, name string) bool {
	fd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	n, err := unix.Fgetxattr(fd, "security.selinux", nil)
	return err == nil && n > 0
}

// portableName is the set every groupadd accepts: lowercase letters,
// digits, "_" and "-", not starting with a digit or "-", at most 32.
func portableName(n string) bool {
	if n == "" || len(n) > 32 {
		return false
	}
	for i, r := range n {
		switch {
		case r >= 'a' && r <= 'z', r == '_':
		case (r >= '0' && r <= '9' || r == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// nssFilesOnly checks that the root's groups come from its files (and
// systemd's, whose dynamic GIDs are outside GID_MAX).
func nssFilesOnly(root *rootfs.Root) error {
	b, err := root.ReadFile("etc/nsswitch.conf", rootfs.InRoot)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return errUseGroupadd{"etc/nsswitch.conf: " + err.Error()}
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(k) != "group" {
			continue
		}
		if i := strings.IndexByte(v, '#'); i >= 0 {
			v = v[:i]
		}
		for _, src := range strings.Fields(v) {
			if strings.HasPrefix(src, "[") || strings.HasSuffix(src, "]") || src == "files" || src == "systemd" {
				continue
			}
			return errUseGroupadd{"groups also come from " + src + " (etc/nsswitch.conf)"}
		}
	}
	return nil
}

// loginDefsRange is GID_MIN and GID_MAX of the root's etc/login.defs
// (1000 and 60000 where it does not say).
func loginDefsRange(root *rootfs.Root) (lo, hi int) {
	lo, hi = 1000, 60000
	b, _ := root.ReadFile("etc/login.defs", rootfs.InRoot)
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || strings.HasPrefix(f[0], "#") {
			continue
		}
		n, err := strconv.Atoi(f[1])
		if err != nil || n < 0 {
			continue
		}
		switch f[0] {
		case "GID_MIN":
			lo = n
		case "GID_MAX":
			hi = n
		}
	}
	return lo, hi
}

// newGID is groupadd's choice: one above the highest GID in lo..hi, or
// lo when none is; where that is past hi, the lowest free one.
func newGID(used map[int]bool, lo, hi int) (int, bool) {
	if lo > hi {
		return 0, false
	}
	highest := -1
	for gid := range used {
		if gid >= lo && gid <= hi && gid > highest {
			highest = gid
		}
	}
	switch {
	case highest < 0:
		return lo, true
	case highest < hi:
		return highest + 1, true
	}
	for gid := lo; gid <= hi; gid++ {
		if !used[gid] {
			return gid, true
		}
	}
	return 0, false
}

// hasNIS reports whether an account file has NIS compat lines, which
// shadow's tools keep at the end.
func hasNIS(b []byte) bool {
	for _, line := range bytes.Split(b, []byte("\n")) {
		if len(line) > 0 && (line[0] == '+' || line[0] == '-') {
			return true
		}
	}
	return false
}

// lockWait bounds the wait for etc/.pwd.lock, as lckpwdf(3) does.
const lockWait = 15 * time.Second

// lockAccounts takes etc/.pwd.lock as lckpwdf(3) does (a write lock on
// the whole file), waiting up to lockWait for another tool to finish.
func lockAccounts(ctx context.Context, dfd int, etcPath string) (unlock func(), err error) {
	fd, err := unix.Openat(dfd, ".pwd.lock", unix.O_WRONLY|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: etcPath + "/.pwd.lock", Err: err}
	}
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0}
	deadline := time.Now().Add(lockWait)
	for {
		err = unix.FcntlFlock(uintptr(fd), unix.F_SETLK, &lk)
		if err == nil {
			return func() { unix.Close(fd) }, nil
		}
		if err != unix.EAGAIN && err != unix.EACCES && err != unix.EINTR || time.Now().After(deadline) {
			unix.Close(fd)
			return nil, fmt.Errorf("the account files are locked (%s/.pwd.lock): %w", etcPath, err)
		}
		select {
		case <-ctx.Done():
			unix.Close(fd)
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// lockFile makes name.lock as shadow's tools do: a file with the pid
// (and a NUL) linked to the lock's name, so that a lock left by a dead
// process is taken over and one held by a live one refuses.
func lockFile(dfd int, name, path string) (release func(), err error) {
	pid := os.Getpid()
	tmp := name + "." + strconv.Itoa(pid)
	lock := name + ".lock"
	fd, err := unix.Openat(dfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, &os.PathError{Op: "lock", Path: path, Err: err}
	}
	_, werr := unix.Write(fd, append([]byte(strconv.Itoa(pid)), 0))
	unix.Close(fd)
	defer unix.Unlinkat(dfd, tmp, 0)
	if werr != nil {
		return nil, &os.PathError{Op: "lock", Path: path, Err: werr}
	}
	release = func() { unix.Unlinkat(dfd, lock, 0) }
	if unix.Linkat(dfd, tmp, dfd, lock, 0) == nil {
		return release, nil
	}
	var st unix.Stat_t
	b, err := readAt(dfd, lock, &st)
	if err != nil {
		return nil, &os.PathError{Op: "lock", Path: path + ".lock", Err: err}
	}
	holder, _ := strconv.Atoi(string(bytes.TrimRight(b, "\x00\n")))
	if holder > 0 && unix.Kill(holder, 0) != unix.ESRCH {
		return nil, fmt.Errorf("%s is locked by process %d", path, holder)
	}
	if err := unix.Unlinkat(dfd, lock, 0); err != nil && err != unix.ENOENT {
		return nil, &os.PathError{Op: "lock", Path: path + ".lock", Err: err}
	}
	if err := unix.Linkat(dfd, tmp, dfd, lock, 0); err != nil {
		return nil, fmt.Errorf("%s is locked by another process", path)
	}
	return release, nil
}

// readAt reads name in dfd (no symlink) and its status.
func readAt(dfd int, name string, st *unix.Stat_t) ([]byte, error) {
	fd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	if err := unix.Fstat(fd, st); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	_, err = buf.ReadFrom(f)
	return buf.Bytes(), err
}

// writeAt writes data to name in dfd with the owner and mode of st,
// fsynced; keepTimes gives it st's access and modification times (a
// backup, as shadow's tools make it).
func writeAt(dfd int, name string, data []byte, st unix.Stat_t, keepTimes bool) error {
	fd, err := unix.Openat(dfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), name)
	if err := f.Chown(int(st.Uid), int(st.Gid)); err != nil {
		f.Close()
		return err
	}
	if err := unix.Fchmod(fd, st.Mode&0o7777); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if keepTimes {
		ts := []unix.Timespec{st.Atim, st.Mtim}
		if err := unix.UtimesNanoAt(dfd, name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
