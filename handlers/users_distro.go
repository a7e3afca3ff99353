package handlers

import (
	"fmt"

	"github.com/flint-dev/flint/internal/distro"
	"github.com/flint-dev/flint/internal/rootfs"
)

// imageDefaultUser is the default user of the image's distribution, as
// cloud-init's distribution defaults give one, for a configuration that
// sets no users.default_user. It is nil when /etc/os-release is missing or
// names no known distribution: then no account is guessed.
func imageDefaultUser(b *Boot) *DefaultUser {
	var raw []byte
	var err error
	for _, p := range []string{"etc/os-release", "usr/lib/os-release"} {
		if raw, err = b.Root.ReadFile(p, rootfs.InRoot); err == nil {
			break
		}
	}
	if err != nil {
		b.Note("no default user: users.default_user is not set and the image has no os-release")
		return nil
	}
	rel := distro.ParseOSRelease(raw)
	u, ok := distro.DefaultUser(rel)
	if !ok {
		b.Note("no default user: users.default_user is not set and os-release's ID %q (ID_LIKE %q) is no known distribution", rel.ID, rel.IDLike)
		return nil
	}
	b.Note("default user %s: the distribution's (os-release ID %s); users.default_user is not set", u.Name, rel.ID)
	lock := u.LockPasswd
	return &DefaultUser{Name: u.Name, Gecos: u.Gecos, Groups: u.Groups, Sudo: u.Sudo, Shell: u.Shell, LockPasswd: &lock}
}

// skipRootKeys reports why root gets none of the instance's keys: with
// disable_root and no default user, root's key file would only hold
// cloud-init's "Please login as the user NONE" forced command, which sends
// everyone away; no keys at all says the same more honestly.
func skipRootKeys(b *Boot, n int) {
	msg := fmt.Sprintf("root: %d instance keys not installed: there is no default user to send root's logins to "+
		"(set users.default_user, or disable_root: false to log in as root)", n)
	b.Note("%s", msg)
	b.Log.Warn(msg)
}
