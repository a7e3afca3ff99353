package modules

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// A bundle may carry its module index: the files depmod writes
// (modules.dep, modules.alias, their .bin forms, …), built when the bundle
// was packed, and a stamp, IndexStampName, that lists every file and link
// the index was built from (size and CRC-32C) and every index file. An
// install whose extracted tree agrees with the stamp in every file, on a
// machine whose depmod configuration could not change the result, keeps
// the shipped index and skips depmod; otherwise it removes the shipped
// index and runs depmod, as for a bundle without one.
//
// The stamp is a consistency check (a bundle repacked by hand after a
// module changed, an index of another tree), not an authentication: the
// bundle's SHA-256, checked against a pinned or signed digest, covers the
// index and the stamp as it covers the modules.

// IndexStampName is the stamp of a bundle's module index, at the top of
// the release tree in the bundle. It is read by the installer and not
// installed.
const IndexStampName = ".flint-index"

// maxStampSize bounds the stamp read into memory (about 100 bytes a file).
const maxStampSize = 16 << 20

const stampVersion = 1

// depmodOutputs are the files depmod writes at the top of a release tree
// (kmod 30; modules.weakdep since kmod 33).
var depmodOutputs = []string{
	"modules.alias", "modules.alias.bin", "modules.builtin.alias.bin", "modules.builtin.bin",
	"modules.dep", "modules.dep.bin", "modules.devname", "modules.softdep",
	"modules.symbols", "modules.symbols.bin", "modules.weakdep",
}

func isDepmodOutput(rel string) bool {
	for _, n := range depmodOutputs {
		if rel == n {
			return true
		}
	}
	return false
}

// castagnoli is the CRC-32C table, built on first use: building it costs
// about 1.3 million instructions, which every flint process would pay at
// start-up (see third_party/klauspost-compress/README.flint).
var castagnoli = sync.OnceValue(func() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) })

// fileSum identifies a file of a tree: size and CRC-32C of a regular file,
// or the target of a symbolic link.
type fileSum struct {
	Size int64
	CRC  uint32
	Link string
}

// indexStamp is the JSON in IndexStampName.
type indexStamp struct {
	Version int    `json:"version"`
	Release string `json:"release"`
	// Depmod names the depmod that built the index ("kmod version 30").
	Depmod string `json:"depmod,omitempty"`
	// Files are the files and links the index was built from, sorted.
	Files []stampFile `json:"files"`
	// Index are the files depmod wrote, sorted.
	Index []stampFile `json:"index"`
}

type stampFile struct {
	Path   string `json:"path"`
	Size   int64  `json:"size,omitempty"`
	CRC32C string `json:"crc32c,omitempty"`
	Link   string `json:"link,omitempty"`
}

// marshal writes the stamp as JSON with one file a line.
func (st indexStamp) marshal() ([]byte, error) {
	head, err := json.Marshal(struct {
		Version int    `json:"version"`
		Release string `json:"release"`
		Depmod  string `json:"depmod,omitempty"`
	}{st.Version, st.Release, st.Depmod})
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.Write(head[:len(head)-1])
	for _, l := range []struct {
		key   string
		files []stampFile
	}{{"files", st.Files}, {"index", st.Index}} {
		fmt.Fprintf(&b, ",\n%q: [", l.key)
		for i, f := range l.files {
			e, err := json.Marshal(f)
			if err != nil {
				return nil, err
			}
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString("\n  ")
			b.Write(e)
		}
		b.WriteString("\n]")
	}
	b.WriteString("}\n")
	return b.Bytes(), nil
}

func (f stampFile) sum() (fileSum, error) {
	if f.Link != "" {
		return fileSum{Link: f.Link}, nil
	}
	b, err := hex.DecodeString(f.CRC32C)
	if err != nil || len(b) != 4 {
		return fileSum{}, fmt.Errorf("%s: crc32c %q is not 8 hex digits", f.Path, f.CRC32C)
	}
	return fileSum{Size: f.Size, CRC: binary.BigEndian.Uint32(b)}, nil
}

func stampEntry(rel string, s fileSum) stampFile {
	if s.Link != "" {
		return stampFile{Path: rel, Link: s.Link}
	}
	return stampFile{Path: rel, Size: s.Size, CRC32C: fmt.Sprintf("%08x", s.CRC)}
}

// withModuleIndex is the packing side: it builds depmod's index of the
// tree in a scratch copy and returns items with the index files and the
// stamp added (sorted again), what to tell the user, and a cleanup that
// removes the scratch copy once the bundle is written. Index files and a
// stamp already in the tree are replaced; with o.NoIndex, or without
// depmod on this machine, the bundle carries no index and instances run
// depmod.
func withModuleIndex(items []packItem, release string, o PackOptions) ([]packItem, []string, string, func(), error) {
	var notes, replaced []string
	kept := items[:0:0]
	for _, it := range items {
		switch {
		case it.rel == IndexStampName:
			notes = append(notes, fmt.Sprintf("dropped %s: the name is reserved for the module index stamp", it.rel))
		case !o.NoIndex && isDepmodOutput(it.rel) && it.typ != tar.TypeDir:
			replaced = append(replaced, it.rel)
		default:
			kept = append(kept, it)
		}
	}
	if o.NoIndex {
		return kept, notes, "", func() {}, nil
	}
	run, by := o.Depmod, "depmod"
	if run == nil {
		bin, err := lookDepmod()
		if err != nil {
			return kept, append(notes, "no depmod on this machine: the bundle carries no module index (instances run depmod)"), "", func() {}, nil
		}
		by = depmodVersion(bin)
		run = func(ctx context.Context, base, rel string) error {
			// buildIndex leaves an empty configuration directory next to
			// base: the index must not depend on the packing machine's
			// depmod.d.
			said, err := runDepmod(ctx, bin, base, rel, filepath.Join(filepath.Dir(base), "depmod.d"))
			if err == nil {
				notes = append(notes, depmodNotes(said, filepath.Join(base, "lib", "modules", rel))...)
			}
			return err
		}
	}
	if len(replaced) > 0 {
		notes = append(notes, fmt.Sprintf("replaced %s with the index built from the packed tree", strings.Join(replaced, ", ")))
	}
	scratch, err := os.MkdirTemp("", "flint-pack-index-")
	if err != nil {
		return nil, nil, "", nil, fmt.Errorf("build the module index: %w", err)
	}
	cleanup := func() { os.RemoveAll(scratch) }
	out, stamp, err := buildIndex(kept, release, scratch, run)
	if err != nil {
		cleanup()
		return nil, nil, "", nil, fmt.Errorf("build the module index: %w (pack with --no-index to leave it to the instances)", err)
	}
	stamp.Depmod = by
	body, err := stamp.marshal()
	if err != nil {
		cleanup()
		return nil, nil, "", nil, err
	}
	out = append(out, packItem{rel: IndexStampName, typ: tar.TypeReg, mode: 0o644, size: int64(len(body)),
		open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }})
	sort.Slice(out, func(i, j int) bool { return out[i].rel < out[j].rel })
	return out, notes, by, cleanup, nil
}

// buildIndex copies items into scratch/lib/modules/<release>, runs depmod
// there and returns items plus the index files it wrote, and the stamp.
func buildIndex(items []packItem, release, scratch string, run func(ctx context.Context, base, release string) error) ([]packItem, indexStamp, error) {
	base := filepath.Join(scratch, "root")
	tree := filepath.Join(base, "lib", "modules", release)
	st := indexStamp{Version: stampVersion, Release: release}
	if err := os.MkdirAll(filepath.Join(scratch, "depmod.d"), 0o755); err != nil {
		return nil, st, err
	}
	if err := os.MkdirAll(tree, 0o755); err != nil {
		return nil, st, err
	}
	have := map[string]bool{}
	for _, it := range items {
		have[it.rel] = true
		p := filepath.Join(tree, filepath.FromSlash(it.rel))
		switch it.typ {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				return nil, st, err
			}
		case tar.TypeSymlink:
			if err := os.Symlink(it.link, p); err != nil {
				return nil, st, err
			}
			st.Files = append(st.Files, stampEntry(it.rel, fileSum{Link: it.link}))
		default:
			sum, err := copyItem(it, p)
			if err != nil {
				return nil, st, err
			}
			st.Files = append(st.Files, stampEntry(it.rel, sum))
		}
	}
	if err := run(context.Background(), base, release); err != nil {
		return nil, st, err
	}
	ents, err := os.ReadDir(tree)
	if err != nil {
		return nil, st, err
	}
	out := items
	for _, e := range ents {
		name := e.Name()
		if have[name] || !e.Type().IsRegular() {
			continue
		}
		p := filepath.Join(tree, name)
		sum, err := sumFile(p)
		if err != nil {
			return nil, st, err
		}
		st.Index = append(st.Index, stampEntry(name, sum))
		out = append(out, packItem{rel: name, typ: tar.TypeReg, mode: 0o644, size: sum.Size,
			open: func() (io.ReadCloser, error) { return os.Open(p) }})
	}
	if !hasStampFile(st.Index, "modules.dep") {
		return nil, st, errors.New("depmod wrote no modules.dep")
	}
	sort.Slice(st.Files, func(i, j int) bool { return st.Files[i].Path < st.Files[j].Path })
	sort.Slice(st.Index, func(i, j int) bool { return st.Index[i].Path < st.Index[j].Path })
	return out, st, nil
}

// depmodNotes turns what depmod said about the scratch tree into at most
// ten notes naming files as the bundle does.
func depmodNotes(said []string, tree string) []string {
	var notes []string
	for i, l := range said {
		if i == 10 {
			notes = append(notes, fmt.Sprintf("depmod: … and %d more lines", len(said)-i))
			break
		}
		l = strings.ReplaceAll(l, tree+"/", "")
		l = strings.ReplaceAll(l, tree, "the tree")
		notes = append(notes, "depmod: "+strings.TrimPrefix(l, "depmod: "))
	}
	return notes
}

func hasStampFile(list []stampFile, p string) bool {
	for _, f := range list {
		if f.Path == p {
			return true
		}
	}
	return false
}

func copyItem(it packItem, dst string) (fileSum, error) {
	r, err := it.open()
	if err != nil {
		return fileSum{}, err
	}
	defer r.Close()
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fileSum{}, err
	}
	var sum fileSum
	sum.Size, err = copyWithCRC(f, r, make([]byte, 256<<10), &sum.CRC)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && sum.Size != it.size {
		err = fmt.Errorf("%s changed while packing (%d bytes, expected %d)", it.rel, sum.Size, it.size)
	}
	return sum, err
}

func sumFile(p string) (fileSum, error) {
	f, err := os.Open(p)
	if err != nil {
		return fileSum{}, err
	}
	defer f.Close()
	var sum fileSum
	sum.Size, err = copyWithCRC(io.Discard, f, make([]byte, 64<<10), &sum.CRC)
	return sum, err
}

// depmodConfigDirs are where kmod's depmod reads its configuration; a
// variable for the tests.
var depmodConfigDirs = []string{"/etc/depmod.d", "/run/depmod.d", "/usr/local/lib/depmod.d", "/usr/lib/depmod.d", "/lib/depmod.d"}

// checkShippedIndex is the installing side: nil when the bundle's index,
// described by x.stamp, may stand for depmod's on the tree extracted into
// tree; otherwise why not, in words.
func checkShippedIndex(tree, release string, x extracted) (indexStamp, error) {
	var st indexStamp
	if err := json.Unmarshal(x.stamp, &st); err != nil {
		return st, fmt.Errorf("its stamp is not valid JSON: %v", err)
	}
	if st.Version != stampVersion {
		return st, fmt.Errorf("its stamp has version %d, this flint reads %d", st.Version, stampVersion)
	}
	if st.Release != release {
		return st, fmt.Errorf("it was built for release %q", st.Release)
	}
	want := make(map[string]fileSum, len(st.Files))
	for _, f := range st.Files {
		s, err := f.sum()
		if err != nil {
			return st, fmt.Errorf("its stamp is damaged: %v", err)
		}
		want[f.Path] = s
	}
	index := map[string]bool{}
	for _, f := range st.Index {
		s, err := f.sum()
		if err != nil {
			return st, fmt.Errorf("its stamp is damaged: %v", err)
		}
		if !isDepmodOutput(f.Path) || f.Link != "" {
			return st, fmt.Errorf("its stamp lists %q as an index file", f.Path)
		}
		if got, ok := x.sums[f.Path]; !ok || got != s {
			return st, fmt.Errorf("%s is not the index file the stamp describes", f.Path)
		}
		index[f.Path] = true
	}
	if !index["modules.dep"] {
		return st, errors.New("it has no modules.dep")
	}
	for p, got := range x.sums {
		if index[p] {
			continue
		}
		w, ok := want[p]
		switch {
		case !ok:
			return st, fmt.Errorf("%s is not among the files it was built from", p)
		case w != got:
			return st, fmt.Errorf("%s differs from the file it was built from", p)
		}
	}
	if len(x.sums) != len(want)+len(index) {
		for p := range want {
			if _, ok := x.sums[p]; !ok {
				return st, fmt.Errorf("%s, which it was built from, is not in the bundle", p)
			}
		}
	}
	if err := checkDepPaths(filepath.Join(tree, "modules.dep"), want); err != nil {
		return st, err
	}
	if err := depmodConfigApplies(want); err != nil {
		return st, err
	}
	return st, nil
}

// checkDepPaths makes sure modules.dep names only modules of the tree,
// by relative paths.
func checkDepPaths(p string, files map[string]fileSum) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		mod, deps, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			return fmt.Errorf("modules.dep has a line without a colon: %q", sc.Text())
		}
		for _, m := range append([]string{mod}, strings.Fields(deps)...) {
			if s, ok := files[m]; !ok || s.Link != "" || path.Clean(m) != m {
				return fmt.Errorf("modules.dep names %q, not a module file of the tree", m)
			}
		}
	}
	return sc.Err()
}

// depmodConfigApplies reports a depmod configuration on this machine that
// could make depmod's index of the tree differ from one built with none:
// any directive but "search", which only ranks modules of the same name
// (and is reported when the tree has such modules).
func depmodConfigApplies(files map[string]fileSum) error {
	var search string
	for _, dir := range depmodConfigDirs {
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if !strings.HasSuffix(e.Name(), ".conf") {
				continue
			}
			p := filepath.Join(dir, e.Name())
			b, err := os.ReadFile(p)
			if err != nil {
				return fmt.Errorf("the depmod configuration %s cannot be read: %v", p, err)
			}
			for _, line := range strings.Split(string(b), "\n") {
				f := strings.Fields(line)
				if len(f) == 0 || strings.HasPrefix(f[0], "#") {
					continue
				}
				if f[0] != "search" {
					return fmt.Errorf("this machine's depmod configuration (%s: %s) applies to it", p, f[0])
				}
				search = p
			}
		}
	}
	if search == "" {
		return nil
	}
	seen := map[string]string{}
	for p, s := range files {
		if s.Link != "" || !isModuleFile(p) {
			continue
		}
		n := ModuleName(p)
		if other, dup := seen[n]; dup {
			return fmt.Errorf("it has two modules named %s (%s, %s) and this machine's depmod configuration (%s) ranks them", n, other, p, search)
		}
		seen[n] = p
	}
	return nil
}

func isModuleFile(p string) bool {
	for _, ext := range []string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"} {
		if strings.HasSuffix(p, ext) {
			return true
		}
	}
	return false
}
