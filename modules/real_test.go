package modules

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/flint-dev/flint/internal/testenv"
)

// realKernel is Debian's cloud kernel as fetched by testdata/fetch-kernel.sh.
type realKernel struct {
	dir     string // the cache directory
	release string
	pkgTree string // the unpacked package's lib/modules/<release>
}

func (k realKernel) bundle(t testing.TB, ext string) Bundle {
	t.Helper()
	sum, err := os.ReadFile(filepath.Join(k.dir, "modules."+ext+".sha256"))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(k.dir, "modules."+ext)
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return Bundle{URL: "file://" + p, SHA256: strings.TrimSpace(string(sum)), Size: fi.Size()}
}

func kernelCache() string {
	if c := os.Getenv("FLINT_CACHE"); c != "" {
		return filepath.Join(c, "kernel")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "flint", "kernel")
}

// needRealKernel skips (fails under FLINT_REQUIRE_ALL=1) without the cache.
func needRealKernel(t testing.TB) realKernel {
	t.Helper()
	k := realKernel{dir: kernelCache()}
	r, err := os.ReadFile(filepath.Join(k.dir, "release"))
	testenv.Need(t, err == nil, "the Debian cloud kernel bundles (run modules/testdata/fetch-kernel.sh)")
	k.release = strings.TrimSpace(string(r))
	k.pkgTree = filepath.Join(k.dir, "pkg", "lib", "modules", k.release)
	if _, err := os.Stat(k.pkgTree); err != nil {
		testenv.Need(t, false, "the unpacked package in "+k.dir+" (run modules/testdata/fetch-kernel.sh)")
	}
	return k
}

var (
	refDepOnce sync.Once
	refDep     []byte
	refDepErr  error
)

// referenceDep is what depmod -b makes of a copy of the unpacked package
// (copied so the cache stays as the script left it).
func referenceDep(t testing.TB, k realKernel) []byte {
	t.Helper()
	refDepOnce.Do(func() {
		base, err := os.MkdirTemp("", "flint-refdep-")
		if err != nil {
			refDepErr = err
			return
		}
		defer os.RemoveAll(base)
		os.MkdirAll(filepath.Join(base, "lib", "modules"), 0o755)
		if out, err := exec.Command("cp", "-a", k.pkgTree, filepath.Join(base, "lib", "modules")).CombinedOutput(); err != nil {
			refDepErr = &exec.ExitError{Stderr: out}
			return
		}
		if out, err := exec.Command(testenv.Tool(t, "depmod"), "-b", base, k.release).CombinedOutput(); err != nil {
			t.Fatalf("depmod on the package: %v: %s", err, out)
		}
		refDep, refDepErr = os.ReadFile(filepath.Join(base, "lib", "modules", k.release, "modules.dep"))
	})
	if refDepErr != nil {
		t.Fatalf("reference modules.dep: %v", refDepErr)
	}
	return refDep
}

// TestRealDebianBundleInstallsLikeThePackage installs the Debian cloud
// kernel's modules from .tar.gz and .tar.zst with the real depmod and
// compares the result with the package: the same files, and the same
// modules.dep as depmod -b makes from the unpacked package.
func TestRealDebianBundleInstallsLikeThePackage(t *testing.T) {
	k := needRealKernel(t)
	testenv.Tool(t, "depmod")
	want := referenceDep(t, k)
	if len(want) == 0 || !bytes.Contains(want, []byte(".ko")) {
		t.Fatalf("the reference modules.dep is empty")
	}
	pkg := snapshot(t, k.pkgTree)
	for _, ext := range []string{"tar.gz", "tar.zst"} {
		t.Run("the "+ext+" bundle matches the package", func(t *testing.T) {
			root := t.TempDir()
			in := &Installer{Root: root, Release: k.release}
			res, err := in.Install(context.Background(), k.bundle(t, ext))
			if err != nil {
				t.Fatal(err)
			}
			tree := filepath.Join(root, "lib", "modules", k.release)
			got, err := os.ReadFile(filepath.Join(tree, "modules.dep"))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("modules.dep differs from depmod -b on the package (%d vs %d bytes)", len(got), len(want))
			}
			inst := snapshot(t, tree)
			for p, d := range pkg {
				if p == "." {
					continue // the top directory's mtime changes with the indexes depmod adds
				}
				if inst[p] != d {
					t.Errorf("%s: installed %q, package %q", p, inst[p], d)
				}
			}
			if res.Record.Files < 1000 {
				t.Errorf("only %d files installed", res.Record.Files)
			}
			again, err := in.Install(context.Background(), k.bundle(t, ext))
			if err != nil || !again.AlreadyInstalled {
				t.Fatalf("second install is not a no-op: %+v %v", again, err)
			}
		})
	}
}
