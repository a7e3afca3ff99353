package modules

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/files"
	_ "github.com/goreleaser/nfpm/v2/rpm" // registers the rpm packager
	"github.com/klauspost/compress/zstd"

	"github.com/flint-dev/flint/internal/testenv"
)

// nfpmRPM packages a release tree as /lib/modules/<its name> in an rpm
// whose payload is compressed with compression (gzip, xz, zstd).
func nfpmRPM(t testing.TB, tree, compression, out string) {
	t.Helper()
	info := nfpm.WithDefaults(&nfpm.Info{
		Name: "kernel-modules-test", Arch: "amd64", Platform: "linux", Version: "1", Release: "1",
		Maintainer: "t <t@example.org>", Description: "test", License: "GPL-2.0-only", MTime: time.Unix(1700000000, 0),
		Overridables: nfpm.Overridables{
			Contents: files.Contents{{Type: files.TypeTree, Source: tree, Destination: "/lib/modules/" + filepath.Base(tree)}},
			RPM:      nfpm.RPM{Compression: compression},
		},
	})
	if err := nfpm.PrepareForPackager(info, "rpm"); err != nil {
		t.Fatal(err)
	}
	p, err := nfpm.Get("rpm")
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Package(info, f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// rpmQuery runs rpm -qp with a query format.
func rpmQuery(t testing.TB, pkg, format string) string {
	t.Helper()
	out, err := exec.Command(testenv.Tool(t, "rpm"), "-qp", "--nosignature", "--qf", format, pkg).Output()
	if err != nil {
		t.Fatalf("rpm -qp %s: %v", pkg, err)
	}
	return string(out)
}

// rpmModuleFiles is rpm -qlp's listing of lib/modules/<release> and
// below, as names relative to the release directory, less those dropped.
func rpmModuleFiles(t testing.TB, pkg, release string, dropped ...string) []string {
	t.Helper()
	out, err := exec.Command(testenv.Tool(t, "rpm"), "-qlp", "--nosignature", pkg).Output()
	if err != nil {
		t.Fatalf("rpm -qlp %s: %v", pkg, err)
	}
	base := "/lib/modules/" + release
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l != base && !strings.HasPrefix(l, base+"/") {
			continue
		}
		if r := strings.TrimPrefix(strings.TrimPrefix(l, base), "/"); !contains(dropped, r) {
			names = append(names, r)
		}
	}
	sort.Strings(names)
	return names
}

// bundleFiles lists a bundle's entries relative to the release directory.
func bundleFiles(t *testing.T, p, release string) []string {
	t.Helper()
	var names []string
	for _, n := range tarNames(t, p) {
		name, _, _ := strings.Cut(n, " ")
		names = append(names, strings.TrimSuffix(strings.TrimPrefix(name, "lib/modules/"+release+"/"), "/"))
	}
	sort.Strings(names)
	return names
}

// checkPayloadLikeRpm2cpio compares the payload the Go reader
// decompresses with rpm2cpio's, byte for byte. rpm2cpio copies the whole
// payload, then exits 1 when the archive size in the header differs from
// what it copied: nfpm's rpms record the files' total there, not the
// archive's, so only exact packages must make it succeed.
func checkPayloadLikeRpm2cpio(t testing.TB, pkg string, exact bool) {
	t.Helper()
	want, err := exec.Command(testenv.Tool(t, "rpm2cpio"), pkg).Output()
	if err != nil && (exact || len(want) == 0) {
		t.Fatalf("rpm2cpio %s: %v %s", pkg, err, stderrOf(err))
	}
	f, err := os.Open(pkg)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := openRPM(f)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	got, err := io.ReadAll(p.cpio)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.finish(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("the payload read in Go (%d bytes) differs from rpm2cpio's (%d bytes)", len(got), len(want))
	}
}

func TestPackReadsAnRPMLikeItsTree(t *testing.T) {
	dir := t.TempDir()
	tree := makeTree(t, dir)
	fromTree, err := Pack(PackOptions{NoIndex: true, Source: tree, Out: filepath.Join(dir, "tree.tar.zst")})
	if err != nil {
		t.Fatal(err)
	}
	for _, comp := range []string{"gzip", "xz", "zstd"} {
		t.Run("payload compressed with "+comp, func(t *testing.T) {
			pkg := filepath.Join(dir, comp+".rpm")
			nfpmRPM(t, tree, comp, pkg)
			if got := rpmQuery(t, pkg, "%{PAYLOADCOMPRESSOR} %{ARCH}"); got != comp+" x86_64" {
				t.Fatalf("rpm says the package is %q", got)
			}
			a, err := Pack(PackOptions{NoIndex: true, Source: pkg, Out: filepath.Join(dir, comp+"-a.tar.zst")})
			if err != nil {
				t.Fatal(err)
			}
			b, err := Pack(PackOptions{NoIndex: true, Source: pkg, Release: rel, Out: filepath.Join(dir, comp+"-b.tar.zst")})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(readFile(t, a.Path), readFile(t, b.Path)) {
				t.Fatal("two packs of one rpm differ")
			}
			if a.SHA256 != fromTree.SHA256 || a.Release != rel || a.Files != fromTree.Files {
				t.Fatalf("rpm %+v and tree %+v differ", a, fromTree)
			}
			if a.Arch != "amd64" || len(a.Notes) != 0 {
				t.Fatalf("arch %q (want the package's x86_64 as amd64), notes %q", a.Arch, a.Notes)
			}
			if got, want := bundleFiles(t, a.Path, rel), rpmModuleFiles(t, pkg, rel); strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("bundle %q, rpm -qlp %q", got, want)
			}
			checkPayloadLikeRpm2cpio(t, pkg, false)
			if _, err := Pack(PackOptions{NoIndex: true, Source: pkg, Release: "6.1.0-1-other", Out: filepath.Join(dir, "x")}); err == nil ||
				!strings.Contains(err.Error(), "no lib/modules/6.1.0-1-other in the package (found "+rel+")") {
				t.Fatalf("a release the package lacks: %v", err)
			}
		})
	}
}

// rpmbuildRPM makes a binary rpm with rpmbuild from a copy of root and a
// %files list, its payload written with the I/O type payload (w9.gzdio,
// w19.zstdio, …).
func rpmbuildRPM(t testing.TB, root string, fileList []string, payload string) string {
	t.Helper()
	rpmbuild := testenv.Tool(t, "rpmbuild")
	top := t.TempDir()
	spec := filepath.Join(top, "test.spec")
	body := "Name: kernel-modules-test\nVersion: 1\nRelease: 1\nSummary: test\nLicense: GPL-2.0-only\n" +
		"%description\ntest\n%install\ncp -a " + root + "/. %{buildroot}/\n%files\n" + strings.Join(fileList, "\n") + "\n"
	if err := os.WriteFile(spec, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(rpmbuild, "-bb", "--quiet",
		"--define", "_topdir "+top, "--define", "_binary_payload "+payload,
		"--define", "__os_install_post %{nil}", "--define", "debug_package %{nil}",
		"--define", "_build_id_links none", "--define", "_buildhost test", spec)
	cmd.Env = append(os.Environ(), "HOME="+top, "SOURCE_DATE_EPOCH=1700000000")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("rpmbuild: %v: %s", err, out)
	}
	rpms, _ := filepath.Glob(filepath.Join(top, "RPMS", "*", "*.rpm"))
	if len(rpms) != 1 {
		t.Fatalf("rpmbuild made %q", rpms)
	}
	return rpms[0]
}

func stderrOf(err error) []byte {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.Stderr
	}
	return nil
}

// TestPackRPMFromRpmbuildCleansAsTheTreeDoes packs an rpm that rpm's own
// tools wrote, with what a kernel build leaves and what an instance
// refuses (build and source links, links out, a FIFO, a device node, a
// setuid file, hard links), and its tree: the same bundle, the same
// notes, plus the device node only rpmbuild can write unprivileged.
func TestPackRPMFromRpmbuildCleansAsTheTreeDoes(t *testing.T) {
	testenv.Tool(t, "rpmbuild")
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	tree := makeTree(t, root)
	plantHostileEntries(t, tree)
	// A hard-link set: two names in the tree, and one outside it that
	// sorts last, so the data travels with a name pack does not keep.
	os.WriteFile(filepath.Join(tree, "kernel/h1.ko.xz"), []byte("hard-linked module"), 0o644)
	os.MkdirAll(filepath.Join(root, "usr/share/test"), 0o755)
	for _, l := range []string{filepath.Join(tree, "kernel/h2.ko.xz"), filepath.Join(root, "usr/share/test/h3")} {
		if err := os.Link(filepath.Join(tree, "kernel/h1.ko.xz"), l); err != nil {
			t.Fatal(err)
		}
	}
	fromTree, err := Pack(PackOptions{NoIndex: true, Source: tree, Out: filepath.Join(dir, "tree.tar.zst")})
	if err != nil {
		t.Fatal(err)
	}
	device := "%dev(c,1,3) /lib/modules/" + rel + "/kernel/null"
	fileList := []string{"/lib/modules/" + rel, "/usr/share/test/h3", device}
	dropped := []string{"build", "source", "kernel/passwd", "kernel/up", "kernel/other-tree", "kernel/fifo", "kernel/null"}
	for _, payload := range []string{"w9.gzdio", "w6.xzdio", "w19.zstdio", "w9.bzdio"} {
		t.Run(payload, func(t *testing.T) {
			pkg := rpmbuildRPM(t, root, fileList, payload)
			comp := map[string]string{"w9.gzdio": "gzip", "w6.xzdio": "xz", "w19.zstdio": "zstd", "w9.bzdio": "bzip2"}[payload]
			if got := rpmQuery(t, pkg, "%{PAYLOADCOMPRESSOR}"); got != comp {
				t.Fatalf("rpm says the payload is %q, want %q", got, comp)
			}
			res, err := Pack(PackOptions{NoIndex: true, Source: pkg, Out: filepath.Join(dir, payload+".tar.zst")})
			if err != nil {
				t.Fatal(err)
			}
			if res.SHA256 != fromTree.SHA256 {
				t.Errorf("rpm and tree bundles differ:\nrpm  %q\ntree %q", tarNames(t, res.Path), tarNames(t, fromTree.Path))
			}
			wantNotes := append([]string{"dropped kernel/null: a character device is not a file, directory or link"}, fromTree.Notes...)
			sort.Strings(wantNotes)
			gotNotes := append([]string(nil), res.Notes...)
			sort.Strings(gotNotes)
			if strings.Join(gotNotes, "\n") != strings.Join(wantNotes, "\n") {
				t.Errorf("notes differ:\nrpm\n%s\ntree and the device node\n%s", strings.Join(gotNotes, "\n"), strings.Join(wantNotes, "\n"))
			}
			if got, want := bundleFiles(t, res.Path, rel), rpmModuleFiles(t, pkg, rel, dropped...); strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("bundle %q, rpm -qlp less what was dropped %q", got, want)
			}
			checkPayloadLikeRpm2cpio(t, pkg, true)
		})
	}
	// What is left installs, and the hard-linked names hold the set's data.
	root2 := filepath.Join(dir, "instance")
	in := &Installer{Root: root2, Release: rel, Depmod: fakeDepmod}
	if _, err := in.Install(context.Background(), Bundle{URL: "file://" + fromTree.Path, SHA256: fromTree.SHA256}); err != nil {
		t.Fatalf("the cleaned bundle is refused: %v", err)
	}
	for _, h := range []string{"kernel/h1.ko.xz", "kernel/h2.ko.xz"} {
		if b, err := os.ReadFile(filepath.Join(root2, "lib/modules", rel, h)); err != nil || string(b) != "hard-linked module" {
			t.Errorf("%s: %q %v", h, b, err)
		}
	}
}

// cpioEnt is an entry of a hand-made newc archive.
type cpioEnt struct {
	name  string
	mode  uint32 // st_mode; 0 is a 0644 regular file
	nlink uint32 // 0 is 1
	ino   uint32
	body  string
}

func newcArchive(magic string, ents ...cpioEnt) []byte {
	var b bytes.Buffer
	pad := func() {
		for b.Len()%4 != 0 {
			b.WriteByte(0)
		}
	}
	for i, e := range append(ents, cpioEnt{name: "TRAILER!!!"}) {
		if e.mode == 0 && e.name != "TRAILER!!!" {
			e.mode = sIFREG | 0o644
		}
		if e.nlink == 0 {
			e.nlink = 1
		}
		if e.ino == 0 {
			e.ino = uint32(i + 1)
		}
		fmt.Fprintf(&b, "%s%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
			magic, e.ino, e.mode, 0, 0, e.nlink, 0, len(e.body), 0, 0, 0, 0, len(e.name)+1, 0)
		b.WriteString(e.name + "\x00")
		pad()
		b.WriteString(e.body)
		pad()
	}
	return b.Bytes()
}

// rpmTagData is one entry of a hand-made header.
type rpmTagData struct {
	tag, typ, count uint32
	data            []byte
}

func rpmString(tag uint32, s string) rpmTagData {
	return rpmTagData{tag, 6, 1, []byte(s + "\x00")}
}

func rpmInt32(tag, v uint32) rpmTagData {
	return rpmTagData{tag, 4, 1, binary.BigEndian.AppendUint32(nil, v)}
}

func rpmHeaderBlob(tags ...rpmTagData) []byte {
	var index, store []byte
	for _, e := range tags {
		for e.typ == 4 && len(store)%4 != 0 {
			store = append(store, 0)
		}
		for _, v := range []uint32{e.tag, e.typ, uint32(len(store)), e.count} {
			index = binary.BigEndian.AppendUint32(index, v)
		}
		store = append(store, e.data...)
	}
	h := append([]byte{0x8e, 0xad, 0xe8, 0x01, 0, 0, 0, 0}, binary.BigEndian.AppendUint32(nil, uint32(len(tags)))...)
	h = binary.BigEndian.AppendUint32(h, uint32(len(store)))
	return append(append(h, index...), store...)
}

// handRPM is an rpm as rpmbuild lays it out: lead, signature header with
// the main header's SHA-256, main header with the payload's SHA-256.
type handRPM struct {
	comp     string // PAYLOADCOMPRESSOR; "" leaves the tag out
	payload  []byte // compressed
	tags     []rpmTagData
	leadType uint16
	cpioSize int                        // the archive's size, for the signature header (rpm2cpio checks it); 0 leaves it out
	edit     func(main, payload []byte) // damages the package after its digests are made
}

func (h handRPM) bytes() []byte {
	sum := sha256.Sum256(h.payload)
	// h.tags first: the reader takes the first entry of a tag.
	tags := append(h.tags, []rpmTagData{rpmString(rpmTagArch, "aarch64"), rpmString(rpmTagPayloadFormat, "cpio"),
		{rpmTagPayloadDigest, 8, 1, []byte(hex.EncodeToString(sum[:]) + "\x00")}, rpmInt32(rpmTagPayloadDigestAlgo, 8)}...)
	if h.comp != "" {
		tags = append(tags, rpmString(rpmTagPayloadCompressor, h.comp))
	}
	main := rpmHeaderBlob(tags...)
	hsum := sha256.Sum256(main)
	sigTags := []rpmTagData{rpmString(rpmSigSHA256, hex.EncodeToString(hsum[:]))}
	if h.cpioSize > 0 {
		sigTags = append(sigTags, rpmInt32(1007, uint32(h.cpioSize))) // RPMSIGTAG_PAYLOADSIZE
	}
	sig := rpmHeaderBlob(sigTags...)
	lead := make([]byte, 96)
	copy(lead, rpmMagic)
	lead[4] = 3
	binary.BigEndian.PutUint16(lead[6:], h.leadType)
	copy(lead[10:], "kernel-modules-test")
	binary.BigEndian.PutUint16(lead[78:], 5) // header-style signature
	payload := append([]byte(nil), h.payload...)
	main = append([]byte(nil), main...)
	if h.edit != nil {
		h.edit(main, payload)
	}
	out := append(lead, sig...)
	out = append(out, make([]byte, (8-len(sig)%8)%8)...)
	return append(append(out, main...), payload...)
}

// zstdWide compresses as zstd --long does: with a window over the
// installer's cap.
func zstdWide(t *testing.T, raw []byte) []byte {
	var buf bytes.Buffer
	w, err := zstd.NewWriter(&buf, zstd.WithWindowSize(4*maxWindow), zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	w.Write(raw)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestPackRPMHandlesOddAndHostileEntries(t *testing.T) {
	p := "./lib/modules/" + rel + "/"
	dir := t.TempDir()
	pack := func(t *testing.T, h handRPM, release string) (PackResult, error) {
		t.Helper()
		pkg := filepath.Join(t.TempDir(), "p.rpm")
		if err := os.WriteFile(pkg, h.bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return Pack(PackOptions{NoIndex: true, Source: pkg, Release: release, Format: FormatTar, Out: filepath.Join(t.TempDir(), "b.tar")})
	}
	gz := func(ents ...cpioEnt) handRPM {
		return handRPM{comp: "gzip", payload: compress(t, FormatTarGz, newcArchive("070701", ents...))}
	}

	t.Run("a payload without directories packs like the tree", func(t *testing.T) {
		tree := makeTree(t, dir)
		fromTree, err := Pack(PackOptions{NoIndex: true, Source: tree, Format: FormatTar, Out: filepath.Join(dir, "tree.tar")})
		if err != nil {
			t.Fatal(err)
		}
		var ents []cpioEnt
		for _, f := range []string{"kernel/drivers/a.ko", "kernel/drivers/b.ko", "kernel/fs/c.ko", "modules.order", "modules.builtin"} {
			ents = append(ents, cpioEnt{name: "/lib/modules/" + rel + "/" + f, body: string(readFile(t, filepath.Join(tree, f)))})
		}
		ents = append(ents, cpioEnt{name: p + "extra", mode: sIFLNK | 0o777, body: "kernel/drivers"},
			cpioEnt{name: "./boot/vmlinuz-" + rel, body: "kernel"})
		res, err := pack(t, gz(ents...), "")
		if err != nil {
			t.Fatal(err)
		}
		if res.SHA256 != fromTree.SHA256 || res.Arch != "arm64" || len(res.Notes) != 0 {
			t.Fatalf("rpm %+v and tree %+v differ:\n%q\n%q", res, fromTree, tarNames(t, res.Path), tarNames(t, fromTree.Path))
		}
	})

	t.Run("hostile and odd entries are dropped or cleaned, each said", func(t *testing.T) {
		res, err := pack(t, gz(
			cpioEnt{name: p + "kernel/ok.ko", body: "ok"},
			cpioEnt{name: p + "../../../etc/evil", body: "x"},
			cpioEnt{name: "lib/modules/" + rel + "/kernel/../../../../etc/evil2", body: "x"},
			cpioEnt{name: p + "kernel/null", mode: sIFCHR | 0o666},
			cpioEnt{name: p + "kernel/sda", mode: sIFBLK | 0o660},
			cpioEnt{name: p + "kernel/sock", mode: sIFSOCK | 0o755},
			cpioEnt{name: p + "kernel/suid.ko", mode: sIFREG | 0o6755, body: "s"},
			cpioEnt{name: p + "kernel/lnk", mode: sIFLNK | 0o777, body: "."},
			cpioEnt{name: p + "kernel/lnk/evil.ko", body: "x"},
			cpioEnt{name: p + "kernel/long", mode: sIFLNK | 0o777, body: strings.Repeat("a/", 3000)},
			cpioEnt{name: p + "build", mode: sIFLNK | 0o777, body: "/usr/src/kernels/" + rel},
			cpioEnt{name: p + "kernel/out", mode: sIFLNK | 0o777, body: "/etc/shadow"},
			// Hard-link sets: data first (odd but valid), data last (rpm's
			// and cpio's way), and no data at all.
			cpioEnt{name: p + "kernel/first.ko", nlink: 2, ino: 100, body: "first"},
			cpioEnt{name: p + "kernel/first-link.ko", nlink: 2, ino: 100},
			cpioEnt{name: p + "kernel/last-link.ko", nlink: 2, ino: 200},
			cpioEnt{name: p + "kernel/last.ko", nlink: 2, ino: 200, body: "last"},
			cpioEnt{name: p + "kernel/empty1", nlink: 2, ino: 300},
			cpioEnt{name: p + "kernel/empty2", nlink: 2, ino: 300},
			// A later entry of one name replaces the earlier, as cpio -iu does.
			cpioEnt{name: p + "kernel/twice.ko", body: "old"},
			cpioEnt{name: p + "kernel/twice.ko", body: "new"},
		), "")
		if err != nil {
			t.Fatal(err)
		}
		notes := strings.Join(res.Notes, "\n")
		for _, want := range []string{
			`dropped ./lib/modules/` + rel + `/../../../etc/evil: path contains ".."`,
			`etc/evil2: path contains ".."`,
			"dropped kernel/null: a character device is not a file, directory or link",
			"dropped kernel/sda: a block device",
			"dropped kernel/sock: a socket",
			"cleared the setuid/setgid bit of kernel/suid.ko",
			"dropped kernel/lnk/evil.ko: kernel/lnk is not a directory",
			"dropped kernel/lnk -> .: link to a directory that holds it",
			"dropped kernel/long: link target of 6000 bytes",
			"dropped build -> /usr/src/kernels/" + rel,
			"dropped kernel/out -> /etc/shadow: absolute link out of the tree",
		} {
			if !strings.Contains(notes, want) {
				t.Errorf("notes lack %q:\n%s", want, notes)
			}
		}
		root := filepath.Join(t.TempDir(), "root")
		in := &Installer{Root: root, Release: rel, Depmod: fakeDepmod}
		if _, err := in.Install(context.Background(), Bundle{URL: "file://" + res.Path, SHA256: res.SHA256}); err != nil {
			t.Fatalf("the cleaned bundle is refused: %v", err)
		}
		tree := filepath.Join(root, "lib/modules", rel)
		for name, want := range map[string]string{
			"kernel/first.ko": "first", "kernel/first-link.ko": "first", "kernel/last.ko": "last",
			"kernel/last-link.ko": "last", "kernel/empty1": "", "kernel/empty2": "", "kernel/twice.ko": "new",
		} {
			if b, err := os.ReadFile(filepath.Join(tree, name)); err != nil || string(b) != want {
				t.Errorf("%s: %q %v, want %q", name, b, err, want)
			}
		}
		if fi, err := os.Stat(filepath.Join(tree, "kernel/suid.ko")); err != nil || fi.Mode()&(os.ModeSetuid|os.ModeSetgid) != 0 {
			t.Errorf("suid.ko: %v %v", fi, err)
		}
		for _, gone := range []string{"kernel/null", "kernel/sda", "kernel/sock", "kernel/lnk", "kernel/lnk/evil.ko", "build", "kernel/out", "kernel/long"} {
			if _, err := os.Lstat(filepath.Join(tree, gone)); err == nil {
				t.Errorf("%s was installed", gone)
			}
		}
	})

	t.Run("several releases need --release", func(t *testing.T) {
		h := gz(cpioEnt{name: p + "a.ko", body: "a"}, cpioEnt{name: "./usr/lib/modules/6.5.6-300.fc39.x86_64/b.ko.xz", body: "b"})
		if _, err := pack(t, h, ""); err == nil || !strings.Contains(err.Error(), "several releases (6.1.0-99-cloud-amd64, 6.5.6-300.fc39.x86_64); choose one with --release") {
			t.Fatalf("two releases: %v", err)
		}
		res, err := pack(t, h, "6.5.6-300.fc39.x86_64")
		if err != nil || res.Files != 1 || res.Release != "6.5.6-300.fc39.x86_64" {
			t.Fatalf("--release: %+v %v", res, err)
		}
		if _, err := pack(t, gz(cpioEnt{name: "./boot/vmlinuz", body: "k"}), ""); err == nil || !strings.Contains(err.Error(), "has no lib/modules/<release> tree") {
			t.Fatalf("no tree: %v", err)
		}
	})

	good := newcArchive("070701", cpioEnt{name: p + "a.ko", body: "a"})
	for _, c := range []struct {
		name string
		h    handRPM
		want string
	}{
		{"a compressor pack does not read", handRPM{comp: "lzma", payload: good}, "payload compressed with lzma, which pack does not read (gzip, bzip2, xz, zstd)"},
		{"a payload that is not what the header says", handRPM{comp: "xz", payload: compress(t, FormatTarGz, good)}, "the header says the payload is xz compressed, but it is not"},
		{"no compressor tag means gzip", handRPM{payload: compress(t, FormatTarZst, good)}, "the header says the payload is gzip compressed, but it is not"},
		{"a delta rpm", handRPM{comp: "gzip", payload: compress(t, FormatTarGz, good), tags: []rpmTagData{rpmString(rpmTagPayloadFormat, "drpm")}}, `payload format "drpm" is not read`},
		{"a source package", handRPM{comp: "gzip", payload: compress(t, FormatTarGz, good), leadType: 1}, "a source package (.src.rpm)"},
		{"rpm's stripped cpio", handRPM{comp: "gzip", payload: compress(t, FormatTarGz, newcArchive("07070X"))}, "stripped cpio payload"},
		{"not a cpio archive", handRPM{comp: "gzip", payload: compress(t, FormatTarGz, []byte(strings.Repeat("x", 200)))}, "not a newc cpio archive"},
		{"no trailer", handRPM{comp: "gzip", payload: compress(t, FormatTarGz, good[:len(good)-124])}, "truncated cpio archive (no trailer)"},
		{"a truncated payload", handRPM{comp: "gzip", payload: compress(t, FormatTarGz, good)[:30]}, "the package is truncated"},
		{"a damaged payload", handRPM{comp: "gzip", payload: compress(t, FormatTarGz, good), edit: func(_, p []byte) { p[len(p)-1] ^= 1 }}, "the package is damaged"},
		{"a damaged header", handRPM{comp: "gzip", payload: compress(t, FormatTarGz, good), edit: func(m, _ []byte) { m[len(m)-1] ^= 1 }}, "the main header does not match its digest"},
		{"a zstd window over the cap", handRPM{comp: "zstd", payload: zstdWide(t, newcArchive("070701", cpioEnt{name: p + "big.ko", body: strings.Repeat("module", 2<<20)}))}, "zstd asks for a window over 8 MiB"},
		{"a huge header", handRPM{comp: "gzip", payload: compress(t, FormatTarGz, good), edit: func(m, _ []byte) { copy(m[8:], []byte{0xff, 0xff, 0xff, 0xff}) }}, "larger than rpm allows"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := pack(t, c.h, "")
			if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("got %v, want one line with %q", err, c.want)
			}
		})
	}
	t.Run("the hand-made package is one rpm2cpio reads", func(t *testing.T) {
		pkg := filepath.Join(t.TempDir(), "p.rpm")
		h := gz(cpioEnt{name: p + "a.ko", body: "a"})
		h.cpioSize = len(good)
		os.WriteFile(pkg, h.bytes(), 0o644)
		checkPayloadLikeRpm2cpio(t, pkg, true)
	})
}

// realKernelPackages returns Debian's cloud kernel, its cached .deb, and
// an rpm of its tree with a zstd payload (as Fedora and Amazon Linux ship
// kernels) made in a temporary directory; compression may name a level
// ("zstd:1").
func realKernelPackages(t testing.TB, compression string) (k realKernel, deb, rpm string) {
	t.Helper()
	k = needRealKernel(t)
	debs, _ := filepath.Glob(filepath.Join(k.dir, "linux-image-*.deb"))
	testenv.Need(t, len(debs) == 1, "the cached linux-image .deb (run modules/testdata/fetch-kernel.sh)")
	rpm = filepath.Join(t.TempDir(), "kernel.rpm")
	nfpmRPM(t, k.pkgTree, compression, rpm)
	return k, debs[0], rpm
}

// TestPackRealKernelRPMMatchesTheTree packs Debian's cloud kernel from an
// rpm of its tree and from the tree (unpacked from the .deb): the same
// bundle, and the files rpm -qlp lists. Plain tar and the fastest zstd
// keep it short under -race; BenchmarkPackRealPackage compares the .deb.
func TestPackRealKernelRPMMatchesTheTree(t *testing.T) {
	k, _, pkg := realKernelPackages(t, "zstd:1")
	dir := t.TempDir()
	fromTree, err := Pack(PackOptions{Source: k.pkgTree, Format: FormatTar, Out: filepath.Join(dir, "tree.tar")})
	if err != nil {
		t.Fatal(err)
	}
	fromRPM, err := Pack(PackOptions{Source: pkg, Format: FormatTar, Out: filepath.Join(dir, "rpm.tar")})
	if err != nil {
		t.Fatal(err)
	}
	if fromRPM.SHA256 != fromTree.SHA256 || fromRPM.Release != k.release || fromRPM.Arch != "amd64" || len(fromRPM.Notes) != 0 {
		t.Fatalf("rpm %+v and tree %+v differ", fromRPM, fromTree)
	}
	if fromRPM.Files < 1000 {
		t.Fatalf("only %d files", fromRPM.Files)
	}
	// The bundle is the package's files plus the module index pack built.
	var got []string
	for _, f := range bundleFiles(t, fromRPM.Path, k.release) {
		if f != IndexStampName && !isDepmodOutput(f) {
			got = append(got, f)
		}
	}
	if want := rpmModuleFiles(t, pkg, k.release); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("the bundle's %d entries (less the index) are not rpm -qlp's %d", len(got), len(want))
	}
}

// BenchmarkPackRealPackage packs Debian's cloud kernel from its .deb and
// from an rpm of the same tree (zstd payload) into .tar.zst bundles in
// alternating rounds, and checks they are the same bundle; deb-ns/op and
// rpm-ns/op are the two means, rpm/deb their ratio.
//
//	go test -run '^$' -bench PackRealPackage -benchtime 5x ./modules/
func BenchmarkPackRealPackage(b *testing.B) {
	_, deb, pkg := realKernelPackages(b, "zstd")
	dir := b.TempDir()
	var took [2]time.Duration
	for b.Loop() {
		var sums [2]string
		for i, src := range []string{deb, pkg} {
			start := time.Now()
			res, err := Pack(PackOptions{Source: src, Out: filepath.Join(dir, "out.tar.zst")})
			if err != nil {
				b.Fatal(err)
			}
			took[i] += time.Since(start)
			sums[i] = res.SHA256
		}
		if sums[0] != sums[1] {
			b.Fatalf("the .deb's bundle %s and the .rpm's %s differ", sums[0], sums[1])
		}
	}
	b.ReportMetric(float64(took[0].Nanoseconds())/float64(b.N), "deb-ns/op")
	b.ReportMetric(float64(took[1].Nanoseconds())/float64(b.N), "rpm-ns/op")
	b.ReportMetric(float64(took[1])/float64(took[0]), "rpm/deb")
}

// FuzzReadRPM feeds the package reader and, since the digests stop most
// changes to a package at the door, the payload reader arbitrary bytes:
// neither panics nor answers in more than one line, and what they accept
// has names inside the tree and the sizes it says.
func FuzzReadRPM(f *testing.F) {
	p := "./lib/modules/" + rel + "/"
	archive := newcArchive("070701",
		cpioEnt{name: p + "kernel", mode: sIFDIR | 0o755}, cpioEnt{name: p + "kernel/a.ko", body: "a"},
		cpioEnt{name: p + "l", mode: sIFLNK | 0o777, body: "kernel/a.ko"}, cpioEnt{name: p + "f", mode: sIFIFO | 0o644},
		cpioEnt{name: p + "h1", nlink: 2, ino: 9}, cpioEnt{name: p + "h2", nlink: 2, ino: 9, body: "h"})
	f.Add(archive)
	f.Add(handRPM{comp: "gzip", payload: compress(f, FormatTarGz, archive)}.bytes())
	f.Add(handRPM{comp: "bzip2", payload: []byte("BZh91AY&SY")}.bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		check := func(tr packTree) {
			for _, it := range tr.items {
				if _, err := splitName("x/" + it.rel); err != nil || strings.HasPrefix(it.rel, "/") {
					t.Fatalf("accepted %q", it.rel)
				}
				if it.typ != tar.TypeReg {
					continue
				}
				r, err := it.open()
				if err != nil {
					t.Fatal(err)
				}
				n, _ := io.Copy(io.Discard, r)
				r.Close()
				if n != it.size {
					t.Fatalf("%s: %d bytes, said %d", it.rel, n, it.size)
				}
			}
		}
		oneLine := func(err error) {
			if err != nil && strings.Contains(err.Error(), "\n") {
				t.Fatalf("a multi-line error: %q", err)
			}
		}
		tr, err := readRPM(bytes.NewReader(b), "fuzz.rpm", "")
		oneLine(err)
		if err == nil {
			check(tr)
			tr.cleanup()
		}
		tmp := t.TempDir()
		trees := map[string]*pkgRelease{}
		var notes []string
		err = readCPIOTrees(bytes.NewReader(b), tmp, trees, &notes)
		oneLine(err)
		for _, n := range notes {
			oneLine(errors.New(n))
		}
		if err == nil {
			for _, r := range trees {
				items, _ := r.withParents()
				check(packTree{items: items})
			}
		}
	})
}
