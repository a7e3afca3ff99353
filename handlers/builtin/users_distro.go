package builtin

import (
	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/internal/distro"
	"github.com/flint-dev/flint/internal/rootfs"
)

// imageDefaultUser is the default user of the image's distribution, as
// cloud-init's distribution defaults give one, for a configuration that
// sets no users.default_user. It is nil when /etc/os-release is missing or
// names no known distribution: then no account is guessed.
func imageDefaultUser(b *handlers.Boot) *defaultUserConfig {
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
	return &defaultUserConfig{Name: u.Name, Gecos: u.Gecos, Groups: u.Groups, Sudo: sudoRules(u.Sudo), Shell: u.Shell, LockPasswd: &lock}
}
