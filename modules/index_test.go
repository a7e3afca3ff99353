package modules

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/flint-dev/flint/internal/testenv"
)

// packDepmod stands in for depmod at pack time: a modules.dep listing
// every .ko of the tree, and two more index files.
func packDepmod(_ context.Context, base, release string) error {
	tree := filepath.Join(base, "lib", "modules", release)
	var dep strings.Builder
	err := filepath.WalkDir(tree, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && strings.HasSuffix(p, ".ko") {
			r, _ := filepath.Rel(tree, p)
			dep.WriteString(r + ":\n")
		}
		return err
	})
	if err != nil {
		return err
	}
	for name, body := range map[string]string{"modules.dep": dep.String(), "modules.alias": "# packed\n", "modules.weakdep": "# packed\n"} {
		if err := os.WriteFile(filepath.Join(tree, name), []byte(body), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// depmodCalls counts the runs of an installer's depmod, which writes
// fakeDepmod's modules.dep.
type depmodCalls int

func (c *depmodCalls) run(ctx context.Context, base, release string) error {
	*c++
	return fakeDepmod(ctx, base, release)
}

// bundleEnts reads a bundle back into entries, to repack it by hand.
func bundleEnts(t testing.TB, p string) []ent {
	t.Helper()
	var out []ent
	eachEntry(t, p, func(h *tar.Header, r io.Reader) {
		body, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ent{name: h.Name, typ: h.Typeflag, mode: h.Mode, body: string(body), link: h.Linkname})
	})
	return out
}

// indexEntries counts a bundle's index files and stamp.
func indexEntries(t testing.TB, p string) int {
	n := 0
	for _, e := range bundleEnts(t, p) {
		if b := filepath.Base(e.name); b == IndexStampName || isDepmodOutput(b) {
			n++
		}
	}
	return n
}

// edit applies f to the entry named lib/modules/<rel>/<name>, or appends
// the entry f returns for a missing one; f returning nil removes it.
func edit(ents []ent, name string, f func(e *ent) *ent) []ent {
	return editIn(ents, rel, name, f)
}

func editIn(ents []ent, release, name string, f func(e *ent) *ent) []ent {
	full := "lib/modules/" + release + "/" + name
	var out []ent
	found := false
	for _, e := range ents {
		if e.name == full {
			found = true
			if n := f(&e); n != nil {
				out = append(out, *n)
			}
			continue
		}
		out = append(out, e)
	}
	if !found {
		if n := f(&ent{name: full}); n != nil {
			out = append(out, *n)
		}
	}
	return out
}

// restamp writes the stamp a packer would write for ents, computed here
// independently of the packing code: what a forger can do.
func restampEnts(t testing.TB, ents []ent) []ent {
	t.Helper()
	type file struct {
		Path   string `json:"path"`
		Size   int64  `json:"size,omitempty"`
		CRC32C string `json:"crc32c,omitempty"`
		Link   string `json:"link,omitempty"`
	}
	st := struct {
		Version int    `json:"version"`
		Release string `json:"release"`
		Files   []file `json:"files"`
		Index   []file `json:"index"`
	}{Version: 1, Release: rel}
	prefix := "lib/modules/" + rel + "/"
	for _, e := range ents {
		p := strings.TrimPrefix(e.name, prefix)
		switch {
		case p == IndexStampName || e.typ == tar.TypeDir:
		case e.typ == tar.TypeSymlink:
			st.Files = append(st.Files, file{Path: p, Link: e.link})
		case strings.HasPrefix(p, "modules.") && p != "modules.order" && p != "modules.builtin" && p != "modules.builtin.modinfo":
			st.Index = append(st.Index, file{Path: p, Size: int64(len(e.body)), CRC32C: fmt.Sprintf("%08x", crc32.Checksum([]byte(e.body), crc32.MakeTable(crc32.Castagnoli)))})
		default:
			st.Files = append(st.Files, file{Path: p, Size: int64(len(e.body)), CRC32C: fmt.Sprintf("%08x", crc32.Checksum([]byte(e.body), crc32.MakeTable(crc32.Castagnoli)))})
		}
	}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	return edit(ents, IndexStampName, func(e *ent) *ent { e.body = string(b); return e })
}

// setDepmodConfig points the installer's view of depmod.d at a directory
// holding conf (none when empty) for the test's duration.
func setDepmodConfig(t *testing.T, conf string) {
	t.Helper()
	dir := t.TempDir()
	if conf != "" {
		if err := os.WriteFile(filepath.Join(dir, "local.conf"), []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	saved := depmodConfigDirs
	depmodConfigDirs = []string{dir}
	t.Cleanup(func() { depmodConfigDirs = saved })
}

// TestAShippedIndexIsUsedOnlyWhenItAgreesWithTheTree packs a tree with its
// index, then repacks it by hand the ways a bundle goes wrong, and
// installs each: the index is kept (no depmod) only for the bundle as
// packed; every other one gets depmod's index, none of the shipped index
// files is left behind, and the record says why.
func TestAShippedIndexIsUsedOnlyWhenItAgreesWithTheTree(t *testing.T) {
	dir := t.TempDir()
	packed, err := Pack(PackOptions{Source: makeTree(t, dir), Out: filepath.Join(dir, "packed.tar"), Format: FormatTar, Depmod: packDepmod})
	if err != nil {
		t.Fatal(err)
	}
	if packed.Index != "depmod" {
		t.Fatalf("pack result %+v", packed)
	}
	ents := bundleEnts(t, packed.Path)
	modulesDep := func(ents []ent) string {
		for _, e := range ents {
			if e.name == "lib/modules/"+rel+"/modules.dep" {
				return e.body
			}
		}
		t.Fatal("the packed bundle has no modules.dep")
		return ""
	}(ents)
	if !strings.Contains(modulesDep, "kernel/fs/c.ko:") {
		t.Fatalf("the packed modules.dep: %q", modulesDep)
	}
	set := func(name, body string) func([]ent) []ent {
		return func(es []ent) []ent {
			return edit(es, name, func(e *ent) *ent { e.body = body; return e })
		}
	}
	drop := func(name string) func([]ent) []ent {
		return func(es []ent) []ent { return edit(es, name, func(*ent) *ent { return nil }) }
	}
	restamp := func(es []ent) []ent { return restampEnts(t, es) }
	then := func(fs ...func([]ent) []ent) func([]ent) []ent {
		return func(es []ent) []ent {
			for _, f := range fs {
				es = f(es)
			}
			return es
		}
	}
	for _, tc := range []struct {
		name   string
		change func([]ent) []ent
		config string
		why    string // "" when the shipped index is kept
	}{
		{name: "the bundle as packed keeps its index", change: then()},
		{name: "a forged stamp that agrees keeps the index", change: restamp},
		{name: "a search line in depmod.d keeps the index", change: then(), config: "# comment\nsearch updates built-in\n"},
		{name: "a module changed after packing", change: set("kernel/drivers/a.ko", "module a, rebuilt"), why: "kernel/drivers/a.ko differs from the file it was built from"},
		{name: "an edited modules.dep", change: set("modules.dep", "kernel/drivers/a.ko:\n"), why: "modules.dep is not the index file the stamp describes"},
		{name: "a module added", change: set("kernel/drivers/new.ko", "module new"), why: "kernel/drivers/new.ko is not among the files it was built from"},
		{name: "a module removed", change: drop("kernel/fs/c.ko"), why: "kernel/fs/c.ko, which it was built from, is not in the bundle"},
		{name: "an index file removed", change: drop("modules.alias"), why: "modules.alias is not the index file"},
		{name: "a stamp of another release", change: func(es []ent) []ent {
			return edit(es, IndexStampName, func(e *ent) *ent {
				e.body = strings.Replace(e.body, `"release":"`+rel+`"`, `"release":"5.10.0-9-amd64"`, 1)
				return e
			})
		}, why: `built for release "5.10.0-9-amd64"`},
		{name: "a stamp that is not JSON", change: set(IndexStampName, "kernel/drivers/a.ko 8 0\n"), why: "its stamp is not valid JSON"},
		{name: "a stamp of an unknown version", change: set(IndexStampName, `{"version": 2}`), why: "version 2"},
		{name: "a stamp without modules.dep", change: then(drop("modules.dep"), restamp), why: "it has no modules.dep"},
		{name: "a stamp listing a module as index", change: func(es []ent) []ent {
			return edit(restamp(es), IndexStampName, func(e *ent) *ent {
				e.body = strings.Replace(e.body, `"index":[`, `"index":[{"path":"kernel/drivers/a.ko","size":8,"crc32c":"00000000"},`, 1)
				return e
			})
		}, why: `lists "kernel/drivers/a.ko" as an index file`},
		{name: "a forged index naming a file outside the tree", change: then(set("modules.dep", "/tmp/evil.ko:\nkernel/drivers/a.ko:\n"), restamp), why: `modules.dep names "/tmp/evil.ko"`},
		{name: "a forged index naming a missing module", change: then(set("modules.dep", "kernel/drivers/a.ko: kernel/gone.ko\n"), restamp), why: `modules.dep names "kernel/gone.ko"`},
		{name: "a forged index naming a link", change: then(set("modules.dep", "extra:\n"), restamp), why: `modules.dep names "extra"`},
		{name: "an override in depmod.d", change: then(), config: "override a * extra\n", why: "depmod configuration"},
		{name: "a search line and two modules of one name", change: then(set("kernel/other/a.ko", "another a"), restamp),
			config: "search updates built-in\n", why: "two modules named a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			setDepmodConfig(t, tc.config)
			top := t.TempDir()
			b := writeBundle(t, top, "b.tar.zst", compress(t, FormatTarZst, makeTar(t, tc.change(append([]ent(nil), ents...)))))
			var calls depmodCalls
			in := &Installer{Root: filepath.Join(top, "root"), Release: rel, Depmod: calls.run, NoSync: true}
			res, err := in.Install(context.Background(), b)
			if err != nil {
				t.Fatal(err)
			}
			tree := filepath.Join(in.Root, "lib", "modules", rel)
			dep := string(readFile(t, filepath.Join(tree, "modules.dep")))
			rec, err := ReadRecord(filepath.Dir(tree), rel)
			if err != nil || rec.Index != res.Record.Index || rec.IndexNote != res.Record.IndexNote {
				t.Fatalf("record %+v, %v; result %+v", rec, err, res.Record)
			}
			if _, err := os.Lstat(filepath.Join(tree, IndexStampName)); err == nil {
				t.Error("the stamp was installed")
			}
			if tc.why == "" {
				if calls != 0 || rec.Index != IndexBundle || rec.IndexNote != "" || dep != modulesDep {
					t.Fatalf("the shipped index was not kept: %d depmod runs, record %+v, modules.dep %q", calls, rec, dep)
				}
				return
			}
			if calls != 1 || rec.Index != IndexDepmod || dep == modulesDep {
				t.Fatalf("the shipped index was kept: %d depmod runs, record %+v, modules.dep %q", calls, rec, dep)
			}
			if !strings.Contains(rec.IndexNote, tc.why) || strings.Contains(rec.IndexNote, "\n") {
				t.Fatalf("the record says %q, want one line with %q", rec.IndexNote, tc.why)
			}
			for _, stale := range []string{"modules.alias", "modules.weakdep"} {
				if _, err := os.Lstat(filepath.Join(tree, stale)); err == nil {
					t.Errorf("the shipped %s outlived the rebuild", stale)
				}
			}
		})
	}
}

// TestAnIndexThatDisagreesWithoutDepmodFailsTheInstall: an index that
// cannot be rebuilt is never installed in place of depmod's.
func TestAnIndexThatDisagreesWithoutDepmodFailsTheInstall(t *testing.T) {
	setDepmodConfig(t, "")
	dir := t.TempDir()
	packed, err := Pack(PackOptions{Source: makeTree(t, dir), Out: filepath.Join(dir, "packed.tar"), Format: FormatTar, Depmod: packDepmod})
	if err != nil {
		t.Fatal(err)
	}
	noDepmod := func(context.Context, string, string) error { return ErrNoDepmod }
	in := &Installer{Root: filepath.Join(dir, "root"), Release: rel, Depmod: noDepmod}
	if _, err := in.Install(context.Background(), Bundle{URL: "file://" + packed.Path, SHA256: packed.SHA256}); err != nil {
		t.Fatalf("an agreeing index needs no depmod: %v", err)
	}
	ents := edit(bundleEnts(t, packed.Path), "kernel/drivers/b.ko", func(e *ent) *ent { e.body = "module b, rebuilt"; return e })
	b := writeBundle(t, dir, "stale.tar", makeTar(t, ents))
	before := snapshot(t, in.Root)
	_, err = in.Install(context.Background(), b)
	if !errors.Is(err, ErrNoDepmod) || !strings.Contains(err.Error(), "kernel/drivers/b.ko differs") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("want one line saying depmod is missing and why the index was not used, got %v", err)
	}
	if d := diffSnapshots(before, snapshot(t, in.Root)); d != "" {
		t.Fatalf("the failed install changed the root:\n%s", d)
	}
}

// TestPackReplacesAnIndexInTheTreeAndTheReservedStampName: a tree from
// "make modules_install" carries depmod's files already; the bundle gets
// the index built from what is packed, and a file posing as the stamp is
// dropped, both said.
func TestPackReplacesAnIndexInTheTreeAndTheReservedStampName(t *testing.T) {
	dir := t.TempDir()
	tree := makeTree(t, dir)
	os.WriteFile(filepath.Join(tree, "modules.dep"), []byte("stale:\n"), 0o644)
	os.WriteFile(filepath.Join(tree, "modules.symbols.bin"), []byte("stale"), 0o644)
	os.WriteFile(filepath.Join(tree, IndexStampName), []byte("{}"), 0o644)
	res, err := Pack(PackOptions{Source: tree, Out: filepath.Join(dir, "b.tar"), Format: FormatTar, Depmod: packDepmod})
	if err != nil {
		t.Fatal(err)
	}
	notes := strings.Join(res.Notes, "\n")
	for _, want := range []string{"replaced modules.dep, modules.symbols.bin with the index built from the packed tree", "dropped .flint-index: the name is reserved"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
	var names []string
	for _, e := range bundleEnts(t, res.Path) {
		names = append(names, strings.TrimPrefix(e.name, "lib/modules/"+rel+"/"))
		if strings.HasSuffix(e.name, "/modules.dep") && strings.Contains(e.body, "stale") {
			t.Error("the tree's stale modules.dep was packed")
		}
		if strings.HasSuffix(e.name, "/"+IndexStampName) && e.body == "{}" {
			t.Error("the tree's stamp was packed")
		}
	}
	if contains(names, "modules.symbols.bin") || !contains(names, "modules.weakdep") || !sort.StringsAreSorted(names) {
		t.Fatalf("bundle entries %q", names)
	}

	plain, err := Pack(PackOptions{Source: tree, Out: filepath.Join(dir, "plain.tar"), Format: FormatTar, NoIndex: true})
	if err != nil || plain.Index != "" {
		t.Fatalf("--no-index: %+v %v", plain, err)
	}
	for _, e := range bundleEnts(t, plain.Path) {
		if strings.HasSuffix(e.name, "/"+IndexStampName) {
			t.Fatal("a bundle packed without index carries a stamp")
		}
	}
}

// TestPackingWithTheRealDepmodIsReproducible: the index kmod's depmod
// builds is part of the bundle, so it must not make two packs differ.
func TestPackingWithTheRealDepmodIsReproducible(t *testing.T) {
	testenv.Tool(t, "depmod")
	dir := t.TempDir()
	tree := makeTree(t, dir)
	a, err := Pack(PackOptions{Source: tree, Out: filepath.Join(dir, "a.tar.zst")})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Pack(PackOptions{Source: tree, Out: filepath.Join(dir, "b.tar.zst")})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(a.Index, "kmod version") || a.SHA256 != b.SHA256 {
		t.Fatalf("two packs: %+v, %+v", a, b)
	}
	// depmod's complaints about the fake modules reach the notes, naming
	// the files as the bundle does.
	if notes := strings.Join(a.Notes, "\n"); !strings.Contains(notes, "depmod: ") || strings.Contains(notes, os.TempDir()) {
		t.Errorf("notes:\n%s", notes)
	}
}

// TestPackedDebianBundleCarriesDepmodsIndex packs Debian's cloud-kernel
// package with kmod's depmod and installs it twice: as packed, the
// shipped index is used and depmod does not run; with its modules.dep
// edited (the stamp left stale), depmod rebuilds it. Both times modules.dep
// is what depmod -b makes of the package.
func TestPackedDebianBundleCarriesDepmodsIndex(t *testing.T) {
	_, deb, want := needRealPackage(t)
	setDepmodConfig(t, "")
	dir := t.TempDir()
	res, err := Pack(PackOptions{Source: deb, Out: filepath.Join(dir, "b.tar.zst")})
	if err != nil {
		t.Fatal(err)
	}
	noRun := func(context.Context, string, string) error {
		t.Error("depmod ran although the bundle carries its index")
		return errors.New("unexpected depmod")
	}
	root := filepath.Join(dir, "root")
	in := &Installer{Root: root, Release: res.Release, Depmod: noRun}
	got, err := in.Install(context.Background(), Bundle{URL: "file://" + res.Path, SHA256: res.SHA256})
	if err != nil {
		t.Fatal(err)
	}
	dep := filepath.Join(root, "lib", "modules", res.Release, "modules.dep")
	if !bytes.Equal(readFile(t, dep), want) || got.Record.Index != IndexBundle {
		t.Fatalf("shipped index: record %+v; modules.dep equal to depmod -b on the package: %v", got.Record, bytes.Equal(readFile(t, dep), want))
	}

	ents := editIn(bundleEnts(t, res.Path), res.Release, "modules.dep", func(e *ent) *ent {
		e.body = strings.SplitAfterN(e.body, "\n", 2)[1] // the first module forgotten
		return e
	})
	stale := writeBundle(t, dir, "stale.tar.zst", compress(t, FormatTarZst, makeTar(t, ents)))
	in.Depmod = nil
	got, err = in.Install(context.Background(), stale)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readFile(t, dep), want) || got.Record.Index != IndexDepmod || !strings.Contains(got.Record.IndexNote, "modules.dep is not the index file") {
		t.Fatalf("stale index: record %+v; modules.dep equal to depmod -b on the package: %v", got.Record, bytes.Equal(readFile(t, dep), want))
	}
}
