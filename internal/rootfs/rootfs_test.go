package rootfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteFileIsAtomicAndLeavesNoTemporaries(t *testing.T) {
	dir := t.TempDir()
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, content := range []string{"one\n", "two\n"} {
		if err := r.WriteFile("etc/hostname", []byte(content), WriteOptions{Perm: 0o640, MkdirPerm: 0o755}); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, "etc/hostname"))
		if err != nil || string(b) != content {
			t.Fatalf("read back %q, %v; want %q", b, err, content)
		}
	}
	fi, _ := os.Stat(filepath.Join(dir, "etc/hostname"))
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", fi.Mode().Perm())
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "etc"))
	if len(ents) != 1 {
		t.Errorf("etc holds %d entries, want only hostname", len(ents))
	}
}

func TestSymlinksCannotEscapeTheRoot(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "home/u"), 0o755)
	// An absolute symlink resolves inside the root under InRoot...
	os.Symlink(outside, filepath.Join(dir, "home/u/.ssh"))
	r, _ := Open(dir)
	defer r.Close()
	err := r.WriteFile("home/u/.ssh/authorized_keys", []byte("x"), WriteOptions{MkdirPerm: 0o700})
	if _, serr := os.Stat(filepath.Join(outside, "authorized_keys")); serr == nil {
		t.Fatalf("a write followed a symlink out of the root (err %v)", err)
	}
	// ...and under Strict every symlink is refused.
	err = r.WriteFile("home/u/.ssh/authorized_keys", []byte("x"), WriteOptions{Resolution: Strict})
	if !errors.Is(err, ErrSymlink) {
		t.Fatalf("strict write through a symlinked dir: err = %v, want ErrSymlink", err)
	}
	os.Symlink("/etc/shadow", filepath.Join(dir, "home/u/keys"))
	err = r.WriteFile("home/u/keys", []byte("x"), WriteOptions{Resolution: Strict})
	if err == nil {
		t.Fatal("strict write replaced a symlink")
	}
	// ".." past the root stays at the root: the path means the root's
	// etc/passwd, never the host's.
	if _, err := r.ReadFile("home/u/../../../../etc/passwd", InRoot); err == nil {
		t.Fatal("read etc/passwd through .. in a root that has none: the host's file was reached")
	}
	if err := os.MkdirAll(filepath.Join(dir, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "etc/passwd"), []byte("inside the root\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := r.ReadFile("home/u/../../../../etc/passwd", InRoot)
	if err != nil || string(got) != "inside the root\n" {
		t.Fatalf("read through .. = %q, %v; want the root's own etc/passwd", got, err)
	}
}

func TestSymlinkSwitchIsAtomic(t *testing.T) {
	dir := t.TempDir()
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Symlink("instances/a", "instance"); err != nil {
		t.Fatal(err)
	}
	// A reader that looks while the link is switched back and forth must
	// always find a link to one target or the other: never no link (an
	// unlink then symlink) and never a half-made name.
	stop := make(chan struct{})
	seen := make(chan string, 1)
	go func() {
		defer close(seen)
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			got, err := os.Readlink(filepath.Join(dir, "instance"))
			if err != nil || (got != "instances/a" && got != "instances/b") {
				seen <- fmt.Sprintf("read %d: link = %q, %v", n, got, err)
				return
			}
		}
	}()
	for i := 0; i < 2000; i++ {
		target := []string{"instances/a", "instances/b"}[i%2]
		if err := r.Symlink(target, "instance"); err != nil {
			close(stop)
			t.Fatal(err)
		}
		if got, err := os.Readlink(filepath.Join(dir, "instance")); err != nil || got != target {
			close(stop)
			t.Fatalf("link = %q, %v; want %q", got, err, target)
		}
	}
	close(stop)
	if bad, ok := <-seen; ok {
		t.Fatalf("a reader saw the switch half done: %s", bad)
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 {
		t.Fatalf("after the switches the directory holds %v (%v); want only the link", entries, err)
	}
}

func TestPathsCrossMounts(t *testing.T) {
	// /proc is always another mount below "/": resolving through it must work.
	r, err := Open("/")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, res := range []Resolution{InRoot, Strict} {
		if _, err := r.ReadFile("proc/sys/kernel/ostype", res); err != nil {
			t.Errorf("reading across a mount (resolution %d): %v", res, err)
		}
	}
}

func TestResolveNamesTheHostPathInsideTheRoot(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "usr/lib/modules"), 0o755)
	// Merged /usr with an absolute link: followed on the host it would be
	// the host's /usr/lib.
	os.Symlink("/usr/lib", filepath.Join(dir, "lib"))
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	real, _ := filepath.EvalSymlinks(dir)
	if got, err := r.Resolve("lib/modules", InRoot); err != nil || got != filepath.Join(real, "usr/lib/modules") {
		t.Errorf("Resolve(lib/modules) = %q, %v; want %s", got, err, filepath.Join(real, "usr/lib/modules"))
	}
	if _, err := r.Resolve("lib/modules", Strict); !errors.Is(err, ErrSymlink) {
		t.Errorf("strict Resolve through a symlink: %v, want ErrSymlink", err)
	}
	if _, err := r.Resolve("lib/none", InRoot); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Resolve of a missing path: %v, want not exist", err)
	}
}

// WriteFiles puts every file in place, in two directories, with its
// mode; one that cannot be written leaves every file as it was and no
// temporary behind.
func TestWriteFilesPublishesAllOrNothingWritten(t *testing.T) {
	dir := t.TempDir()
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	os.MkdirAll(filepath.Join(dir, "etc/ssh"), 0o755)
	os.WriteFile(filepath.Join(dir, "etc/ssh/key"), []byte("old"), 0o600)
	writes := []FileWrite{
		{Rel: "etc/ssh/key", Data: []byte("new"), Options: WriteOptions{Perm: 0o600}},
		{Rel: "etc/ssh/key.pub", Data: []byte("pub"), Options: WriteOptions{Perm: 0o644}},
		{Rel: "etc/marker", Data: []byte("m"), Options: WriteOptions{Perm: 0o640}},
	}
	if err := r.WriteFiles(writes); err != nil {
		t.Fatal(err)
	}
	for rel, want := range map[string]string{"etc/ssh/key": "new -rw-------", "etc/ssh/key.pub": "pub -rw-r--r--", "etc/marker": "m -rw-r-----"} {
		b, _ := os.ReadFile(filepath.Join(dir, rel))
		fi, _ := os.Stat(filepath.Join(dir, rel))
		if got := fmt.Sprintf("%s %v", b, fi.Mode()); got != want {
			t.Errorf("%s: %s, want %s", rel, got, want)
		}
	}

	os.Symlink("/etc/shadow", filepath.Join(dir, "etc/ssh/link"))
	err = r.WriteFiles([]FileWrite{
		{Rel: "etc/ssh/key", Data: []byte("newer")},
		{Rel: "etc/ssh/link", Data: []byte("x"), Options: WriteOptions{Resolution: Strict}},
	})
	if err == nil {
		t.Fatal("a write over a symlink under Strict succeeded")
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "etc/ssh/key")); string(b) != "new" {
		t.Errorf("etc/ssh/key is %q after a refused WriteFiles, want the previous content", b)
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "etc/ssh"))
	if len(ents) != 3 {
		t.Errorf("etc/ssh holds %d entries, want key, key.pub and link only", len(ents))
	}
}
