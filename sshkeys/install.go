package sshkeys

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/flint-dev/flint/internal/accounts"
	"github.com/flint-dev/flint/internal/rootfs"
)

// Installed reports what Install did.
type Installed struct {
	// Path is the file's root-relative path.
	Path string
	// Added counts keys that were not in the file before.
	Added int
	// Wrote is false when the file already held every key with the right
	// owner and mode.
	Wrote bool
	// Repaired lists ownership or mode fixes made on the way.
	Repaired []string
}

// maxExisting caps an existing authorized_keys read back for merging.
const maxExisting = 4 << 20

// Install merges keys into u's authorized keys file rel (root-relative).
// Every path element is opened without following symlinks: a symlinked
// ~/.ssh or authorized_keys is refused (the error wraps rootfs.ErrSymlink)
// and nothing is written. Below the home directory, missing directories
// are created 0700 owned by u and existing ones are repaired to that; the
// file is replaced atomically, 0600, owned by u. A home directory owned by
// someone other than u or root is refused: sshd would refuse it too, and
// flint must not take it over.
func Install(root *rootfs.Root, u accounts.User, rel string, keys []Key) (Installed, error) {
	res := Installed{Path: rel}
	home := strings.TrimPrefix(path.Clean("/"+u.Home), "/")
	owner := rootfs.Owner{UID: u.UID, GID: u.GID}
	underHome := home != "" && strings.HasPrefix(rel, home+"/")
	if underHome {
		fi, err := root.Stat(home, rootfs.Strict)
		if err != nil {
			return res, fmt.Errorf("home directory of %s: %w", u.Name, err)
		}
		if !fi.IsDir() {
			return res, fmt.Errorf("home directory %s of %s is not a directory", root.Path(home), u.Name)
		}
		if uid := statUID(fi); uid != u.UID && uid != 0 {
			return res, fmt.Errorf("home directory %s is owned by uid %d, not by %s (uid %d) or root; not writing keys: fix its owner", root.Path(home), uid, u.Name, u.UID)
		}
		dir := path.Dir(rel)
		var sub []string
		for d := dir; d != home; d = path.Dir(d) {
			sub = append([]string{d}, sub...)
		}
		for _, d := range sub {
			fixed, err := ensureDir(root, d, owner)
			if err != nil {
				return res, err
			}
			res.Repaired = append(res.Repaired, fixed...)
		}
	} else if err := root.MkdirAll(path.Dir(rel), 0o755, rootfs.NoOwner, rootfs.Strict); err != nil {
		return res, err
	}
	var old []byte
	fi, err := root.Stat(rel, rootfs.Strict)
	switch {
	case err == nil && !fi.Mode().IsRegular():
		return res, fmt.Errorf("%s is not a regular file; not writing keys", root.Path(rel))
	case err == nil && fi.Size() > maxExisting:
		return res, fmt.Errorf("%s is larger than %d bytes; not merging keys into it", root.Path(rel), maxExisting)
	case err == nil:
		if old, err = root.ReadFile(rel, rootfs.Strict); err != nil {
			return res, err
		}
	case errors.Is(err, fs.ErrNotExist):
	default:
		return res, err
	}
	merged, added := Merge(old, keys)
	res.Added = added
	if added == 0 && fi != nil && statUID(fi) == u.UID && statGID(fi) == u.GID && fi.Mode().Perm() == 0o600 {
		return res, nil
	}
	if fi != nil && (statUID(fi) != u.UID || fi.Mode().Perm() != 0o600) {
		res.Repaired = append(res.Repaired, fmt.Sprintf("%s: owner uid %d mode %04o → uid %d mode 0600", rel, statUID(fi), fi.Mode().Perm(), u.UID))
	}
	if err := root.WriteFile(rel, merged, rootfs.WriteOptions{Perm: 0o600, Owner: owner, Resolution: rootfs.Strict}); err != nil {
		return res, err
	}
	res.Wrote = true
	return res, nil
}

// ensureDir makes rel a 0700 directory owned by owner, creating it or
// repairing an existing one, never through a symlink.
func ensureDir(root *rootfs.Root, rel string, owner rootfs.Owner) ([]string, error) {
	if err := root.MkdirAll(rel, 0o700, owner, rootfs.Strict); err != nil {
		return nil, err
	}
	f, err := root.OpenFile(rel, unix.O_RDONLY|unix.O_DIRECTORY, 0, rootfs.Strict)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	st := fi.Sys().(*syscall.Stat_t)
	var fixed []string
	if int(st.Uid) != owner.UID || int(st.Gid) != owner.GID {
		if err := f.Chown(owner.UID, owner.GID); err != nil {
			return nil, err
		}
		fixed = append(fixed, fmt.Sprintf("%s: owner uid %d → %d", rel, st.Uid, owner.UID))
	}
	if st.Mode&0o7777 != 0o700 {
		if err := f.Chmod(0o700); err != nil {
			return nil, err
		}
		fixed = append(fixed, fmt.Sprintf("%s: mode %04o → 0700", rel, st.Mode&0o7777))
	}
	return fixed, nil
}

func statUID(fi fs.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}

func statGID(fi fs.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Gid)
	}
	return -1
}
