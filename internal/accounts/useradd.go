package accounts

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/flint-dev/flint/internal/rootfs"
)

// addUser creates u as Debian's useradd (shadow 4.13) does with the
// options UseraddArgs gives it, without starting it: the same locks; the
// same UID (as newID picks it in UID_MIN..UID_MAX) and user group (its
// GID the UID where that is free, else as groupadd picks one); the same
// passwd, shadow (today's date, login.defs' password ages), group and
// gshadow lines and memberships, subordinate id ranges (etc/subuid,
// etc/subgid where they exist), backups; the home made with HOME_MODE
// (else 0777 less UMASK) and etc/skel copied into it, owned by the user,
// with the skeleton's modes and times.
//
// Where useradd would do more, or fail, addUser returns errUseTool and
// changes nothing: besides directCheck's and beginTxn's cases, options
// it does not model (a system account, a given UID, primary group,
// expiry, inactivity, no user group), a name outside the portable set, a
// user or user group that exists, a supplementary group that does not, a
// field useradd would refuse, a shell it would warn of, a home that exists or whose parent does
// not, a skeleton with anything but files and directories, lastlog or
// faillog records to reset, a mail spool or defaults it does not model,
// a directory in the skeleton.
func addUser(ctx context.Context, root *rootfs.Root, u NewUser, now time.Time) (uid, gid int, home string, err error) {
	use := func(why string) (int, int, string, error) { return 0, 0, "", errUseTool{"useradd", why} }
	switch {
	case u.System || u.UID != nil || u.PrimaryGroup != "" || u.NoUserGroup || u.Expiredate != "" || u.Inactive != "":
		return use("an option flint does not model")
	case !portableName(u.Name):
		return use(fmt.Sprintf("%q is outside the portable name set", u.Name))
	case strings.ContainsAny(u.Gecos, ":\n\x00") || strings.ContainsAny(u.HomeDir, ":\n\x00") || strings.ContainsAny(u.Shell, ":\n\x00") ||
		strings.ContainsAny(u.Password, ":\n\x00"):
		return use("a field useradd would refuse")
	}
	for _, g := range u.Groups {
		if !portableName(g) {
			return use(fmt.Sprintf("group %q is outside the portable name set", g))
		}
	}
	if err := directCheck(root, "useradd", "passwd", "group", "shadow", "subid"); err != nil {
		return 0, 0, "", err
	}
	defaults := keyValues(root, "etc/default/useradd", "=")
	for k, v := range defaults {
		switch {
		case k == "SHELL" || k == "HOME" || k == "SKEL":
			// Used as written: "/home/" makes "/home//name", quotes stay.
			if !path.IsAbs(v) || path.Clean(v) != v || strings.ContainsAny(v, "\"' \t") {
				return use("etc/default/useradd's " + k + " is not a clean absolute path")
			}
		case k == "GROUP":
		case k == "INACTIVE" && v == "-1", k == "EXPIRE" && v == "", k == "CREATE_MAIL_SPOOL" && v == "no", k == "LOG_INIT":
		default:
			return use("etc/default/useradd sets " + k)
		}
	}
	defs := keyValues(root, "etc/login.defs", "")
	if _, ok := defs["MAX_MEMBERS_PER_GROUP"]; ok {
		return use("login.defs sets MAX_MEMBERS_PER_GROUP")
	}
	if k := badNums(defs, "UID_MIN", "UID_MAX", "GID_MIN", "GID_MAX", "PASS_MIN_DAYS", "PASS_MAX_DAYS", "PASS_WARN_AGE",
		"UMASK", "HOME_MODE", "SUB_UID_MIN", "SUB_UID_MAX", "SUB_UID_COUNT", "SUB_GID_MIN", "SUB_GID_MAX", "SUB_GID_COUNT"); k != "" {
		return use("login.defs' " + k + " is not a number")
	}
	home = u.HomeDir
	if home == "" {
		home = path.Join(cmp.Or(defaults["HOME"], "/home"), u.Name)
	}
	shell := cmp.Or(u.Shell, defaults["SHELL"])
	if shell == "" {
		return use("no shell given and none in etc/default/useradd")
	}
	if !path.IsAbs(home) || !path.IsAbs(shell) {
		return use("a relative home or shell")
	}
	// useradd warns of it in its output.
	if fi, err := root.Stat(shell, rootfs.InRoot); err != nil || !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 {
		return use("the shell " + shell + " is missing or not executable")
	}
	skel := cmp.Or(defaults["SKEL"], "/etc/skel")
	var skelTree []skelEntry
	if !u.NoCreateHome {
		if _, err := root.Stat(home, rootfs.Strict); !errors.Is(err, os.ErrNotExist) {
			return use("the home " + home + " exists")
		}
		if fi, err := root.Stat(path.Dir(home), rootfs.InRoot); err != nil || !fi.IsDir() {
			return use("the home's parent " + path.Dir(home) + " is not a directory")
		}
		if skelTree, err = readSkel(root, skel); err != nil {
			return use(err.Error())
		}
	}
	for _, log := range []string{"var/log/lastlog", "var/log/faillog"} {
		if fi, err := root.Stat(log, rootfs.InRoot); err == nil && fi.Size() > 0 {
			return use(log + " has records")
		}
	}

	t, err := beginTxn(ctx, root, "useradd", []string{"passwd", "shadow", "group"}, []string{"gshadow", "subuid", "subgid"})
	if err != nil {
		return 0, 0, "", err
	}
	defer t.close()
	switch {
	case entryNames(t.text("passwd"), 7)[u.Name] || entryNames(t.text("shadow"), 2)[u.Name]:
		return use("user " + u.Name + " exists")
	case entryNames(t.text("group"), 4)[u.Name] || entryNames(t.text("gshadow"), 4)[u.Name]:
		return use("a group " + u.Name + " exists")
	case entryNames(t.text("subuid"), 3)[u.Name] || entryNames(t.text("subgid"), 3)[u.Name]:
		return use("subordinate ids of " + u.Name + " exist")
	}
	groups := entryNames(t.text("group"), 4)
	for _, g := range u.Groups {
		if !groups[g] {
			return use("group " + g + " does not exist")
		}
	}
	uid, ok := newID(entryIDs(t.text("passwd"), 7, 2), defNum(defs, "UID_MIN", 1000), defNum(defs, "UID_MAX", 60000))
	if !ok {
		return use("no free UID")
	}
	usedGIDs := entryIDs(t.text("group"), 4, 2)
	gidMin, gidMax := defNum(defs, "GID_MIN", 1000), defNum(defs, "GID_MAX", 60000)
	gid = uid
	if gid < gidMin || gid > gidMax || usedGIDs[gid] {
		if gid, ok = newID(usedGIDs, gidMin, gidMax); !ok {
			return use("no free GID")
		}
	}
	for _, f := range []string{"subuid", "subgid"} {
		if !rangesSorted(t.text(f)) {
			return use("etc/" + f + " is not in order (useradd sorts it)")
		}
	}
	subUID, subGID := -1, -1
	if t.has("subuid") {
		if subUID, ok = freeRange(t.text("subuid"), defNum(defs, "SUB_UID_MIN", 100000), defNum(defs, "SUB_UID_MAX", 600100000), defNum(defs, "SUB_UID_COUNT", 65536)); !ok {
			return use("no free subordinate UIDs")
		}
	}
	if t.has("subgid") {
		if subGID, ok = freeRange(t.text("subgid"), defNum(defs, "SUB_GID_MIN", 100000), defNum(defs, "SUB_GID_MAX", 600100000), defNum(defs, "SUB_GID_COUNT", 65536)); !ok {
			return use("no free subordinate GIDs")
		}
	}

	t.appendLines("passwd", fmt.Sprintf("%s:x:%d:%d:%s:%s:%s", u.Name, uid, gid, u.Gecos, home, shell))
	age := func(key string) string {
		if n := defNum(defs, key, -1); n >= 0 {
			return strconv.Itoa(n)
		}
		return ""
	}
	days := ""
	if d := now.Unix() / 86400; d > 0 {
		days = strconv.FormatInt(d, 10)
	}
	t.appendLines("shadow", fmt.Sprintf("%s:%s:%s:%s:%s:%s:::", u.Name, cmp.Or(u.Password, "!"), days,
		age("PASS_MIN_DAYS"), age("PASS_MAX_DAYS"), age("PASS_WARN_AGE")))
	for _, g := range u.Groups {
		addMember := func(f []string) {
			if f[3] == "" {
				f[3] = u.Name
			} else if !slices.Contains(strings.Split(f[3], ","), u.Name) {
				f[3] += "," + u.Name
			}
		}
		if !t.editEntry("group", g, 4, addMember) {
			return use("group " + g + " has no entry flint can edit")
		}
		t.editEntry("gshadow", g, 4, addMember)
	}
	t.appendLines("group", fmt.Sprintf("%s:%s:%d:", u.Name, groupPasswd(t), gid))
	t.appendLines("gshadow", u.Name+":!::")
	if subUID >= 0 {
		t.appendLines("subuid", fmt.Sprintf("%s:%d:%d", u.Name, subUID, defNum(defs, "SUB_UID_COUNT", 65536)))
	}
	if subGID >= 0 {
		t.appendLines("subgid", fmt.Sprintf("%s:%d:%d", u.Name, subGID, defNum(defs, "SUB_GID_COUNT", 65536)))
	}
	if err := t.commit(); err != nil {
		return 0, 0, "", err
	}
	t.close()
	if u.NoCreateHome {
		return uid, gid, home, nil
	}
	mode := uint32(defNum(defs, "HOME_MODE", 0o777&^defNum(defs, "UMASK", 0o22)))
	if err := makeHome(root, home, skelTree, mode, uid, gid); err != nil {
		return uid, gid, home, fmt.Errorf("useradd %s: the account was made, its home %s not: %w", u.Name, home, err)
	}
	return uid, gid, home, nil
}

// freeRange is useradd's choice of count subordinate ids in lo..hi: the
// first hole before an entry, in the file's order, that holds them, else
// the space after the last.
func freeRange(b []byte, lo, hi, count int) (int, bool) {
	if count <= 0 || lo > hi {
		return 0, false
	}
	low := lo
	fail := false
	entries(b, 3, func(f []string) {
		if fail {
			return
		}
		first, err1 := strconv.Atoi(f[1])
		n, err2 := strconv.Atoi(f[2])
		if err1 != nil || err2 != nil {
			return
		}
		last := first + n - 1
		high := first
		if high > hi+1 {
			high = hi + 1
		}
		if high > low && high-low >= count {
			fail = true // found: stop looking (low is the answer)
			return
		}
		if low < last+1 {
			low = last + 1
		}
	}, func(string) bool { return false })
	if fail {
		return low, true
	}
	if low <= hi && hi-low+1 >= count {
		return low, true
	}
	return 0, false
}

// rangesSorted reports whether a subordinate id file's entries are in
// the order of their first id.
func rangesSorted(b []byte) bool {
	prev, sorted := -1, true
	entries(b, 3, func(f []string) {
		n, err := strconv.Atoi(f[1])
		if err != nil || n < prev {
			sorted = false
		}
		prev = n
	}, func(string) bool { return false })
	return sorted
}

// skelEntry is one file of the skeleton.
type skelEntry struct {
	src  string // below the root
	rel  string // below the skeleton
	mode uint32
	atim unix.Timespec
	mtim unix.Timespec
}

// readSkel lists the skeleton's files (none when it does not exist);
// anything but regular files, or a symlink on its path, is an error.
func readSkel(root *rootfs.Root, skel string) ([]skelEntry, error) {
	if _, err := root.Stat(skel, rootfs.Strict); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	ents, err := root.ReadDir(skel, rootfs.Strict)
	if err != nil {
		return nil, fmt.Errorf("reading the skeleton %s: %w", skel, err)
	}
	var out []skelEntry
	for _, e := range ents {
		src := path.Join(skel, e.Name())
		var st unix.Stat_t
		if err := unix.Lstat(root.Path(src), &st); err != nil {
			return nil, err
		}
		switch {
		case st.Mode&unix.S_IFMT == unix.S_IFDIR:
			// useradd --root does not copy what is in one (it sets the
			// mode through /proc, which the root does not have).
			return nil, fmt.Errorf("the skeleton's %s is a directory", e.Name())
		case st.Mode&unix.S_IFMT != unix.S_IFREG:
			return nil, fmt.Errorf("the skeleton's %s is not a file", e.Name())
		case st.Nlink > 1:
			return nil, fmt.Errorf("the skeleton's %s has hard links", e.Name())
		}
		out = append(out, skelEntry{src: src, rel: e.Name(), mode: st.Mode & 0o7777, atim: st.Atim, mtim: st.Mtim})
	}
	return out, nil
}

// makeHome makes the home with mode, owned by uid:gid, and copies the
// skeleton into it as useradd does: each file owned by the user, with
// its mode and its access and modification times. Everything is done
// through descriptors, nothing by path below the home: a process of
// the user's (a reused UID) cannot redirect it.
func makeHome(root *rootfs.Root, home string, skel []skelEntry, mode uint32, uid, gid int) error {
	parent, err := root.OpenFile(path.Dir(home), unix.O_RDONLY|unix.O_DIRECTORY, 0, rootfs.InRoot)
	if err != nil {
		return err
	}
	defer parent.Close()
	name := path.Base(home)
	if err := unix.Mkdirat(int(parent.Fd()), name, 0); err != nil {
		return &os.PathError{Op: "mkdir", Path: root.Path(home), Err: err}
	}
	hfd, err := unix.Openat(int(parent.Fd()), name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: root.Path(home), Err: err}
	}
	defer unix.Close(hfd)
	if err := unix.Fchown(hfd, uid, gid); err != nil {
		return &os.PathError{Op: "chown", Path: root.Path(home), Err: err}
	}
	if err := unix.Fchmod(hfd, mode); err != nil {
		return &os.PathError{Op: "chmod", Path: root.Path(home), Err: err}
	}
	for _, e := range skel {
		if err := copySkelFile(root, e, hfd, uid, gid); err != nil {
			return &os.PathError{Op: "copy", Path: root.Path(path.Join(home, e.rel)), Err: err}
		}
	}
	return nil
}

// copySkelFile copies the skeleton's file e into the home (a new file
// there), owned by uid:gid, with e's mode and times.
func copySkelFile(root *rootfs.Root, e skelEntry, home int, uid, gid int) error {
	in, err := root.OpenFile(e.src, unix.O_RDONLY, 0, rootfs.Strict)
	if err != nil {
		return err
	}
	defer in.Close()
	fd, err := unix.Openat(home, e.rel, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	out := os.NewFile(uintptr(fd), e.rel)
	defer out.Close()
	if err := unix.Fchown(fd, uid, gid); err != nil {
		return err
	}
	if err := unix.Fchmod(fd, e.mode); err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		return err
	}
	// utimensat(2) on the descriptor (through /proc, where Go has no
	// futimens); futimes(2), to the microsecond, without /proc.
	err = unix.UtimesNanoAt(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fd), []unix.Timespec{e.atim, e.mtim}, 0)
	if errors.Is(err, unix.ENOENT) {
		err = unix.Futimes(fd, []unix.Timeval{unix.NsecToTimeval(e.atim.Nano()), unix.NsecToTimeval(e.mtim.Nano())})
	}
	return err
}

// groupPasswd is the password field of the user group's etc/group line:
// "x" where etc/gshadow holds the real one, else "!" (groupadd writes
// "x" either way).
func groupPasswd(t *acctTxn) string {
	if t.has("gshadow") {
		return "x"
	}
	return "!"
}
