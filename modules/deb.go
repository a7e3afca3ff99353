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
// without dpkg, so a vendor can pack on any machine. rpm.go reads .rpm
// packages the same way.

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
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return packTree{}, fmt.Errorf("pack: %w", err)
		}
		return readRPM(f, src, release)
	default:
		return packTree{}, fmt.Errorf("pack %s: not a directory, a Debian package or an rpm", src)
	}
	tmp, err := os.MkdirTemp("", "flint-pack-")
	if err != nil {
		return packTree{}, err
	}
	t := packTree{cleanup: func() { os.RemoveAll(tmp) }}
	trees := map[string]*pkgRelease{}
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
	if !sawData {
		t.cleanup()
		return packTree{}, fmt.Errorf("pack %s: no data.tar member; not a Debian binary package", src)
	}
	if err := t.choose(src, release, trees); err != nil {
		t.cleanup()
		return packTree{}, err
	}
	return t, nil
}

// choose takes the release's items out of a package's trees: the one
// asked for, or the only one there is.
func (t *packTree) choose(src, release string, trees map[string]*pkgRelease) error {
	var rels []string
	for r := range trees {
		rels = append(rels, r)
	}
	sort.Strings(rels)
	switch {
	case release != "" && trees[release] == nil:
		return fmt.Errorf("pack %s: no lib/modules/%s in the package (found %s)", src, release, strings.Join(rels, ", "))
	case release == "" && len(rels) == 0:
		return fmt.Errorf("pack %s: the package has no lib/modules/<release> tree", src)
	case release == "" && len(rels) > 1:
		return fmt.Errorf("pack %s: the package holds several releases (%s); choose one with --release", src, strings.Join(rels, ", "))
	case release == "":
		release = rels[0]
	}
	t.release = release
	items, notes := trees[release].withParents()
	t.items = items
	t.notes = append(t.notes, notes...)
	return nil
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

// pkgRelease collects one release's items from a package.
type pkgRelease struct {
	items []packItem
	byRel map[string]int
}

// add appends it, or replaces an earlier entry of the same name as tar -x
// and cpio -i do, and returns its index.
func (p *pkgRelease) add(it packItem) int {
	if i, dup := p.byRel[it.rel]; dup {
		p.items[i] = it
		return i
	}
	p.byRel[it.rel] = len(p.items)
	p.items = append(p.items, it)
	return len(p.items) - 1
}

// releaseOf returns the items of release, made on first use.
func releaseOf(trees map[string]*pkgRelease, release string) *pkgRelease {
	p := trees[release]
	if p == nil {
		p = &pkgRelease{byRel: map[string]int{}}
		trees[release] = p
	}
	return p
}

// withParents returns the items sorted by name with the directories a
// package leaves implicit added (the release directory itself, and the
// parents of files a split package does not own), as unpacking it would
// make them. An entry beneath a non-directory is dropped: unpacking it
// would write through a link.
func (p *pkgRelease) withParents() ([]packItem, []string) {
	var notes []string
	items := make([]packItem, 0, len(p.items))
	for _, it := range p.items {
		if bad, ok := p.nonDirParent(it.rel); ok {
			if bad == "" {
				bad = "the release directory"
			}
			notes = append(notes, fmt.Sprintf("dropped %s: %s is not a directory", it.rel, bad))
			continue
		}
		items = append(items, it)
	}
	have := map[string]bool{}
	for _, it := range items {
		have[it.rel] = true
	}
	for _, it := range items {
		for d := it.rel; d != ""; {
			d = parentRel(d)
			if have[d] {
				break
			}
			have[d] = true
			items = append(items, packItem{rel: d, typ: tar.TypeDir, mode: 0o755})
		}
	}
	if !have[""] {
		items = append(items, packItem{rel: "", typ: tar.TypeDir, mode: 0o755})
	}
	sort.Slice(items, func(i, j int) bool { return items[i].rel < items[j].rel })
	return items, notes
}

// nonDirParent finds an entry above rel that is not a directory.
func (p *pkgRelease) nonDirParent(rel string) (string, bool) {
	for d := rel; d != ""; {
		d = parentRel(d)
		if i, ok := p.byRel[d]; ok && p.items[i].typ != tar.TypeDir {
			return d, true
		}
	}
	return "", false
}

// parentRel is the directory holding rel ("" for the release directory).
func parentRel(rel string) string {
	if i := strings.LastIndexByte(rel, '/'); i >= 0 {
		return rel[:i]
	}
	return ""
}

// readDebData keeps the entries under (usr/)lib/modules/<release>/ of a
// package's data.tar. File contents go to numbered files in tmp, so no
// name from the package is ever used as a path on this machine.
func readDebData(r io.Reader, tmp string, trees map[string]*pkgRelease, notes *[]string) error {
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
		t := releaseOf(trees, release)
		it := packItem{rel: rel, mode: h.Mode & 0o7777}
		switch h.Typeflag {
		case tar.TypeDir:
			it.typ = tar.TypeDir
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
		t.add(it)
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
