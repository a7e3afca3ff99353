package modules

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// PackOptions says what Pack reads and writes.
type PackOptions struct {
	// Source is a release tree (lib/modules/<release> or any directory
	// holding one kernel's modules), a root holding lib/modules/<release>
	// (or usr/lib/modules/<release>), or a kernel package (.deb, .rpm).
	Source string
	// Release names the kernel release; needed only when the source does
	// not say (a tree whose directory name is not the release, a root or
	// a package with several releases).
	Release string
	// Arch is the Debian-style architecture; default: the package's, or
	// the release's suffix (-amd64, -arm64), or none.
	Arch string
	// Format of the bundle; default tar.zst.
	Format Format
	// Out is the bundle file to write (atomically); default
	// <release>.<format> in the current directory.
	Out string
	// MTime is the time every entry carries (reproducible builds); the
	// zero value means the Unix epoch.
	MTime time.Time
	// NoIndex leaves the module index out of the bundle: instances then
	// run depmod. By default the bundle carries the index depmod builds
	// from the packed tree (see IndexStampName).
	NoIndex bool
	// Depmod builds the index of base/lib/modules/<release>; nil means
	// kmod's depmod with an empty configuration.
	Depmod func(ctx context.Context, base, release string) error
}

// PackResult describes a written bundle.
type PackResult struct {
	Path    string
	Release string
	Arch    string
	Format  Format
	SHA256  string
	Size    int64
	Files   int
	// Index names the depmod that built the module index the bundle
	// carries; "" when it carries none.
	Index string
	// Notes lists what was dropped or changed on the way (build and
	// source links, device nodes, setuid bits, links leaving the tree).
	Notes []string
}

// packItem is one entry of the tree being packed, named relative to the
// release directory ("" is the directory itself).
type packItem struct {
	rel  string
	typ  byte // tar.TypeReg, tar.TypeDir or tar.TypeSymlink
	mode int64
	link string
	size int64
	open func() (io.ReadCloser, error)
}

// packTree is what a source yields: the items of one release tree and
// what is known about it.
type packTree struct {
	release string
	arch    string
	items   []packItem
	notes   []string
	cleanup func()
}

// Pack turns a module tree or a kernel package into a bundle that any
// flint installs: entries sorted by name under lib/modules/<release>/,
// owner 0:0, one fixed mtime, modes reduced to 0755/0644 (0777 for
// links), so the same input gives the same bytes. Entries an instance
// would refuse are dropped and listed in Notes: the build and source
// links a kernel build leaves (they point at the build machine), device
// nodes, FIFOs and sockets, symbolic links leaving the tree; setuid and
// setgid bits are cleared.
func Pack(o PackOptions) (PackResult, error) {
	format := o.Format
	if format == "" {
		format = FormatTarZst
	}
	t, err := readPackSource(o.Source, o.Release)
	if err != nil {
		return PackResult{}, err
	}
	if t.cleanup != nil {
		defer t.cleanup()
	}
	if err := validRelease(t.release); err != nil {
		return PackResult{}, fmt.Errorf("pack %s: %w (give --release)", o.Source, err)
	}
	items, notes := cleanPackItems(t.items, t.release)
	notes = append(t.notes, notes...)
	arch := o.Arch
	if arch == "" {
		arch = t.arch
	}
	if arch == "" {
		arch = archFromRelease(t.release)
	}
	out := o.Out
	if out == "" {
		out = t.release + "." + string(format)
	}
	items, indexNotes, index, done, err := withModuleIndex(items, t.release, o)
	if err != nil {
		return PackResult{}, fmt.Errorf("pack %s: %w", o.Source, err)
	}
	defer done()
	notes = append(notes, indexNotes...)
	res := PackResult{Path: out, Release: t.release, Arch: arch, Format: format, Index: index, Notes: notes}
	err = WriteFileAtomic(out, func(w io.Writer) error {
		h := sha256.New()
		cw := &countWriter{w: io.MultiWriter(w, h)}
		files, err := writePackedBundle(cw, format, t.release, items, o.MTime)
		if err != nil {
			return err
		}
		res.Files, res.Size, res.SHA256 = files, cw.n, hex.EncodeToString(h.Sum(nil))
		return nil
	})
	if err != nil {
		return PackResult{}, fmt.Errorf("write bundle %s: %w", out, err)
	}
	return res, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// WriteFileAtomic writes name through a temporary file in its directory
// and renames it into place only when fill succeeded, so a failed pack
// never leaves a truncated bundle under the bundle's name.
func WriteFileAtomic(name string, fill func(io.Writer) error) error {
	dir := filepath.Dir(name)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(name)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := fill(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), name)
}

// archFromRelease reads Debian's and most distributions' release suffix.
func archFromRelease(r string) string {
	for _, a := range []struct{ suffix, arch string }{
		{"-amd64", "amd64"}, {"-arm64", "arm64"}, {".x86_64", "amd64"}, {".aarch64", "arm64"},
	} {
		if strings.HasSuffix(r, a.suffix) {
			return a.arch
		}
	}
	return ""
}

// readPackSource opens a directory or a package file.
func readPackSource(src, release string) (packTree, error) {
	fi, err := os.Stat(src)
	if err != nil {
		return packTree{}, fmt.Errorf("pack: %w", err)
	}
	if !fi.IsDir() {
		return readPackage(src, release)
	}
	dir, rel, err := findReleaseDir(src, release)
	if err != nil {
		return packTree{}, err
	}
	t := packTree{release: rel}
	t.items, t.notes, err = walkTree(dir)
	return t, err
}

// findReleaseDir tells a root (with lib/modules/<release>) from a release
// tree, and names the release.
func findReleaseDir(src, release string) (dir, rel string, err error) {
	for _, sub := range []string{"lib/modules", "usr/lib/modules"} {
		base := filepath.Join(src, sub)
		ents, err := os.ReadDir(base)
		if err != nil {
			continue
		}
		var rels []string
		for _, e := range ents {
			if e.IsDir() {
				rels = append(rels, e.Name())
			}
		}
		switch {
		case release != "":
			if _, err := os.Lstat(filepath.Join(base, release)); err != nil {
				return "", "", fmt.Errorf("pack %s: no %s/%s (found %s)", src, sub, release, strings.Join(rels, ", "))
			}
			return filepath.Join(base, release), release, nil
		case len(rels) == 1:
			return filepath.Join(base, rels[0]), rels[0], nil
		case len(rels) > 1:
			return "", "", fmt.Errorf("pack %s: %s holds several releases (%s); choose one with --release", src, sub, strings.Join(rels, ", "))
		}
	}
	if release == "" {
		abs, err := filepath.Abs(src)
		if err != nil {
			return "", "", err
		}
		release = filepath.Base(abs)
		if !looksLikeRelease(release) {
			return "", "", fmt.Errorf("pack %s: the directory name is not a kernel release; give --release", src)
		}
	}
	return src, release, nil
}

// walkTree lists a release directory without following symbolic links.
func walkTree(dir string) ([]packItem, []string, error) {
	var items []packItem
	var notes []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rel == "." {
			rel = ""
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		it := packItem{rel: rel, mode: int64(fi.Mode().Perm())}
		if fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid) != 0 {
			it.mode |= 0o4000 // cleanPackItems clears it and says so
		}
		switch {
		case fi.Mode().IsRegular():
			it.typ, it.size = tar.TypeReg, fi.Size()
			it.open = func() (io.ReadCloser, error) { return os.Open(p) }
		case fi.IsDir():
			it.typ = tar.TypeDir
		case fi.Mode()&fs.ModeSymlink != 0:
			it.typ = tar.TypeSymlink
			if it.link, err = os.Readlink(p); err != nil {
				return err
			}
		default:
			notes = append(notes, fmt.Sprintf("dropped %s: %s is not a file, directory or link", rel, fileKind(fi.Mode())))
			return nil
		}
		items = append(items, it)
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("read tree %s: %w", dir, err)
	}
	return items, notes, nil
}

func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	}
	return "a special file"
}

// cleanPackItems drops and rewrites what an instance would refuse, and
// sorts the rest by name.
func cleanPackItems(in []packItem, release string) ([]packItem, []string) {
	var notes []string
	dropped := map[string]bool{}
	var out []packItem
	for _, it := range in {
		if parent := path.Dir(it.rel); it.rel != "" && (dropped[parent] || dropped[topOf(it.rel)]) {
			dropped[it.rel] = true
			continue
		}
		if it.typ == tar.TypeSymlink && (it.rel == "build" || it.rel == "source") {
			notes = append(notes, fmt.Sprintf("dropped %s -> %s: the kernel build's %s link points at the build machine", it.rel, it.link, it.rel))
			dropped[it.rel] = true
			continue
		}
		if it.mode&0o6000 != 0 {
			notes = append(notes, fmt.Sprintf("cleared the setuid/setgid bit of %s", it.rel))
		}
		switch it.typ {
		case tar.TypeDir:
			it.mode = 0o755
		case tar.TypeSymlink:
			it.mode = 0o777
			link, err := treeLink(it.rel, it.link, release)
			if err != nil {
				notes = append(notes, fmt.Sprintf("dropped %s -> %s: %v", it.rel, it.link, err))
				dropped[it.rel] = true
				continue
			}
			if link != it.link {
				notes = append(notes, fmt.Sprintf("rewrote %s -> %s as the relative %s", it.rel, it.link, link))
			}
			it.link = link
		default:
			if it.mode&0o111 != 0 {
				it.mode = 0o755
			} else {
				it.mode = 0o644
			}
		}
		out = append(out, it)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].rel < out[j].rel })
	return out, notes
}

func topOf(rel string) string {
	top, _, _ := strings.Cut(rel, "/")
	return top
}

// treeLink returns a link target that stays inside the tree, relative to
// the link's directory: absolute targets into lib/modules/<release>
// itself are made relative; anything leaving the tree is an error.
func treeLink(rel, target, release string) (string, error) {
	if target == "" {
		return "", errors.New("empty target")
	}
	dir := path.Dir(rel)
	if strings.HasPrefix(target, "/") {
		// "/lib/modules/<release>/x" from inside the tree: the tree's
		// own absolute form, kept as a relative link.
		comps := strings.Split(strings.Trim(path.Clean(target), "/"), "/")
		if i := releaseIndex(comps, release); i >= 0 {
			inTree := path.Join(comps[i+1:]...)
			up := ""
			if dir != "." {
				up = strings.Repeat("../", strings.Count(dir, "/")+1)
			}
			if inTree == "" {
				inTree = "."
			}
			t := path.Clean(up + inTree)
			return t, loopCheck(dir, t)
		}
		return "", errors.New("absolute link out of the tree")
	}
	if p := path.Join(dir, target); p == ".." || strings.HasPrefix(p, "../") {
		return "", errors.New("link leaves the tree")
	}
	return target, loopCheck(dir, target)
}

// loopCheck refuses a link in dir whose target is dir itself or one of
// its parents: depmod follows links to directories and would walk such a
// tree without end. (A loop through several links is stopped by
// runDepmod's bound.)
func loopCheck(dir, target string) error {
	p := path.Join(dir, target)
	if p == "." || p == dir || strings.HasPrefix(dir+"/", p+"/") {
		return errors.New("link to a directory that holds it (depmod would follow it without end)")
	}
	return nil
}

// releaseIndex finds "lib/modules/<release>" (or usr/lib/...) at the start
// of an absolute link target's components and returns the index of
// <release>; -1 if the target is elsewhere.
func releaseIndex(comps []string, release string) int {
	i := 0
	if len(comps) > 0 && comps[0] == "usr" {
		i = 1
	}
	if len(comps) > i+2 && comps[i] == "lib" && comps[i+1] == "modules" && comps[i+2] == release {
		return i + 2
	}
	return -1
}

// writeBundle writes the sorted items as a compressed tar stream.
func writePackedBundle(w io.Writer, format Format, release string, items []packItem, mtime time.Time) (int, error) {
	if mtime.IsZero() {
		mtime = time.Unix(0, 0)
	}
	mtime = mtime.UTC().Truncate(time.Second)
	zw, err := compressor(w, format)
	if err != nil {
		return 0, err
	}
	tw := tar.NewWriter(zw)
	files := 0
	base := "lib/modules/" + release
	for _, it := range items {
		name := base + "/" + it.rel
		if it.rel == "" {
			name = base + "/"
		} else if it.typ == tar.TypeDir {
			name += "/"
		}
		h := &tar.Header{Typeflag: it.typ, Name: name, Linkname: it.link, Mode: it.mode, ModTime: mtime, Format: formatFor(name, it.link)}
		if it.typ == tar.TypeReg {
			h.Size = it.size
		}
		if err := tw.WriteHeader(h); err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}
		if it.typ != tar.TypeReg {
			continue
		}
		r, err := it.open()
		if err != nil {
			return 0, err
		}
		n, err := io.Copy(tw, r)
		r.Close()
		if err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}
		if n != it.size {
			return 0, fmt.Errorf("%s: changed while packing (%d bytes, expected %d)", name, n, it.size)
		}
		files++
	}
	if err := tw.Close(); err != nil {
		return 0, err
	}
	return files, zw.Close()
}

// formatFor picks USTAR when the names fit and PAX otherwise: both are
// deterministic, and USTAR keeps the archive readable by any tar.
func formatFor(name, link string) tar.Format {
	if len(name) <= 100 && len(link) <= 100 {
		return tar.FormatUSTAR
	}
	return tar.FormatPAX
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// compressor returns a deterministic encoder for format whose window the
// installer's decoder accepts (maxWindow).
func compressor(w io.Writer, format Format) (io.WriteCloser, error) {
	switch format {
	case FormatTar:
		return nopWriteCloser{w}, nil
	case FormatTarGz:
		return gzip.NewWriterLevel(w, gzip.BestCompression)
	case FormatTarXz:
		return xz.WriterConfig{DictCap: maxWindow}.NewWriter(w)
	case FormatTarZst:
		// One goroutine and a fixed window: the output does not depend on
		// the machine that packs.
		return zstd.NewWriter(w, zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(maxWindow),
			zstd.WithEncoderLevel(zstd.SpeedBetterCompression))
	}
	return nil, fmt.Errorf("unknown bundle format %q", format)
}
