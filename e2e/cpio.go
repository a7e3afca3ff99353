// Package e2e boots a real Debian cloud kernel under QEMU with an
// initramfs holding busybox and flint, and checks what flint did inside
// the guest. It holds tests only, plus the small initramfs writer they use.
package e2e

import (
	"fmt"
	"io"
	"os"
	"path"
	"sort"
)

// initramfs is an in-memory newc cpio archive under construction.
type initramfs struct {
	entries map[string]entry
}

type entry struct {
	mode uint32 // including the file type bits
	data []byte
}

const (
	modeDir  = 0o040000
	modeFile = 0o100000
	modeLink = 0o120000
)

func newInitramfs() *initramfs { return &initramfs{entries: map[string]entry{}} }

func (r *initramfs) dirs(p string) {
	for d := path.Dir(p); d != "." && d != "/"; d = path.Dir(d) {
		if _, ok := r.entries[d]; !ok {
			r.entries[d] = entry{mode: modeDir | 0o755}
		}
	}
}

// file adds a regular file.
func (r *initramfs) file(p string, perm uint32, data []byte) {
	r.dirs(p)
	r.entries[p] = entry{mode: modeFile | perm, data: data}
}

// copyFile adds a host file.
func (r *initramfs) copyFile(p string, perm uint32, host string) error {
	b, err := os.ReadFile(host)
	if err != nil {
		return err
	}
	r.file(p, perm, b)
	return nil
}

// symlink adds a symbolic link.
func (r *initramfs) symlink(p, target string) {
	r.dirs(p)
	r.entries[p] = entry{mode: modeLink | 0o777, data: []byte(target)}
}

// dir adds an empty directory.
func (r *initramfs) dir(p string) {
	r.dirs(p + "/x")
}

// write emits the archive in the kernel's newc format, parents first.
func (r *initramfs) write(w io.Writer) error {
	names := make([]string, 0, len(r.entries))
	for n := range r.entries {
		names = append(names, n)
	}
	sort.Strings(names)
	ino := 1
	put := func(name string, e entry) error {
		hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
			ino, e.mode, 0, 0, 1, 0, len(e.data), 0, 0, 0, 0, len(name)+1, 0)
		ino++
		buf := append([]byte(hdr), name...)
		buf = append(buf, 0)
		for len(buf)%4 != 0 {
			buf = append(buf, 0)
		}
		buf = append(buf, e.data...)
		for len(buf)%4 != 0 {
			buf = append(buf, 0)
		}
		_, err := w.Write(buf)
		return err
	}
	for _, n := range names {
		if err := put(n, r.entries[n]); err != nil {
			return err
		}
	}
	return put("TRAILER!!!", entry{})
}
