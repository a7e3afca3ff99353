package fallback

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/flint-dev/flint/internal/rootfs"
)

// ErrChanged is returned, with the links that could be read, when an
// interface vanished while ReadLinks listed them: udev renaming one (eth0
// to enp0s2) looks so, and the listing may then lack it under either name.
var ErrChanged = errors.New("an interface vanished while the interfaces were listed")

// ReadLinks lists the links in sys/class/net (sys is "/sys" on a host).
func ReadLinks(sys string) ([]Link, error) {
	dir := filepath.Join(sys, "class/net")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var links []Link
	var changed error
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		// ifindex, address and type exist for every link: one that
		// cannot be read means the link was renamed (or removed) while
		// it was read, and what was read of it may be half missing (no
		// MAC, no type), which must not make it look like no Ethernet.
		index, errIndex := os.ReadFile(filepath.Join(p, "ifindex"))
		mac, errMAC := os.ReadFile(filepath.Join(p, "address"))
		typ, errType := os.ReadFile(filepath.Join(p, "type"))
		idx, errAtoi := strconv.Atoi(strings.TrimSpace(string(index)))
		if errIndex != nil || errMAC != nil || errType != nil || errAtoi != nil {
			changed = ErrChanged
			continue
		}
		l := Link{Index: idx, Name: e.Name(), MAC: strings.ToLower(strings.TrimSpace(string(mac)))}
		dev, devErr := filepath.EvalSymlinks(filepath.Join(p, "device"))
		if devErr == nil {
			l.Device = dev
		}
		_, wireless := os.Stat(filepath.Join(p, "wireless"))
		uevent := readTrim(filepath.Join(p, "uevent"))
		l.Ether = strings.TrimSpace(string(typ)) == "1" && devErr == nil && wireless != nil &&
			!strings.Contains(uevent, "DEVTYPE=")
		if _, err := os.Stat(filepath.Join(p, "ifindex")); err != nil {
			changed = ErrChanged // renamed after the reads above: device, uevent may be its new name's or none
			continue
		}
		links = append(links, l)
	}
	return links, changed
}

func readTrim(p string) string {
	b, _ := os.ReadFile(p)
	return strings.TrimSpace(string(b))
}

// AllSettled reports whether udev is done with every Ethernet link of
// links (see settled): the primary is chosen among links that keep their
// names, none of them being renamed at that moment.
func AllSettled(run string, links []Link) bool {
	for _, l := range links {
		if l.Ether && !settled(run, l) {
			return false
		}
	}
	return true
}

// settled reports whether udev is done with the link (it has renamed it,
// if it renames it): its database entry exists, or udev does not run.
func settled(run string, l Link) bool {
	if _, err := os.Stat(filepath.Join(run, "udev/control")); err != nil {
		return true
	}
	_, err := os.Stat(filepath.Join(run, "udev/data", "n"+strconv.Itoa(l.Index)))
	return err == nil
}

// RootFS is r as an fs.FS whose symlinks resolve inside the root (and
// whose Lstat and ReadLink see the links themselves), for Decide.
func RootFS(r *rootfs.Root) fs.FS { return rootFS{r} }

type rootFS struct{ r *rootfs.Root }

func (f rootFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	return f.r.OpenFile(name, os.O_RDONLY, 0, rootfs.InRoot)
}

func (f rootFS) ReadLink(name string) (string, error) { return os.Readlink(f.r.Path(name)) }

func (f rootFS) Lstat(name string) (fs.FileInfo, error) { return os.Lstat(f.r.Path(name)) }
