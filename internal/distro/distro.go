// Package distro names an image's distribution from its /etc/os-release and
// the login user that distribution's cloud images are known by.
package distro

import (
	"bufio"
	"bytes"
	"errors"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/flint-dev/flint/internal/rootfs"
)

// OSRelease holds the fields of os-release(5) that identify a distribution.
type OSRelease struct {
	ID        string
	IDLike    []string
	VersionID string
}

// ParseOSRelease reads os-release(5) text: KEY=VALUE lines, values
// optionally quoted with shell quoting; comments and unknown keys are
// ignored, and a malformed line is skipped rather than failing the rest.
func ParseOSRelease(b []byte) OSRelease {
	var r OSRelease
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		v = unquote(v)
		switch k {
		case "ID":
			r.ID = strings.ToLower(v)
		case "ID_LIKE":
			r.IDLike = strings.Fields(strings.ToLower(v))
		case "VERSION_ID":
			r.VersionID = v
		}
	}
	return r
}

// Read reads the root's os-release: etc/os-release, else
// usr/lib/os-release, as os-release(5) says. An error wrapping
// fs.ErrNotExist means the image has neither.
func Read(root *rootfs.Root) (OSRelease, error) {
	var err error
	for _, p := range []string{"etc/os-release", "usr/lib/os-release"} {
		var b []byte
		if b, err = root.ReadFile(p, rootfs.InRoot); err == nil {
			return ParseOSRelease(b), nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return OSRelease{}, err
		}
	}
	return OSRelease{}, err
}

// Like reports whether r is the distribution id or one like it (ID_LIKE).
func (r OSRelease) Like(id string) bool {
	return r.ID == id || slices.Contains(r.IDLike, id)
}

func unquote(v string) string {
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		if v[0] == '"' {
			if u, err := strconv.Unquote(v); err == nil {
				return u
			}
		}
		return v[1 : len(v)-1]
	}
	return v
}

// User is a distribution's default login user, with the fields of
// cloud-init's system_info.default_user.
type User struct {
	Name       string
	Gecos      string
	Groups     []string
	Shell      string
	Sudo       []string
	LockPasswd bool
}

// NoPasswdSudo is the sudo rule every distribution's default user gets.
const NoPasswdSudo = "ALL=(ALL) NOPASSWD:ALL"

// family is one row of the table: the user name the distribution's
// official EC2 images log in with (AWS's "default user names" list, which
// is also what those images configure cloud-init with), and the gecos,
// groups and shell of cloud-init 22.4's config/cloud.cfg.tmpl for it.
type family struct {
	name, gecos, shell string
	groups             []string
}

var (
	debianGroups = []string{"adm", "audio", "cdrom", "dialout", "dip", "floppy", "netdev", "plugdev", "sudo", "video"}
	rhelGroups   = []string{"adm", "systemd-journal"}
	otherGroups  = []string{"wheel", "adm", "systemd-journal"}
)

// families maps os-release IDs to default users. Debian's cloud.cfg says
// "debian", but Debian's official AMIs log in as admin, which is what a user
// of an EC2-like cloud expects; likewise the RHEL family and Fedora images
// on EC2 use ec2-user where upstream cloud-init says cloud-user or the
// distribution's name.
var families = sync.OnceValue(func() map[string]family {
	return map[string]family{
		"debian":       {"admin", "Debian", "/bin/bash", debianGroups},
		"ubuntu":       {"ubuntu", "Ubuntu", "/bin/bash", []string{"adm", "cdrom", "dip", "lxd", "sudo"}},
		"amzn":         {"ec2-user", "EC2 Default User", "/bin/bash", otherGroups},
		"fedora":       {"ec2-user", "fedora Cloud User", "/bin/bash", otherGroups},
		"rhel":         {"ec2-user", "Cloud User", "/bin/bash", rhelGroups},
		"centos":       {"ec2-user", "Cloud User", "/bin/bash", rhelGroups},
		"rocky":        {"ec2-user", "rocky Cloud User", "/bin/bash", rhelGroups},
		"almalinux":    {"ec2-user", "almalinux Cloud User", "/bin/bash", rhelGroups},
		"ol":           {"ec2-user", "ol Cloud User", "/bin/bash", rhelGroups},
		"cloudlinux":   {"ec2-user", "cloudlinux Cloud User", "/bin/bash", rhelGroups},
		"eurolinux":    {"ec2-user", "eurolinux Cloud User", "/bin/bash", rhelGroups},
		"miraclelinux": {"ec2-user", "miraclelinux Cloud User", "/bin/bash", rhelGroups},
		"virtuozzo":    {"ec2-user", "virtuozzo Cloud User", "/bin/bash", rhelGroups},
		"sles":         {"ec2-user", "suse Cloud User", "/bin/bash", []string{"cdrom", "users"}},
		"suse":         {"ec2-user", "suse Cloud User", "/bin/bash", []string{"cdrom", "users"}},
		"arch":         {"arch", "arch Cloud User", "/bin/bash", []string{"wheel", "users"}},
		"alpine":       {"alpine", "alpine Cloud User", "/bin/ash", []string{"adm", "wheel"}},
		"gentoo":       {"gentoo", "gentoo Cloud User", "/bin/bash", []string{"users", "wheel"}},
	}
})

// DefaultUser returns the default login user of the distribution r names:
// by ID, else by the first ID_LIKE entry the table knows (a derivative
// logs in as its parent's images do; opensuse-leap is "suse"-like). ok is
// false when neither is known: the caller must not guess a user then.
func DefaultUser(r OSRelease) (u User, ok bool) {
	ids := append([]string{r.ID}, r.IDLike...)
	if strings.HasPrefix(r.ID, "opensuse") {
		ids = append([]string{"suse"}, ids...)
	}
	for _, id := range ids {
		f, found := families()[id]
		if !found {
			continue
		}
		return User{
			Name:       f.name,
			Gecos:      f.gecos,
			Groups:     append([]string(nil), f.groups...),
			Shell:      f.shell,
			Sudo:       []string{NoPasswdSudo},
			LockPasswd: true,
		}, true
	}
	return User{}, false
}
