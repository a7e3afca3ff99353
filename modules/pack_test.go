package modules

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flint-dev/flint/internal/testenv"
)

// makeTree writes a small module tree for release rel under dir and
// returns its path.
func makeTree(t *testing.T, dir string) string {
	t.Helper()
	tree := filepath.Join(dir, "lib", "modules", rel)
	for p, body := range map[string]string{
		"kernel/drivers/a.ko": "module a",
		"kernel/drivers/b.ko": "module b",
		"kernel/fs/c.ko":      strings.Repeat("c", 70000),
		"modules.order":       "kernel/drivers/a.ko\nkernel/drivers/b.ko\n",
		"modules.builtin":     "kernel/fs/ext4/ext4.ko\n",
	} {
		p = filepath.Join(tree, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("kernel/drivers", filepath.Join(tree, "extra")); err != nil {
		t.Fatal(err)
	}
	return tree
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tarNames lists a bundle's entries with their modes, owners and times.
func tarNames(t *testing.T, p string) []string {
	t.Helper()
	var out []string
	eachEntry(t, p, func(h *tar.Header, _ io.Reader) {
		out = append(out, fmt.Sprintf("%s %c %04o %d %d %s %s", h.Name, h.Typeflag, h.Mode, h.Uid, h.Gid, h.ModTime.UTC().Format(time.RFC3339), h.Linkname))
	})
	return out
}

// eachEntry calls f with every entry of the bundle at p.
func eachEntry(t testing.TB, p string, f func(h *tar.Header, r io.Reader)) {
	t.Helper()
	fh, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	r, _, done, err := Decompress(fh, "")
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		f(h, tr)
	}
}

func TestPackingTwiceGivesIdenticalBytesInEveryFormat(t *testing.T) {
	for _, f := range []Format{FormatTarZst, FormatTarGz, FormatTarXz, FormatTar} {
		t.Run(string(f), func(t *testing.T) {
			dir := t.TempDir()
			tree := makeTree(t, dir)
			a, err := Pack(PackOptions{Source: tree, Format: f, Out: filepath.Join(dir, "a")})
			if err != nil {
				t.Fatal(err)
			}
			// Times, modes and the order files were made in must not matter.
			later := time.Now().Add(time.Hour)
			os.Chtimes(filepath.Join(tree, "kernel/drivers/a.ko"), later, later)
			os.Chmod(filepath.Join(tree, "modules.order"), 0o640)
			b, err := Pack(PackOptions{Source: tree, Format: f, Out: filepath.Join(dir, "b")})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(readFile(t, a.Path), readFile(t, b.Path)) || a.SHA256 != b.SHA256 {
				t.Fatalf("two packs differ: %s vs %s", a.SHA256, b.SHA256)
			}
			// The tree's five files, and depmod's index with its stamp
			// where depmod is installed.
			if a.Release != rel || a.Files != 5+indexEntries(t, a.Path) || a.Format != f {
				t.Fatalf("result %+v", a)
			}
			if a.SHA256 != digest(readFile(t, a.Path)) || a.Size != int64(len(readFile(t, a.Path))) {
				t.Fatal("the reported digest or size is not the file's")
			}
			names := tarNames(t, a.Path)
			for i := 1; i < len(names); i++ {
				if names[i-1] > names[i] {
					t.Fatalf("entries not sorted: %q before %q", names[i-1], names[i])
				}
			}
			want := "lib/modules/" + rel + "/kernel/drivers/a.ko 0 0644 0 0 1970-01-01T00:00:00Z "
			if !contains(names, want) {
				t.Fatalf("no normalised entry %q in %q", want, names)
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestPackFindsTheReleaseInARootOrATree(t *testing.T) {
	dir := t.TempDir()
	tree := makeTree(t, dir)
	fromRoot, err := Pack(PackOptions{Source: dir, Out: filepath.Join(dir, "r.tar.zst")})
	if err != nil {
		t.Fatal(err)
	}
	fromTree, err := Pack(PackOptions{Source: tree, Out: filepath.Join(dir, "t.tar.zst")})
	if err != nil {
		t.Fatal(err)
	}
	if fromRoot.Release != rel || fromRoot.SHA256 != fromTree.SHA256 {
		t.Fatalf("root %+v and tree %+v differ", fromRoot, fromTree)
	}
	other := filepath.Join(t.TempDir(), "not-a-release")
	os.MkdirAll(other, 0o755)
	if _, err := Pack(PackOptions{Source: other}); err == nil || !strings.Contains(err.Error(), "--release") {
		t.Fatalf("a tree of unknown release: %v", err)
	}
}

// plantHostileEntries adds to a tree what a kernel build leaves and an
// instance refuses: build and source links, links leaving the tree, a
// link by the tree's own absolute path, a setuid file and a FIFO.
func plantHostileEntries(t *testing.T, tree string) {
	t.Helper()
	links := map[string]string{
		"build":             "/usr/src/linux-headers-" + rel,
		"source":            "/home/builder/linux",
		"kernel/passwd":     "/etc/passwd",
		"kernel/up":         "../../../../etc",
		"kernel/self":       "/lib/modules/" + rel + "/kernel/drivers/a.ko",
		"kernel/other-tree": "/lib/modules/5.10.0-9-amd64/kernel",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(tree, name)); err != nil {
			t.Fatal(err)
		}
	}
	setuid := filepath.Join(tree, "kernel/drivers/suid.ko")
	os.WriteFile(setuid, []byte("x"), 0o755)
	if err := os.Chmod(setuid, os.ModeSetuid|0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(tree, "kernel/fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestPackDropsBuildLinksAndHostileEntriesAndSaysSo(t *testing.T) {
	dir := t.TempDir()
	tree := makeTree(t, dir)
	plantHostileEntries(t, tree)
	if os.Geteuid() == 0 {
		if err := syscall.Mknod(filepath.Join(tree, "kernel/null"), syscall.S_IFCHR|0o666, 1<<8|3); err != nil {
			t.Fatal(err)
		}
	}
	res, err := Pack(PackOptions{Source: tree, Out: filepath.Join(dir, "b.tar.zst")})
	if err != nil {
		t.Fatal(err)
	}
	notes := strings.Join(res.Notes, "\n")
	for _, want := range []string{
		"dropped build -> /usr/src", "dropped source -> /home/builder/linux",
		"dropped kernel/passwd -> /etc/passwd: absolute link out of the tree",
		"dropped kernel/up -> ../../../../etc: link leaves the tree",
		"dropped kernel/other-tree", "cleared the setuid/setgid bit of kernel/drivers/suid.ko",
		"dropped kernel/fifo: a FIFO",
		"rewrote kernel/self -> /lib/modules/" + rel + "/kernel/drivers/a.ko as the relative ../kernel/drivers/a.ko",
	} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
	if os.Geteuid() == 0 && !strings.Contains(notes, "dropped kernel/null: a character device") {
		t.Errorf("the device node is not reported:\n%s", notes)
	}
	// What is left installs: nothing in it is refused.
	root := filepath.Join(dir, "root")
	in := &Installer{Root: root, Release: rel, Depmod: fakeDepmod}
	if _, err := in.Install(context.Background(), Bundle{URL: "file://" + res.Path, SHA256: res.SHA256}); err != nil {
		t.Fatalf("the cleaned bundle is refused: %v", err)
	}
	installed := filepath.Join(root, "lib/modules", rel)
	if l, err := os.Readlink(filepath.Join(installed, "kernel/self")); err != nil || l != "../kernel/drivers/a.ko" {
		t.Fatalf("kernel/self -> %q, %v", l, err)
	}
	if fi, err := os.Stat(filepath.Join(installed, "kernel/drivers/suid.ko")); err != nil || fi.Mode()&os.ModeSetuid != 0 {
		t.Fatalf("suid.ko: %v %v", fi, err)
	}
	for _, gone := range []string{"build", "source", "kernel/passwd", "kernel/up", "kernel/fifo", "kernel/null"} {
		if _, err := os.Lstat(filepath.Join(installed, gone)); err == nil {
			t.Errorf("%s was installed", gone)
		}
	}
}

func TestPackReadsADebianPackageLikeItsTree(t *testing.T) {
	dpkgDeb := testenv.Tool(t, "dpkg-deb")
	dir := t.TempDir()
	pkg := filepath.Join(dir, "pkg")
	tree := makeTree(t, pkg)
	os.MkdirAll(filepath.Join(pkg, "boot"), 0o755)
	os.WriteFile(filepath.Join(pkg, "boot", "vmlinuz-"+rel), []byte("kernel"), 0o644)
	os.MkdirAll(filepath.Join(pkg, "DEBIAN"), 0o755)
	os.WriteFile(filepath.Join(pkg, "DEBIAN", "control"), []byte("Package: linux-image-test\nVersion: 1\nArchitecture: arm64\nMaintainer: t <t@example.org>\nDescription: test\n"), 0o644)
	for _, comp := range []string{"xz", "gzip", "zstd", "none"} {
		t.Run("data.tar compressed with "+comp, func(t *testing.T) {
			deb := filepath.Join(dir, "p-"+comp+".deb")
			if out, err := exec.Command(dpkgDeb, "--root-owner-group", "-Z"+comp, "--build", pkg, deb).CombinedOutput(); err != nil {
				if comp == "zstd" && bytes.Contains(out, []byte("unknown compression")) {
					t.Skipf("this dpkg-deb cannot write zstd: %s", out)
				}
				t.Fatalf("dpkg-deb: %v: %s", err, out)
			}
			fromDeb, err := Pack(PackOptions{Source: deb, Out: filepath.Join(dir, comp+"-deb.tar.zst")})
			if err != nil {
				t.Fatal(err)
			}
			fromTree, err := Pack(PackOptions{Source: tree, Out: filepath.Join(dir, comp+"-tree.tar.zst")})
			if err != nil {
				t.Fatal(err)
			}
			if fromDeb.SHA256 != fromTree.SHA256 || fromDeb.Release != rel {
				t.Fatalf("package %+v and tree %+v differ", fromDeb, fromTree)
			}
			if fromDeb.Arch != "arm64" {
				t.Fatalf("arch %q, want the package's arm64", fromDeb.Arch)
			}
		})
	}
	if _, err := Pack(PackOptions{Source: filepath.Join(pkg, "DEBIAN", "control")}); err == nil || !strings.Contains(err.Error(), "not a directory, a Debian package or an rpm") {
		t.Fatalf("a text file: %v", err)
	}
}

func TestManifestFileEntriesAreAddedThenReplaced(t *testing.T) {
	p := filepath.Join(t.TempDir(), "manifest.json")
	e := ManifestEntry{Release: rel, Arch: "amd64", URL: "a.tar.zst", SHA256: strings.Repeat("a", 64), Size: 1, Format: "tar.zst"}
	if replaced, err := UpdateManifestFile(p, e); err != nil || replaced {
		t.Fatalf("first entry: %v %v", replaced, err)
	}
	other := e
	other.KernelID, other.URL = "aki-12345678", "b.tar.zst"
	if replaced, err := UpdateManifestFile(p, other); err != nil || replaced {
		t.Fatalf("entry for a kernel-id: %v %v", replaced, err)
	}
	e.SHA256 = strings.Repeat("b", 64)
	if replaced, err := UpdateManifestFile(p, e); err != nil || !replaced {
		t.Fatalf("new digest for the release: %v %v", replaced, err)
	}
	m, err := ParseManifest(readFile(t, p))
	if err != nil || len(m.Bundles) != 2 || m.Bundles[0].SHA256 != e.SHA256 || m.Bundles[1].KernelID != "aki-12345678" {
		t.Fatalf("manifest %+v %v", m, err)
	}
	got, err := m.Find(Kernel{Release: rel, Machine: "x86_64", KernelID: "aki-12345678"})
	if err != nil || got.URL != "b.tar.zst" {
		t.Fatalf("the kernel-id entry is not chosen: %+v %v", got, err)
	}

	os.WriteFile(p, []byte(`{"bundles": [{"releese": "x"}]}`), 0o644)
	if _, err := UpdateManifestFile(p, e); err == nil || !strings.Contains(err.Error(), "left as it was") {
		t.Fatalf("a broken manifest: %v", err)
	}
	if string(readFile(t, p)) != `{"bundles": [{"releese": "x"}]}` {
		t.Fatal("a broken manifest was rewritten")
	}
}

// needRealPackage is needRealKernel plus the cached .deb and the
// modules.dep that depmod -b makes of it.
func needRealPackage(t *testing.T) (realKernel, string, []byte) {
	t.Helper()
	k := needRealKernel(t)
	testenv.Tool(t, "depmod")
	debs, _ := filepath.Glob(filepath.Join(k.dir, "linux-image-*.deb"))
	testenv.Need(t, len(debs) == 1, "the cached linux-image .deb (run modules/testdata/fetch-kernel.sh)")
	return k, debs[0], referenceDep(t, k)
}
