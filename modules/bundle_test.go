package modules

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// ent is one entry of a test archive.
type ent struct {
	name string
	typ  byte // 0 means regular file
	mode int64
	body string
	link string
}

var testMtime = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

func makeTar(t testing.TB, ents []ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Linkname: e.link, ModTime: testMtime, Format: tar.FormatPAX}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
			if h.Typeflag == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("tar header %s: %v", e.name, err)
		}
		if h.Typeflag == tar.TypeReg {
			io.WriteString(tw, e.body)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func compress(t testing.TB, f Format, raw []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	switch f {
	case FormatTar:
		return raw
	case FormatTarGz:
		w := gzip.NewWriter(&buf)
		w.Write(raw)
		w.Close()
	case FormatTarXz:
		w, err := xz.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(raw)
		w.Close()
	case FormatTarZst:
		w, err := zstd.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(raw)
		w.Close()
	default:
		t.Fatalf("format %q", f)
	}
	return buf.Bytes()
}

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// writeBundle stores b in dir and returns a Bundle for it.
func writeBundle(t testing.TB, dir, name string, b []byte) Bundle {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return Bundle{URL: "file://" + p, SHA256: digest(b)}
}

// goodTree is a small but realistic module tree for release rel.
func goodTree(rel, flavour string) []ent {
	p := "lib/modules/" + rel + "/"
	return []ent{
		{name: "lib/", typ: tar.TypeDir},
		{name: "lib/modules/", typ: tar.TypeDir},
		{name: p, typ: tar.TypeDir},
		{name: p + "kernel/", typ: tar.TypeDir},
		{name: p + "kernel/drivers/", typ: tar.TypeDir},
		{name: p + "kernel/drivers/a.ko", body: "module a " + flavour},
		{name: p + "kernel/drivers/b.ko", body: "module b " + flavour, mode: 0o600},
		{name: p + "kernel/fs/c.ko", body: strings.Repeat("c", 70000) + flavour},
		{name: p + "modules.order", body: "kernel/drivers/a.ko\nkernel/drivers/b.ko\n"},
		{name: p + "modules.builtin", body: "kernel/fs/ext4/ext4.ko\n"},
		{name: p + "extra", typ: tar.TypeSymlink, link: "kernel/drivers"},
		{name: p + "kernel/drivers/a-again.ko", typ: tar.TypeLink, link: p + "kernel/drivers/a.ko"},
	}
}

// fakeDepmod stands in for kmod's depmod where the test is not about it.
func fakeDepmod(_ context.Context, base, release string) error {
	return os.WriteFile(filepath.Join(base, "lib", "modules", release, "modules.dep"),
		[]byte("kernel/drivers/a.ko:\nkernel/drivers/b.ko: kernel/drivers/a.ko\n"), 0o644)
}

// snapshot describes every path under root (type, mode, size, content
// digest, link target), so two walks compare whole trees.
func snapshot(t testing.TB, root string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		desc := fmt.Sprintf("%v", fi.Mode())
		switch {
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += " " + digest(b)
		case fi.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			desc += " -> " + l
		}
		m[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", root, err)
	}
	return m
}

func diffSnapshots(a, b map[string]string) string {
	var out []string
	for k, v := range a {
		if w, ok := b[k]; !ok {
			out = append(out, "removed "+k)
		} else if v != w {
			out = append(out, fmt.Sprintf("changed %s: %s -> %s", k, v, w))
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, "added "+k)
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}
