package modules

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

const rel = "6.1.0-99-cloud-amd64"

// hostileCase is one bundle that must be refused.
type hostileCase struct {
	name   string
	bundle func(t *testing.T, dir string) Bundle
	limits Limits
	reason string // substring of the refusal
}

func tarBundle(ents ...ent) func(t *testing.T, dir string) Bundle {
	return func(t *testing.T, dir string) Bundle {
		return writeBundle(t, dir, "b.tar.gz", compress(t, FormatTarGz, makeTar(t, ents)))
	}
}

func hostileCorpus() []hostileCase {
	p := "lib/modules/" + rel + "/"
	ok := ent{name: p + "kernel/ok.ko", body: "fine"}
	return []hostileCase{
		{name: "an absolute path is refused", bundle: tarBundle(ok, ent{name: "/etc/evil", body: "x"}), reason: "absolute path"},
		{name: "a dot-dot path is refused", bundle: tarBundle(ent{name: p + "../../../etc/evil", body: "x"}), reason: `".."`},
		{name: "a dot-dot path in the release layout is refused", bundle: tarBundle(ent{name: rel + "/../evil", body: "x"}), reason: `".."`},
		{name: "a symlink to an absolute path is refused", bundle: tarBundle(ent{name: p + "build", typ: tar.TypeSymlink, link: "/usr/src/linux"}), reason: "absolute path"},
		{name: "a symlink climbing out of the tree is refused", bundle: tarBundle(ent{name: p + "kernel/esc", typ: tar.TypeSymlink, link: "../../../../outside"}), reason: "leaves the release tree"},
		{name: "a symlink escaping through another symlink is refused", bundle: tarBundle(
			ent{name: p + "kernel/", typ: tar.TypeDir},
			ent{name: p + "kernel/up", typ: tar.TypeSymlink, link: ".."},
			ent{name: p + "esc", typ: tar.TypeSymlink, link: "kernel/up/../../outside"}), reason: "resolves outside"},
		{name: "a file written through a symlinked directory is refused", bundle: tarBundle(
			ent{name: p + "kernel/", typ: tar.TypeDir},
			ent{name: p + "kernel/lnk", typ: tar.TypeSymlink, link: "."},
			ent{name: p + "kernel/lnk/evil.ko", body: "x"}), reason: "not a directory"},
		{name: "a file under a symlink to outside is refused", bundle: tarBundle(
			ent{name: p + "out", typ: tar.TypeSymlink, link: "../../../outside"},
			ent{name: p + "out/evil", body: "x"}), reason: "leaves the release tree"},
		{name: "a hard link to a path outside the tree is refused", bundle: tarBundle(ent{name: p + "hl", typ: tar.TypeLink, link: "etc/passwd"}), reason: "hard link target"},
		{name: "a hard link to an absolute path is refused", bundle: tarBundle(ent{name: p + "hl", typ: tar.TypeLink, link: "/etc/passwd"}), reason: "hard link target"},
		{name: "a hard link climbing with dot-dot is refused", bundle: tarBundle(ent{name: p + "hl", typ: tar.TypeLink, link: p + "../../../outside/secret"}), reason: "hard link target"},
		{name: "a hard link to a symlink is refused", bundle: tarBundle(
			ent{name: p + "s", typ: tar.TypeSymlink, link: "modules.order"},
			ent{name: p + "hl", typ: tar.TypeLink, link: p + "s"}), reason: "not a regular file"},
		{name: "a character device is refused", bundle: tarBundle(ent{name: p + "null", typ: tar.TypeChar}), reason: "device"},
		{name: "a block device is refused", bundle: tarBundle(ent{name: p + "sda", typ: tar.TypeBlock}), reason: "device"},
		{name: "a FIFO is refused", bundle: tarBundle(ent{name: p + "fifo", typ: tar.TypeFifo}), reason: "FIFO"},
		{name: "a setuid file is refused", bundle: tarBundle(ent{name: p + "suid", body: "x", mode: 0o4755}), reason: "setuid"},
		{name: "a setgid directory is refused", bundle: tarBundle(ent{name: p + "sgid/", typ: tar.TypeDir, mode: 0o2755}), reason: "setgid"},
		{name: "a file above the size cap is refused", bundle: tarBundle(ent{name: p + "big.ko", body: strings.Repeat("x", 200000)}),
			limits: Limits{MaxFileSize: 100000}, reason: "per-file cap"},
		{name: "a zip bomb is refused at the unpacked-size cap", bundle: func(t *testing.T, dir string) Bundle {
			var ents []ent
			for i := range 16 {
				ents = append(ents, ent{name: p + "kernel/zero" + string(rune('a'+i)) + ".ko", body: string(make([]byte, 1<<20))})
			}
			b := compress(t, FormatTarGz, makeTar(t, ents))
			if len(b) > 200<<10 {
				t.Fatalf("bomb compressed to %d bytes, not a bomb", len(b))
			}
			return writeBundle(t, dir, "bomb.tar.gz", b)
		}, limits: Limits{MaxTotalSize: 4 << 20}, reason: "unpacked size exceeds"},
		{name: "more files than the cap are refused", bundle: func(t *testing.T, dir string) Bundle {
			var ents []ent
			for i := range 60 {
				ents = append(ents, ent{name: p + "kernel/m" + strings.Repeat("x", i) + ".ko", body: "m"})
			}
			return writeBundle(t, dir, "many.tar.gz", compress(t, FormatTarGz, makeTar(t, ents)))
		}, limits: Limits{MaxEntries: 50}, reason: "more than 50 entries"},
		{name: "a module index stamp that is a link is refused", bundle: tarBundle(ok, ent{name: p + IndexStampName, typ: tar.TypeSymlink, link: "modules.order"}), reason: "reserved for the module index stamp"},
		{name: "a module index stamp that is a directory is refused", bundle: tarBundle(ok, ent{name: p + IndexStampName + "/", typ: tar.TypeDir}), reason: "reserved for the module index stamp"},
		{name: "a file under the module index stamp is refused", bundle: tarBundle(ok, ent{name: p + IndexStampName, body: "{}"}, ent{name: p + IndexStampName + "/x.ko", body: "x"}), reason: "is not a directory"},
		{name: "a hard link to the module index stamp is refused", bundle: tarBundle(ok, ent{name: p + IndexStampName, body: "{}"}, ent{name: p + "hl", typ: tar.TypeLink, link: p + IndexStampName}), reason: "not a regular file"},
		{name: "a second module index stamp is refused", bundle: tarBundle(ok, ent{name: p + IndexStampName, body: "{}"}, ent{name: rel + "/" + IndexStampName, body: "{}"}), reason: "duplicate path"},
		{name: "a duplicate path is refused", bundle: tarBundle(ok, ok), reason: "duplicate path"},
		{name: "a duplicate path across the two layouts is refused", bundle: tarBundle(ok, ent{name: rel + "/kernel/ok.ko", body: "again"}), reason: "duplicate path"},
		{name: "a file over a directory is refused", bundle: tarBundle(ok, ent{name: p + "kernel", body: "x"}), reason: "duplicate path"},
		{name: "another release is refused", bundle: tarBundle(ent{name: "lib/modules/5.10.0-9-amd64/kernel/a.ko", body: "x"}), reason: `release "5.10.0-9-amd64"`},
		{name: "another release in the short layout is refused", bundle: tarBundle(ent{name: "5.10.0-9-amd64/kernel/a.ko", body: "x"}), reason: `release "5.10.0-9-amd64"`},
		{name: "a path outside lib/modules is refused", bundle: tarBundle(ok, ent{name: "etc/passwd", body: "x"}), reason: "outside lib/modules"},
		{name: "firmware beside the modules is refused", bundle: tarBundle(ent{name: "lib/firmware/x.bin", body: "x"}), reason: "outside lib/modules"},
		{name: "the release directory as a file is refused", bundle: tarBundle(ent{name: p[:len(p)-1], body: "x"}), reason: "must be a directory"},
		{name: "a truncated stream is refused", bundle: func(t *testing.T, dir string) Bundle {
			full := compress(t, FormatTarGz, makeTar(t, goodTree(rel, "new")))
			return writeBundle(t, dir, "cut.tar.gz", full[:len(full)*2/3])
		}, reason: "truncated"},
		{name: "a truncated plain tar is refused", bundle: func(t *testing.T, dir string) Bundle {
			full := makeTar(t, goodTree(rel, "new"))
			return writeBundle(t, dir, "cut.tar", full[:1500])
		}, reason: "truncated"},
		{name: "a wrong digest is refused", bundle: func(t *testing.T, dir string) Bundle {
			b := writeBundle(t, dir, "good.tar.gz", compress(t, FormatTarGz, makeTar(t, goodTree(rel, "new"))))
			b.SHA256 = digest([]byte("something else"))
			return b
		}, reason: "does not match"},
		{name: "a wrong size is refused", bundle: func(t *testing.T, dir string) Bundle {
			b := writeBundle(t, dir, "good.tar.gz", compress(t, FormatTarGz, makeTar(t, goodTree(rel, "new"))))
			b.Size = 12345
			return b
		}, reason: "expected 12345"},
		{name: "a mislabelled format is refused", bundle: func(t *testing.T, dir string) Bundle {
			b := writeBundle(t, dir, "good.tar.gz", compress(t, FormatTarGz, makeTar(t, goodTree(rel, "new"))))
			b.Format = FormatTarXz
			return b
		}, reason: "declared format tar.xz but the content is tar.gz"},
		{name: "data that is no archive is refused", bundle: func(t *testing.T, dir string) Bundle {
			return writeBundle(t, dir, "junk.bin", bytes.Repeat([]byte("junk"), 300))
		}, reason: "unrecognised bundle format"},
		{name: "an empty bundle is refused", bundle: func(t *testing.T, dir string) Bundle {
			return writeBundle(t, dir, "empty.tar", nil)
		}, reason: "empty bundle"},
		{name: "data hidden after the archive is refused", bundle: func(t *testing.T, dir string) Bundle {
			raw := append(makeTar(t, goodTree(rel, "new")), bytes.Repeat([]byte{'z'}, 2<<20)...)
			return writeBundle(t, dir, "tail.tar.gz", compress(t, FormatTarGz, raw))
		}, reason: "after the end of the archive"},
		{name: "a zstd frame asking for a huge window is refused", bundle: func(t *testing.T, dir string) Bundle {
			var buf bytes.Buffer
			w, err := zstd.NewWriter(&buf, zstd.WithWindowSize(64<<20), zstd.WithEncoderLevel(zstd.SpeedFastest))
			if err != nil {
				t.Fatal(err)
			}
			w.Write(makeTar(t, []ent{{name: p + "big.ko", body: strings.Repeat("0123456789abcdef", 1<<20)}}))
			w.Close()
			return writeBundle(t, dir, "window.tar.zst", buf.Bytes())
		}, reason: "corrupt or hostile tar.zst stream"},
		{name: "an xz stream asking for a huge dictionary is refused", bundle: func(t *testing.T, dir string) Bundle {
			var buf bytes.Buffer
			w, err := xz.WriterConfig{DictCap: 256 << 20}.NewWriter(&buf)
			if err != nil {
				t.Fatal(err)
			}
			w.Write(makeTar(t, goodTree(rel, "new")))
			w.Close()
			return writeBundle(t, dir, "dict.tar.xz", buf.Bytes())
		}, reason: "xz dictionary of 268435456 bytes"},
		{name: "a corrupt gzip stream is refused", bundle: func(t *testing.T, dir string) Bundle {
			var buf bytes.Buffer
			w := gzip.NewWriter(&buf)
			w.Write(makeTar(t, goodTree(rel, "new")))
			w.Close()
			b := buf.Bytes()
			b[len(b)-8] ^= 0xff // the CRC-32 in the trailer
			return writeBundle(t, dir, "corrupt.tar.gz", b)
		}, reason: "corrupt or hostile tar.gz stream"},
	}
}

// TestHostileBundlesAreRefusedAndChangeNothing installs each hostile bundle
// over a good tree and checks, by walking the whole temporary directory
// before and after, that nothing changed anywhere: not the previous tree,
// not the directories beside it, not the victim outside the root.
func TestHostileBundlesAreRefusedAndChangeNothing(t *testing.T) {
	for _, tc := range hostileCorpus() {
		t.Run(tc.name, func(t *testing.T) {
			top := t.TempDir()
			root := filepath.Join(top, "root")
			bundles := filepath.Join(top, "bundles")
			for _, d := range []string{bundles, filepath.Join(root, "outside"), filepath.Join(top, "outside")} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			os.WriteFile(filepath.Join(root, "outside", "secret"), []byte("keep"), 0o600)
			in := &Installer{Root: root, Release: rel, Depmod: fakeDepmod, Limits: tc.limits}
			good := writeBundle(t, bundles, "good-old.tar.gz", compress(t, FormatTarGz, makeTar(t, goodTree(rel, "old"))))
			if _, err := in.Install(context.Background(), good); err != nil {
				t.Fatalf("install the good tree: %v", err)
			}
			b := tc.bundle(t, bundles)
			before := snapshot(t, top)

			res, err := in.Install(context.Background(), b)
			if err == nil {
				t.Fatalf("hostile bundle installed: %+v", res)
			}
			if tc.reason != "" && !errors.Is(err, ErrRefused) {
				t.Errorf("error is not a refusal: %v", err)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("error %q does not say %q", err, tc.reason)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
			if d := diffSnapshots(before, snapshot(t, top)); d != "" {
				t.Errorf("a refused install changed the file system:\n%s", d)
			}
		})
	}
}

func TestEntryChecksAreDecidedFromTheHeaderAlone(t *testing.T) {
	p := "lib/modules/" + rel + "/"
	for _, tc := range []struct {
		name    string
		h       tar.Header
		wantRel string
		parent  bool
		reason  string
	}{
		{name: "a module in the package layout lands in the tree", h: tar.Header{Name: p + "kernel/a.ko", Typeflag: tar.TypeReg}, wantRel: "kernel/a.ko"},
		{name: "a module in the release layout lands in the tree", h: tar.Header{Name: rel + "/kernel/a.ko", Typeflag: tar.TypeReg}, wantRel: "kernel/a.ko"},
		{name: "a leading dot-slash is ignored", h: tar.Header{Name: "./" + p + "kernel/a.ko", Typeflag: tar.TypeReg}, wantRel: "kernel/a.ko"},
		{name: "the release directory is the tree itself", h: tar.Header{Name: p, Typeflag: tar.TypeDir}, wantRel: ""},
		{name: "lib/ is a skipped parent", h: tar.Header{Name: "lib/", Typeflag: tar.TypeDir}, parent: true},
		{name: "lib/modules/ is a skipped parent", h: tar.Header{Name: "./lib/modules", Typeflag: tar.TypeDir}, parent: true},
		{name: "lib/modules as a file is outside", h: tar.Header{Name: "lib/modules", Typeflag: tar.TypeReg}, reason: "outside"},
		{name: "a symlink inside the tree is accepted", h: tar.Header{Name: p + "kernel/x", Typeflag: tar.TypeSymlink, Linkname: "../modules.order"}, wantRel: "kernel/x"},
		{name: "a symlink to the tree root is accepted", h: tar.Header{Name: p + "kernel/x", Typeflag: tar.TypeSymlink, Linkname: ".."}, wantRel: "kernel/x"},
		{name: "a symlink one level too high is refused", h: tar.Header{Name: p + "kernel/x", Typeflag: tar.TypeSymlink, Linkname: "../.."}, reason: "leaves"},
		{name: "a symlink with an empty target is refused", h: tar.Header{Name: p + "x", Typeflag: tar.TypeSymlink}, reason: "empty target"},
		{name: "a hard link in the short layout maps to the tree", h: tar.Header{Name: p + "b.ko", Typeflag: tar.TypeLink, Linkname: rel + "/a.ko"}, wantRel: "b.ko"},
		{name: "a sticky-free 0755 file is accepted", h: tar.Header{Name: p + "m.ko", Typeflag: tar.TypeReg, Mode: 0o755}, wantRel: "m.ko"},
		{name: "a NUL in a name is refused", h: tar.Header{Name: p + "a\x00b", Typeflag: tar.TypeReg}, reason: "NUL"},
		{name: "an empty name is refused", h: tar.Header{Name: "", Typeflag: tar.TypeReg}, reason: "empty"},
		{name: "a GNU sparse file is refused", h: tar.Header{Name: p + "s", Typeflag: tar.TypeGNUSparse}, reason: "not allowed"},
		{name: "a name that is only dots is refused", h: tar.Header{Name: "./.", Typeflag: tar.TypeDir}, reason: "empty path"},
		{name: "a foreign top-level directory is outside", h: tar.Header{Name: "usr/bin/x", Typeflag: tar.TypeReg}, reason: "outside lib/modules"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := CheckEntry(&tc.h, rel)
			if tc.reason != "" {
				if err == nil || !strings.Contains(err.Error(), tc.reason) || !errors.Is(err, ErrRefused) {
					t.Fatalf("got %+v, %v; want a refusal saying %q", e, err, tc.reason)
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if e.Parent != tc.parent || (!tc.parent && e.Rel != tc.wantRel) {
				t.Fatalf("got %+v, want rel %q parent %v", e, tc.wantRel, tc.parent)
			}
		})
	}
}

func TestXzDictionarySizeIsReadFromTheBlockHeader(t *testing.T) {
	for _, want := range []uint64{1 << 20, 8 << 20, 12 << 20, 64 << 20} {
		var buf bytes.Buffer
		w, err := xz.WriterConfig{DictCap: int(want)}.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("some data"))
		w.Close()
		if got, ok := xzDictSize(buf.Bytes()); !ok || got != want {
			t.Errorf("dictionary %d read as %d (%v)", want, got, ok)
		}
	}
	if _, ok := xzDictSize([]byte{0xfd, '7', 'z', 'X', 'Z', 0}); ok {
		t.Error("a header-only stream yielded a size")
	}
}
