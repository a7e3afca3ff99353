package modules

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
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
		// Every symbolic link left in the tree must resolve inside it.
		if err == nil {
			filepath.WalkDir(tree, func(path string, d os.DirEntry, werr error) error {
				if werr == nil && d.Type()&os.ModeSymlink != 0 {
					if r, rerr := filepath.EvalSymlinks(path); rerr == nil {
						if rel, _ := filepath.Rel(tree, r); len(rel) >= 2 && rel[:2] == ".." {
							t.Fatalf("symlink %s resolves to %s, outside the tree", path, r)
						}
					}
				}
				return nil
			})
		}
	})
}
