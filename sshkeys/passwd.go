package sshkeys

import (
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/flint-dev/flint/internal/rootfs"
)

// User is one entry of a root's etc/passwd.
type User struct {
	Name  string
	UID   int
	GID   int
	Home  string
	Shell string
}

// ErrNoUser is wrapped when a user is not in the root's etc/passwd.
var ErrNoUser = errors.New("no such user")

// LookupUser reads name from the root's etc/passwd. The root's own files
// are the truth for an image being provisioned, not the host's NSS.
func LookupUser(root *rootfs.Root, name string) (User, error) {
	b, err := root.ReadFile("etc/passwd", rootfs.InRoot)
	if errors.Is(err, fs.ErrNotExist) {
		return User{}, fmt.Errorf("user %s: %s does not exist: %w", name, root.Path("etc/passwd"), ErrNoUser)
	}
	if err != nil {
		return User{}, fmt.Errorf("reading users: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, ":")
		if len(f) < 7 || f[0] != name {
			continue
		}
		uid, err1 := strconv.Atoi(f[2])
		gid, err2 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil || uid < 0 || gid < 0 {
			return User{}, fmt.Errorf("%s: entry for %s has a malformed uid or gid", root.Path("etc/passwd"), name)
		}
		return User{Name: name, UID: uid, GID: gid, Home: f[5], Shell: f[6]}, nil
	}
	return User{}, fmt.Errorf("user %s in %s: %w", name, root.Path("etc/passwd"), ErrNoUser)
}

// GroupMembers reads the root's etc/group: group name → members. A
// missing file is an empty map.
func GroupMembers(root *rootfs.Root) (map[string][]string, error) {
	b, err := root.ReadFile("etc/group", rootfs.InRoot)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string][]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading groups: %w", err)
	}
	m := map[string][]string{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, ":")
		if len(f) < 4 || f[0] == "" {
			continue
		}
		var members []string
		for _, u := range strings.Split(f[3], ",") {
			if u = strings.TrimSpace(u); u != "" {
				members = append(members, u)
			}
		}
		m[f[0]] = members
	}
	return m, nil
}

// ShadowField returns the password field of name in the root's
// etc/shadow ("" when the user has no entry). Used to decide whether an
// account is locked; the value itself is never logged.
func ShadowField(root *rootfs.Root, name string) (string, error) {
	b, err := root.ReadFile("etc/shadow", rootfs.InRoot)
	if err != nil {
		return "", fmt.Errorf("reading shadow: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Split(line, ":"); len(f) >= 2 && f[0] == name {
			return f[1], nil
		}
	}
	return "", nil
}

// ValidUserName reports whether name is safe to use in paths, URLs and
// commands: the portable user name set useradd accepts, no "/" and no
// leading "-".
func ValidUserName(name string) bool {
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
