package modules

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzExtract feeds arbitrary tar streams to Extract and checks that
// nothing ever appears beside the tree and that every error is one line.
//
//	go test -run '^$' -fuzz FuzzExtract -fuzztime 60s ./modules/
func FuzzExtract(f *testing.F) {
	p := "lib/modules/" + rel + "/"
	f.Add(makeTar(f, goodTree(rel, "seed")))
	f.Add(makeTar(f, []ent{{name: p + "l", typ: tar.TypeSymlink, link: ".."}, {name: p + "l/x", body: "x"}}))
	f.Add(makeTar(f, []ent{{name: p + "up", typ: tar.TypeSymlink, link: "../../.."}, {name: p + "h", typ: tar.TypeLink, link: p + "up"}}))
	f.Add(makeTar(f, []ent{{name: rel + "/a", body: "a"}, {name: p + "a", body: "b"}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		top := t.TempDir()
		tree := filepath.Join(top, "tree")
		if err := os.Mkdir(tree, 0o755); err != nil {
			t.Fatal(err)
		}
		_, err := Extract(bytes.NewReader(data), tree, rel, Limits{MaxEntries: 200, MaxFileSize: 1 << 20, MaxTotalSize: 4 << 20})
		if err != nil && bytes.ContainsRune([]byte(err.Error()), '\n') {
			t.Fatalf("multi-line error: %q", err)
		}
		ents, _ := os.ReadDir(top)
		if len(ents) != 1 || ents[0].Name() != "tree" {
			t.Fatalf("something was written beside the tree: %v", ents)
		}
		// Every symbolic link left in the tree must resolve inside it,
		// dangling ones included (a later file could complete them).
		if err == nil {
			filepath.WalkDir(tree, func(path string, d os.DirEntry, werr error) error {
				if werr == nil && d.Type()&os.ModeSymlink != 0 {
					if where, out := linkEscapes(tree, path); out {
						t.Fatalf("symlink %s leads to %s, outside the tree", path, where)
					}
				}
				return nil
			})
		}
	})
}

// linkEscapes follows the link at path the way the kernel would, one
// component at a time, and reports whether it leaves tree. Unlike
// filepath.EvalSymlinks it goes on past a missing component (the rest is
// taken as written), so a dangling link is checked too.
func linkEscapes(tree, path string) (string, bool) {
	target, err := os.Readlink(path)
	if err != nil {
		return "", false
	}
	cur := filepath.Dir(path)
	queue := strings.Split(target, "/")
	if filepath.IsAbs(target) {
		return target, true
	}
	inside := func(p string) bool {
		r, err := filepath.Rel(tree, p)
		return err == nil && r != ".." && !strings.HasPrefix(r, "../")
	}
	for hops := 0; len(queue) > 0; {
		c := queue[0]
		queue = queue[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			cur = filepath.Dir(cur)
			if !inside(cur) {
				return cur, true
			}
			continue
		}
		next := filepath.Join(cur, c)
		fi, err := os.Lstat(next)
		if err != nil || fi.Mode()&os.ModeSymlink == 0 {
			cur = next
			continue
		}
		if hops++; hops > 40 {
			return "", false // the kernel gives up too (ELOOP)
		}
		t, err := os.Readlink(next)
		if err != nil {
			return "", false
		}
		if filepath.IsAbs(t) {
			return t, true
		}
		queue = append(strings.Split(t, "/"), queue...)
	}
	return cur, !inside(cur)
}

func TestLinkEscapesFollowsDanglingAndChainedLinks(t *testing.T) {
	tree := t.TempDir()
	for _, l := range []struct{ name, target string }{
		{"up", "../.."},                  // out directly
		{"dangling-out", "../x/../../y"}, // out, and nothing there to resolve
		{"via", "sub/back/../.."},        // sub/back is a link: its ".." leaves
		{"sub/back", "../.."},
		{"ok", "sub/file"},
		{"dangling-in", "sub/missing"},
		{"abs", "/etc/passwd"},
	} {
		if err := os.MkdirAll(filepath.Join(tree, filepath.Dir(l.name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(l.target, filepath.Join(tree, l.name)); err != nil {
			t.Fatal(err)
		}
	}
	for name, want := range map[string]bool{"up": true, "dangling-out": true, "via": true, "sub/back": true, "abs": true, "ok": false, "dangling-in": false} {
		if _, got := linkEscapes(tree, filepath.Join(tree, name)); got != want {
			t.Errorf("linkEscapes(%s) = %v, want %v", name, got, want)
		}
	}
}
