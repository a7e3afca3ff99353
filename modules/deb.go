package modules

import (
	"archive/tar"
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// A Debian package is an ar archive: debian-binary, control.tar.* and
// data.tar.* (uncompressed, gzip, xz or zstd). Pack reads the
// lib/modules/<release> part of data.tar and the Architecture of control,
// without dpkg, so a vendor can pack on any machine.

var (
	arMagic  = []byte("!<arch>\n")
	rpmMagic = []byte{0xed, 0xab, 0xee, 0xdb}
)

// readPackage reads the module tree out of a kernel package.
func readPackage(src, release string) (packTree, error) {
	f, err := os.Open(src)
	if err != nil {
		return packTree{}, fmt.Errorf("pack: %w", err)
	}
	defer f.Close()
	head := make([]byte, 8)
	if _, err := io.ReadFull(f, head); err != nil {
		return packTree{}, fmt.Errorf("pack %s: not a directory or a kernel package", src)
	}
	switch {
	case bytes.Equal(head, arMagic):
	case bytes.HasPrefix(head, rpmMagic):
		return packTree{}, fmt.Errorf("pack %s: .rpm packages are not read yet; unpack it (rpm2cpio %s | cpio -idm) and pack the directory", src, filepath.Base(src))
	default:
		return packTree{}, fmt.Errorf("pack %s: not a directory or a Debian package", src)
	}
	tmp, err := os.MkdirTemp("", "flint-pack-")
	if err != nil {
		return packTree{}, err
	}
	t := packTree{cleanup: func() { os.RemoveAll(tmp) }}
	trees := map[string]*debTree{}
	br := bufio.NewReader(f)
	sawData := false
	for {
		name, size, err := nextArMember(br)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.cleanup()
			return packTree{}, fmt.Errorf("pack %s: %w", src, err)
		}
		body := io.LimitReader(br, size)
		switch {
		case strings.HasPrefix(name, "control.tar"):
			t.arch, err = debArch(body)
		case strings.HasPrefix(name, "data.tar"):
			sawData = true
			err = readDebData(body, tmp, trees, &t.notes)
		}
		if err != nil {
			t.cleanup()
			return packTree{}, fmt.Errorf("pack %s: %s: %w", src, name, err)
		}
		// The rest of the member, and the padding to an even offset.
		if _, err := io.Copy(io.Discard, body); err != nil {
			t.cleanup()
			return packTree{}, fmt.Errorf("pack %s: %w", src, err)
		}
		if size%2 == 1 {
			br.ReadByte()
		}
	}
	var rels []string
	for r := range trees {
		rels = append(rels, r)
	}
	sort.Strings(rels)
	switch {
	case !sawData:
		err = fmt.Errorf("pack %s: no data.tar member; not a Debian binary package", src)
	case release != "" && trees[release] == nil:
		err = fmt.Errorf("pack %s: no lib/modules/%s in the package (found %s)", src, release, strings.Join(rels, ", "))
	case release == "" && len(rels) == 0:
		err = fmt.Errorf("pack %s: the package has no lib/modules/<release> tree", src)
	case release == "" && len(rels) > 1:
		err = fmt.Errorf("pack %s: the package holds several releases (%s); choose one with --release", src, strings.Join(rels, ", "))
	case release == "":
		release = rels[0]
	}
	if err != nil {
		t.cleanup()
		return packTree{}, err
	}
	t.release = release
	t.items = trees[release].items
	if !trees[release].hasRoot {
		t.items = append(t.items, packItem{rel: "", typ: tar.TypeDir, mode: 0o755})
	}
	return t, nil
}

// nextArMember reads one ar member header: the name and the size of the
// body that follows.
func nextArMember(r *bufio.Reader) (string, int64, error) {
	var h [60]byte
	n, err := io.ReadFull(r, h[:])
	if n == 0 && (err == io.EOF || err == io.ErrUnexpectedEOF) {
		return "", 0, io.EOF
	}
	if err != nil {
		return "", 0, fmt.Errorf("truncated ar header: %w", err)
	}
	if h[58] != '`' || h[59] != '\n' {
		return "", 0, errors.New("bad ar member header")
	}
	name := strings.TrimSuffix(strings.TrimSpace(string(h[0:16])), "/")
	size, err := strconv.ParseInt(strings.TrimSpace(string(h[48:58])), 10, 64)
	if err != nil || size < 0 {
		return "", 0, fmt.Errorf("ar member %q: bad size", name)
	}
	return name, size, nil
}

// debArch reads the Architecture field of the control file.
func debArch(r io.Reader) (string, error) {
	zr, _, done, err := Decompress(r, "")
	if err != nil {
		return "", err
	}
	defer done()
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return "", nil
		}
		if err != nil {
			return "", err
		}
		if strings.TrimPrefix(h.Name, "./") != "control" {
			continue
		}
		b, err := io.ReadAll(io.LimitReader(tr, 1<<20))
		if err != nil {
			return "", err
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "Architecture:"); ok {
				return strings.TrimSpace(v), nil
			}
		}
		return "", nil
	}
}

// debTree collects one release's items from data.tar.
type debTree struct {
	items   []packItem
	byRel   map[string]int
	hasRoot bool
}

// readDebData keeps the entries under (usr/)lib/modules/<release>/ of a
// package's data.tar. File contents go to numbered files in tmp, so no
// name from the package is ever used as a path on this machine.
func readDebData(r io.Reader, tmp string, trees map[string]*debTree, notes *[]string) error {
	zr, _, done, err := Decompress(r, "")
	if err != nil {
		return err
	}
	defer done()
	tr := tar.NewReader(zr)
	for n := 0; ; n++ {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		release, rel, ok, err := debModulePath(h.Name)
		if err != nil && strings.Trim(h.Name, "./") != "" {
			*notes = append(*notes, fmt.Sprintf("dropped %s: %v", h.Name, err))
			continue
		}
		if err != nil || !ok {
			continue
		}
		t := trees[release]
		if t == nil {
			t = &debTree{byRel: map[string]int{}}
			trees[release] = t
		}
		it := packItem{rel: rel, mode: h.Mode & 0o7777}
		switch h.Typeflag {
		case tar.TypeDir:
			it.typ = tar.TypeDir
			if rel == "" {
				t.hasRoot = true
			}
		case tar.TypeSymlink:
			it.typ, it.link = tar.TypeSymlink, h.Linkname
		case tar.TypeReg:
			p := filepath.Join(tmp, strconv.Itoa(n))
			if err := copyToFile(p, tr); err != nil {
				return err
			}
			it.typ, it.size = tar.TypeReg, h.Size
			it.open = func() (io.ReadCloser, error) { return os.Open(p) }
		case tar.TypeLink:
			lrelease, lrel, ok, _ := debModulePath(h.Linkname)
			i, found := t.byRel[lrel]
			if !ok || lrelease != release || !found || t.items[i].typ != tar.TypeReg {
				*notes = append(*notes, fmt.Sprintf("dropped %s: hard link to %s, not a file of the tree", h.Name, h.Linkname))
				continue
			}
			it.typ, it.size, it.open = tar.TypeReg, t.items[i].size, t.items[i].open
		default:
			*notes = append(*notes, fmt.Sprintf("dropped %s: entry type %q is not a file, directory or link", h.Name, string(rune(h.Typeflag))))
			continue
		}
		if i, dup := t.byRel[rel]; dup {
			t.items[i] = it // a later entry replaces an earlier one, as tar -x does
			continue
		}
		t.byRel[rel] = len(t.items)
		t.items = append(t.items, it)
	}
}

// debModulePath splits "./lib/modules/<release>/<rel>" (or usr/lib/…);
// ok is false for every other path of the package.
func debModulePath(name string) (release, rel string, ok bool, err error) {
	comps, err := splitName(name)
	if err != nil {
		var re *RefusedError
		if errors.As(err, &re) {
			return "", "", false, errors.New(re.Reason)
		}
		return "", "", false, err
	}
	if len(comps) > 0 && comps[0] == "usr" {
		comps = comps[1:]
	}
	if len(comps) < 3 || comps[0] != "lib" || comps[1] != "modules" {
		return "", "", false, nil
	}
	return comps[2], strings.Join(comps[3:], "/"), true, nil
}

func copyToFile(p string, r io.Reader) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
