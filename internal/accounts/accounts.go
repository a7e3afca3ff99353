package accounts

import (
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/flint-dev/flint/internal/rootfs"
)

// The account files below a root. The root's own files are the truth
// for an image being provisioned, not the host's NSS.
const (
	PasswdFile = "etc/passwd"
	GroupFile  = "etc/group"
	ShadowFile = "etc/shadow"
)

// User is one entry of a root's etc/passwd.
type User struct {
	Name  string
	UID   int
	GID   int
	Home  string
	Shell string
}

// Group is one entry of a root's etc/group.
type Group struct {
	Name    string
	GID     int
	Members []string
}

// ErrNoUser is wrapped when a user is not in the root's etc/passwd.
var ErrNoUser = errors.New("no such user")

// DB is a root's users and groups as read at one moment.
//
// The rules, the same for every reader: lines are colon-separated fields;
// empty lines, comments ("#") and lines with fewer fields than the format
// has (7 for passwd, 4 for group) are not entries; an entry whose uid or
// gid is not a number ≥ 0 is malformed, and asking for it is an error;
// the first entry of a name is the one that counts, as getpwnam(3) reads
// the files.
type DB struct {
	users  map[string]User
	groups map[string]Group
	// malformed names the entries that break the rules, by file.
	malformed map[string]bool // "passwd:NAME", "group:NAME"
	// passwdPath is the file's path for messages ("" when not read from a root).
	passwdPath string
}

// Parse reads the contents of etc/passwd and etc/group.
func Parse(passwd, group []byte) *DB {
	db := &DB{users: map[string]User{}, groups: map[string]Group{}, malformed: map[string]bool{}, passwdPath: PasswdFile}
	entries(passwd, 7, func(f []string) {
		uid, err1 := strconv.Atoi(f[2])
		gid, err2 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil || uid < 0 || gid < 0 {
			db.malformed["passwd:"+f[0]] = true
			return
		}
		db.users[f[0]] = User{Name: f[0], UID: uid, GID: gid, Home: f[5], Shell: f[6]}
	}, func(name string) bool { _, ok := db.users[name]; return ok || db.malformed["passwd:"+name] })
	entries(group, 4, func(f []string) {
		gid, err := strconv.Atoi(f[2])
		if err != nil || gid < 0 {
			db.malformed["group:"+f[0]] = true
			return
		}
		g := Group{Name: f[0], GID: gid}
		for _, u := range strings.Split(f[3], ",") {
			if u = strings.TrimSpace(u); u != "" {
				g.Members = append(g.Members, u)
			}
		}
		db.groups[f[0]] = g
	}, func(name string) bool { _, ok := db.groups[name]; return ok || db.malformed["group:"+name] })
	return db
}

// entries calls add for the first entry of each name in data.
func entries(data []byte, fields int, add func(f []string), seen func(name string) bool) {
	for _, line := range strings.Split(string(data), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) < fields || f[0] == "" || seen(f[0]) {
			continue
		}
		add(f)
	}
}

// Read reads the root's etc/passwd and etc/group; a missing file has no
// entries.
func Read(root *rootfs.Root) (*DB, error) {
	passwd, err := readOptional(root, PasswdFile)
	if err != nil {
		return nil, fmt.Errorf("reading users: %w", err)
	}
	group, err := readOptional(root, GroupFile)
	if err != nil {
		return nil, fmt.Errorf("reading groups: %w", err)
	}
	db := Parse(passwd, group)
	db.passwdPath = root.Path(PasswdFile)
	return db, nil
}

func readOptional(root *rootfs.Root, rel string) ([]byte, error) {
	b, err := root.ReadFile(rel, rootfs.InRoot)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

// User returns the entry of name; ErrNoUser (wrapped) when there is none.
func (db *DB) User(name string) (User, error) {
	if db.malformed["passwd:"+name] {
		return User{}, fmt.Errorf("%s: entry for %s has a malformed uid or gid", db.passwdPath, name)
	}
	u, ok := db.users[name]
	if !ok {
		return User{}, fmt.Errorf("user %s in %s: %w", name, db.passwdPath, ErrNoUser)
	}
	return u, nil
}

// HasGroup reports whether the group name has an entry (well formed or not:
// either way, groupadd would refuse the name).
func (db *DB) HasGroup(name string) bool {
	_, ok := db.groups[name]
	return ok || db.malformed["group:"+name]
}

// Members returns the members of group name.
func (db *DB) Members(name string) []string { return db.groups[name].Members }

// LookupUser reads name from the root's etc/passwd.
func LookupUser(root *rootfs.Root, name string) (User, error) {
	passwd, err := root.ReadFile(PasswdFile, rootfs.InRoot)
	if errors.Is(err, fs.ErrNotExist) {
		return User{}, fmt.Errorf("user %s: %s does not exist: %w", name, root.Path(PasswdFile), ErrNoUser)
	}
	if err != nil {
		return User{}, fmt.Errorf("reading users: %w", err)
	}
	db := Parse(passwd, nil)
	db.passwdPath = root.Path(PasswdFile)
	return db.User(name)
}

// Owner resolves a file owner ("user", "user:group", ":group"; numeric
// ids allowed) as chown(1) would in the root: the name's entry, else a
// number. root is 0 even in a root without account files (a bare image
// tree). NoOwner's -1 stands for the part not given.
func (db *DB) Owner(owner string) (rootfs.Owner, error) {
	user, grp, _ := strings.Cut(strings.TrimSpace(owner), ":")
	out := rootfs.NoOwner
	id := func(kind, file, name string, known func(string) (int, bool)) (int, error) {
		if db.malformed[file+":"+name] {
			return -1, fmt.Errorf("owner %q: the entry of %s %q in the root's etc/%s is malformed", owner, kind, name, file)
		}
		if id, ok := known(name); ok {
			return id, nil
		}
		if name == "root" {
			return 0, nil
		}
		if id, err := strconv.Atoi(name); err == nil && id >= 0 {
			return id, nil
		}
		return -1, fmt.Errorf("owner %q: no %s %q in the root's etc/%s", owner, kind, name, file)
	}
	var err error
	if user != "" {
		if out.UID, err = id("user", "passwd", user, func(n string) (int, bool) { u, ok := db.users[n]; return u.UID, ok }); err != nil {
			return rootfs.NoOwner, err
		}
	}
	if grp != "" {
		if out.GID, err = id("group", "group", grp, func(n string) (int, bool) { g, ok := db.groups[n]; return g.GID, ok }); err != nil {
			return rootfs.NoOwner, err
		}
	}
	return out, nil
}

// ShadowField returns the password field of name in the root's
// etc/shadow ("" when the user has no entry). Used to decide whether an
// account is locked; the value itself is never logged.
func ShadowField(root *rootfs.Root, name string) (string, error) {
	b, err := root.ReadFile(ShadowFile, rootfs.InRoot)
	if err != nil {
		return "", fmt.Errorf("reading shadow: %w", err)
	}
	field, found := "", false
	entries(b, 2, func(f []string) { field, found = f[1], true }, func(n string) bool { return n != name || found })
	return field, nil
}

// ValidName reports whether name is safe as a user or group name in
// paths, URLs and commands: the portable set useradd accepts, no "/" and
// no leading "-".
func ValidName(name string) bool {
	if name == "" || len(name) > 32 || name[0] == '-' || name == "." || name == ".." {
		return false
	}
	for i, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '.':
		case r == '-':
		case r == '$' && i == len(name)-1:
		default:
			return false
		}
	}
	return true
}
