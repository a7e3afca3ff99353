package builtin

import (
	"fmt"

	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/internal/distro"
	"github.com/flint-dev/flint/internal/rootfs"
)

// distroDefaultUser is the default user of the image's distribution, as
// cloud-init's distribution defaults give one, for a configuration that
// sets no users.default_user: read from the root's os-release. It is nil,
// with the reason, when os-release is missing or names no known
// distribution: then no account is guessed. The users and ssh-keys
// handlers and `flint ssh-keys` (sshd's AuthorizedKeysCommand) decide with
// it, so all three give the instance's keys to the same account.
func distroDefaultUser(root *rootfs.Root) (*defaultUserConfig, string) {
	rel, err := distro.Read(root)
	if err != nil {
		return nil, "no default user: users.default_user is not set and the image has no os-release"
	}
	u, ok := distro.DefaultUser(rel)
	if !ok {
		return nil, fmt.Sprintf("no default user: users.default_user is not set and os-release's ID %q (ID_LIKE %q) is no known distribution", rel.ID, rel.IDLike)
	}
	lock := u.LockPasswd
	return &defaultUserConfig{Name: u.Name, Gecos: u.Gecos, Groups: u.Groups, Sudo: sudoRules(u.Sudo), Shell: u.Shell, LockPasswd: &lock},
		fmt.Sprintf("default user %s: the distribution's (os-release ID %s); users.default_user is not set", u.Name, rel.ID)
}

// imageDefaultUser is distroDefaultUser for a handler: what was decided,
// and why, is in the handler's notes.
func imageDefaultUser(b *handlers.Boot) *defaultUserConfig {
	u, why := distroDefaultUser(b.Root)
	b.Note("%s", why)
	return u
}

// ImageDefaultUserName is the distribution's default user of the root at
// dir ("" when it cannot be determined): the account `flint ssh-keys`
// serves the instance's keys to when the configuration names none.
func ImageDefaultUserName(dir string) string {
	root, err := rootfs.Open(dir)
	if err != nil {
		return ""
	}
	defer root.Close()
	if u, _ := distroDefaultUser(root); u != nil {
		return u.Name
	}
	return ""
}
