package accounts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/flint-dev/flint/internal/distro"
	"github.com/flint-dev/flint/internal/rootfs"
)

// Writing the account files directly: where the image's shadow tools
// would do nothing but edit the files, flint edits them as the tools do
// (the same locks, ids, lines, backups, owners and modes), without
// starting a process: each process start counts on a first boot, and
// under emulation a groupadd or useradd is a tenth of a second or more.
// Everything else is left to the tools (errUseTool).

// errUseTool says the root needs the image's tool: something writing the
// files directly would not do as the tool does.
type errUseTool struct{ tool, why string }

func (e errUseTool) Error() string { return e.tool + " is needed: " + e.why }

// directCheck is what every direct edit needs of the root: no name
// service cache to flush (nscd, sssd), the databases from files only
// (systemd's dynamic ids are outside the ranges used), a Debian-family
// image (whose tools' build defaults the edits follow).
func directCheck(root *rootfs.Root, tool string, dbs ...string) error {
	for _, p := range []string{"usr/sbin/nscd", "usr/sbin/sss_cache", "sbin/nscd", "sbin/sss_cache"} {
		if _, err := root.Stat(p, rootfs.InRoot); err == nil {
			return errUseTool{tool, "the root has " + p}
		}
	}
	if rel, _ := distro.Read(root); !rel.Like("debian") {
		return errUseTool{tool, "not a Debian-family image"}
	}
	b, err := root.ReadFile("etc/nsswitch.conf", rootfs.InRoot)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return errUseTool{tool, "etc/nsswitch.conf: " + err.Error()}
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || !slices.Contains(dbs, strings.TrimSpace(k)) {
			continue
		}
		if i := strings.IndexByte(v, '#'); i >= 0 {
			v = v[:i]
		}
		for _, src := range strings.Fields(v) {
			if strings.HasPrefix(src, "[") || strings.HasSuffix(src, "]") || src == "files" || src == "systemd" {
				continue
			}
			return errUseTool{tool, "entries of " + strings.TrimSpace(k) + " also come from " + src + " (etc/nsswitch.conf)"}
		}
	}
	return nil
}

// acctTxn is an edit of a root's account files: .pwd.lock held, each
// file locked and read; nothing is written before commit.
type acctTxn struct {
	root    *rootfs.Root
	tool    string
	etc     *os.File
	dfd     int
	files   map[string]*acctFile
	order   []string
	release []func()
}

// acctFile is one account file of a transaction.
type acctFile struct {
	old  []byte
	st   unix.Stat_t
	next []byte // nil: unchanged
}

// beginTxn locks and reads the account files below etc: required ones
// must be regular files (else the tool makes them), optional ones are
// left out when absent. A file with NIS lines or an SELinux label needs
// the tool.
func beginTxn(ctx context.Context, root *rootfs.Root, tool string, required, optional []string) (_ *acctTxn, err error) {
	etc, err := root.OpenFile("etc", unix.O_RDONLY|unix.O_DIRECTORY, 0, rootfs.InRoot)
	if err != nil {
		return nil, err
	}
	t := &acctTxn{root: root, tool: tool, etc: etc, dfd: int(etc.Fd()), files: map[string]*acctFile{}}
	defer func() {
		if err != nil {
			t.close()
		}
	}()
	var names []string
	for _, f := range required {
		var st unix.Stat_t
		if err := unix.Fstatat(t.dfd, f, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
			return nil, errUseTool{tool, "etc/" + f + " is not a regular file"}
		}
		names = append(names, f)
	}
	for _, f := range optional {
		var st unix.Stat_t
		if err := unix.Fstatat(t.dfd, f, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil {
			if st.Mode&unix.S_IFMT != unix.S_IFREG {
				return nil, errUseTool{tool, "etc/" + f + " is not a regular file"}
			}
			names = append(names, f)
		}
	}
	for _, f := range names {
		if selinuxLabeled(t.dfd, f) {
			return nil, errUseTool{tool, "etc/" + f + " has an SELinux label"}
		}
	}
	unlock, err := lockAccounts(ctx, t.dfd, root.Path("etc"))
	if err != nil {
		return nil, err
	}
	t.release = append(t.release, unlock)
	for _, f := range names {
		release, err := lockFile(t.dfd, f, root.Path("etc/"+f))
		if err != nil {
			return nil, err
		}
		t.release = append(t.release, release)
	}
	for _, f := range names {
		af := &acctFile{}
		if af.old, err = readAt(t.dfd, f, &af.st); err != nil {
			return nil, &os.PathError{Op: "read", Path: root.Path("etc/" + f), Err: err}
		}
		if why := notCanonical(f, af.old); why != "" {
			return nil, errUseTool{tool, "etc/" + f + ": " + why}
		}
		t.files[f] = af
		t.order = append(t.order, f)
	}
	return t, nil
}

// has reports whether the transaction holds file f.
func (t *acctTxn) has(f string) bool { return t.files[f] != nil }

// text is file f as the transaction will leave it.
func (t *acctTxn) text(f string) []byte {
	af := t.files[f]
	if af == nil {
		return nil
	}
	if af.next != nil {
		return af.next
	}
	return af.old
}

// appendLines adds lines at the end of file f, as the tools add entries.
func (t *acctTxn) appendLines(f string, lines ...string) {
	af := t.files[f]
	if af == nil || len(lines) == 0 {
		return
	}
	next := bytes.Clone(t.text(f))
	if len(next) > 0 && next[len(next)-1] != '\n' {
		next = append(next, '\n')
	}
	for _, l := range lines {
		next = append(append(next, l...), '\n')
	}
	af.next = next
}

// editEntry rewrites the first entry of name in file f (fields fields)
// with edit; false when there is none.
func (t *acctTxn) editEntry(f, name string, fields int, edit func([]string)) bool {
	af := t.files[f]
	if af == nil {
		return false
	}
	lines := strings.SplitAfter(string(t.text(f)), "\n")
	for i, line := range lines {
		body := strings.TrimSuffix(line, "\n")
		fs := strings.Split(body, ":")
		if body == "" || strings.HasPrefix(body, "#") || len(fs) != fields || fs[0] != name {
			continue
		}
		edit(fs)
		lines[i] = strings.Join(fs, ":") + strings.TrimPrefix(line, body)
		af.next = []byte(strings.Join(lines, ""))
		return true
	}
	return false
}

// commit writes each changed file as the tools do: the new file (name+,
// the old one's owner and mode), fsynced, then the previous file kept as
// the backup (name-: the previous file itself, hard linked, so its
// content, owner, mode and times are the old ones without a copy) and
// the new file renamed over it; the directory fsynced last. The new
// files are fsynced at once (a journaling file system commits them
// together; the tools fsync one after another, and copy the backups,
// under emulation milliseconds each).
func (t *acctTxn) commit() error {
	var changed []string
	var fds []int
	var paths []string
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	for _, f := range t.order {
		af := t.files[f]
		if af.next == nil {
			continue
		}
		changed = append(changed, f)
		if err := writeAt(t.dfd, f+"+", af.next, af.st); err != nil {
			t.removeNew(changed)
			return &os.PathError{Op: "write", Path: t.root.Path("etc/" + f + "+"), Err: err}
		}
		fd, err := unix.Openat(t.dfd, f+"+", unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			t.removeNew(changed)
			return &os.PathError{Op: "open", Path: t.root.Path("etc/" + f + "+"), Err: err}
		}
		fds, paths = append(fds, fd), append(paths, t.root.Path("etc/"+f+"+"))
	}
	if len(changed) == 0 {
		return nil
	}
	if err := rootfs.SyncAll(fds, paths); err != nil {
		t.removeNew(changed)
		return err
	}
	for i, f := range changed {
		tmp := "." + f + "-.flint-tmp"
		unix.Unlinkat(t.dfd, tmp, 0)
		if err := unix.Linkat(t.dfd, f, t.dfd, tmp, 0); err != nil {
			t.removeNew(changed[i:])
			return &os.PathError{Op: "link", Path: t.root.Path("etc/" + f + "-"), Err: err}
		}
		if err := unix.Renameat(t.dfd, tmp, t.dfd, f+"-"); err != nil {
			unix.Unlinkat(t.dfd, tmp, 0)
			t.removeNew(changed[i:])
			return &os.PathError{Op: "rename", Path: t.root.Path("etc/" + f + "-"), Err: err}
		}
		if err := unix.Renameat(t.dfd, f+"+", t.dfd, f); err != nil {
			t.removeNew(changed[i:])
			return &os.PathError{Op: "rename", Path: t.root.Path("etc/" + f), Err: err}
		}
	}
	if err := unix.Fsync(t.dfd); err != nil {
		return &os.PathError{Op: "fsync", Path: t.root.Path("etc"), Err: err}
	}
	return nil
}

// removeNew removes the new files (name+) of files not yet renamed.
func (t *acctTxn) removeNew(files []string) {
	for _, f := range files {
		unix.Unlinkat(t.dfd, f+"+", 0)
	}
}

// close releases the locks (the file locks, then .pwd.lock).
func (t *acctTxn) close() {
	for i := len(t.release) - 1; i >= 0; i-- {
		t.release[i]()
	}
	t.release = nil
	t.etc.Close()
}

// entryNames and entryIDs read a file's entries: their names, and the
// numbers in field idf (ids) of those whose field is one.
func entryNames(b []byte, fields int) map[string]bool {
	names := map[string]bool{}
	entries(b, fields, func(f []string) { names[f[0]] = true }, func(string) bool { return false })
	return names
}

func entryIDs(b []byte, fields, idf int) map[int]bool {
	ids := map[int]bool{}
	entries(b, fields, func(f []string) {
		if id, err := strconv.Atoi(f[idf]); err == nil {
			ids[id] = true
		}
	}, func(string) bool { return false })
	return ids
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

// portableName is the set every shadow tool accepts: lowercase letters,
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

// keyValues reads a configuration file of "KEY value" (login.defs) or
// "KEY=value" (default/useradd) lines; "#" starts a comment line.
func keyValues(root *rootfs.Root, rel string, sep string) map[string]string {
	kv := map[string]string{}
	b, _ := root.ReadFile(rel, rootfs.InRoot)
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var k, v string
		if sep == "" {
			if i := strings.IndexAny(line, " \t"); i >= 0 {
				k, v = line[:i], line[i+1:]
			} else {
				k, v = line, ""
			}
		} else {
			k, v, _ = strings.Cut(line, sep)
		}
		// As the tools take them: the rest of the line, unquoted only
		// where login.defs quotes it whole.
		v = strings.TrimSpace(v)
		if sep == "" && len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1]
		}
		kv[strings.TrimSpace(k)] = v
	}
	return kv
}

// badNums names the first of keys whose login.defs value is not a
// number the tools read ("" when all are numbers or absent): the tools
// complain of one and fall back to their own default.
func badNums(defs map[string]string, keys ...string) string {
	for _, k := range keys {
		if v, ok := defs[k]; ok {
			if _, err := strconv.ParseInt(v, 0, 64); err != nil {
				return k
			}
		}
	}
	return ""
}

// defNum is a login.defs number (decimal, or octal with a leading 0, as
// the tools read them), or def where it is absent or not a number.
func defNum(defs map[string]string, key string, def int) int {
	v, ok := defs[key]
	if !ok {
		return def
	}
	n, err := strconv.ParseInt(v, 0, 64)
	if err != nil {
		return def
	}
	return int(n)
}

// newID is the tools' choice of a new id in lo..hi: one above the
// highest used there, or lo when none is; where that is past hi, the
// lowest free one.
func newID(used map[int]bool, lo, hi int) (int, bool) {
	if lo > hi {
		return 0, false
	}
	highest := -1
	for id := range used {
		if id >= lo && id <= hi && id > highest {
			highest = id
		}
	}
	switch {
	case highest < 0:
		return lo, true
	case highest < hi:
		return highest + 1, true
	}
	for id := lo; id <= hi; id++ {
		if !used[id] {
			return id, true
		}
	}
	return 0, false
}

// fileFields is the number of fields of each account file's entries,
// and which of them are ids and which member lists.
var fileFields = map[string]struct {
	n          int
	ids, lists []int
}{
	"passwd":  {n: 7, ids: []int{2, 3}},
	"shadow":  {n: 9},
	"group":   {n: 4, ids: []int{2}, lists: []int{3}},
	"gshadow": {n: 4, lists: []int{2, 3}},
	"subuid":  {n: 3, ids: []int{1, 2}},
	"subgid":  {n: 3, ids: []int{1, 2}},
}

// notCanonical says why an account file is not in the form the tools
// write it ("" when it is): every line an entry with exactly its
// fields, ids in plain decimal, member lists without empty members;
// subordinate ranges in order. The tools read "#" lines and lines of
// other lengths differently from each other and rewrite a line they
// change (and sort subordinate ranges): only where the file is as they
// write it is an edit of its text the same as theirs. NIS lines ("+",
// "-") fail too: the tools keep them at the end.
func notCanonical(file string, b []byte) string {
	spec, ok := fileFields[file]
	if !ok {
		return "not an account file"
	}
	text := strings.TrimSuffix(string(b), "\n")
	if text == "" {
		return ""
	}
	prev := -1
	for i, line := range strings.Split(text, "\n") {
		f := strings.Split(line, ":")
		switch {
		case line == "":
			return fmt.Sprintf("line %d is empty", i+1)
		case len(f) != spec.n || !systemName(f[0]) || f[0][0] == '-':
			return fmt.Sprintf("line %d is not an entry as the tools write one", i+1)
		}
		for _, k := range spec.ids {
			if n, err := strconv.Atoi(f[k]); err != nil || n < 0 || strconv.Itoa(n) != f[k] {
				return fmt.Sprintf("line %d has an id %q", i+1, f[k])
			}
		}
		for _, k := range spec.lists {
			if f[k] == "" {
				continue
			}
			for _, m := range strings.Split(f[k], ",") {
				if m == "" {
					return fmt.Sprintf("line %d has an empty member", i+1)
				}
			}
		}
		if file == "subuid" || file == "subgid" {
			start, _ := strconv.Atoi(f[1])
			if start < prev {
				return "its ranges are not in order (the tools sort them)"
			}
			prev = start
		}
	}
	return ""
}

// systemName accepts the names the image's existing entries have:
// letters, digits, "_", "-", "." (Debian's _apt, systemd-network); not
// "#" comments, NIS "+" lines, a Samba machine account's "$".
func systemName(n string) bool {
	if n == "" || len(n) > 32 {
		return false
	}
	for _, r := range n {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return false
		}
	}
	return true
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
	holder, err := strconv.Atoi(string(bytes.TrimRight(b, "\x00\n")))
	if err != nil || holder <= 0 {
		// As the tools: a lock without a pid is not taken over.
		return nil, fmt.Errorf("%s.lock exists without a process id in it: not taken over; remove it if no tool is running", path)
	}
	if unix.Kill(holder, 0) != unix.ESRCH {
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

// writeAt writes data to name in dfd with the owner and mode of st (not
// fsynced: commit syncs the new files at once).
func writeAt(dfd int, name string, data []byte, st unix.Stat_t) error {
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
	return f.Close()
}
