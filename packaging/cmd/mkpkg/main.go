// Command mkpkg builds flint's .deb and .rpm packages (make packages) and
// its man page (make install). It is a build tool, not part of flint.
//
//	mkpkg -version V -help-bin bin/flint -bin amd64=bin/amd64/flint -bin arm64=bin/arm64/flint -out dist
//	mkpkg -version V -help-bin bin/flint -man bin/flint.8.gz
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/flint-dev/flint/packaging"
)

type binFlag map[string]string

func (b binFlag) String() string { return fmt.Sprint(map[string]string(b)) }
func (b binFlag) Set(s string) error {
	arch, path, ok := strings.Cut(s, "=")
	if !ok || arch == "" || path == "" {
		return fmt.Errorf("want ARCH=PATH, got %q", s)
	}
	b[arch] = path
	return nil
}

func main() {
	bins := binFlag{}
	version := flag.String("version", "", "package version (digits first, no '-')")
	release := flag.String("release", "1", "rpm release")
	helpBin := flag.String("help-bin", "bin/flint", "a flint binary this machine runs, for the man page's help text")
	src := flag.String("src", "packaging", "the packaging directory")
	out := flag.String("out", "dist", "where the packages go")
	man := flag.String("man", "", "only write the gzipped man page to this file")
	formats := flag.String("formats", "deb,rpm", "package formats")
	flag.Var(bins, "bin", "ARCH=PATH of a flint binary to package (repeatable)")
	flag.Parse()
	if err := run(*version, *release, *helpBin, *src, *out, *man, strings.Split(*formats, ","), bins); err != nil {
		fmt.Fprintln(os.Stderr, "mkpkg:", err)
		os.Exit(1)
	}
}

// mtime is SOURCE_DATE_EPOCH when set (reproducible builds), else now.
func mtime() (time.Time, error) {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q: %w", s, err)
		}
		return time.Unix(n, 0).UTC(), nil
	}
	return time.Now().UTC().Truncate(time.Second), nil
}

func run(version, release, helpBin, src, out, man string, formats []string, bins binFlag) error {
	if version == "" || strings.ContainsAny(version, "- _/") || version[0] < '0' || version[0] > '9' {
		return fmt.Errorf("-version %q: want a version that starts with a digit and has no '-', space, '_' or '/'", version)
	}
	when, err := mtime()
	if err != nil {
		return err
	}
	top, cmds, err := packaging.CollectHelp(context.Background(), helpBin)
	if err != nil {
		return err
	}
	page, err := packaging.Gzip(packaging.ManPage(version, when, top, cmds))
	if err != nil {
		return err
	}
	if man != "" {
		return writeAtomic(man, page)
	}
	if len(bins) == 0 {
		return fmt.Errorf("no -bin ARCH=PATH given")
	}
	gen, err := os.MkdirTemp("", "mkpkg-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(gen)
	changelog, err := packaging.Gzip([]byte(packaging.Changelog(version, when)))
	if err != nil {
		return err
	}
	for name, data := range map[string][]byte{"flint.8.gz": page, "copyright": []byte(packaging.Copyright), "changelog.gz": changelog} {
		if err := os.WriteFile(filepath.Join(gen, name), data, 0o644); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	for _, arch := range []string{"amd64", "arm64"} {
		bin, ok := bins[arch]
		if !ok {
			continue
		}
		for _, f := range formats {
			b := packaging.Build{Format: f, Version: version, Release: release, Arch: arch, Binary: bin, Src: src, Gen: gen, MTime: when}
			if f == "deb" {
				b.Release = ""
			}
			if err := writePackage(filepath.Join(out, b.FileName()), b); err != nil {
				return err
			}
			fmt.Println(filepath.Join(out, b.FileName()))
		}
	}
	return nil
}

// writePackage builds into a temporary file and renames it into place, so
// a failed build never leaves a truncated package under the real name.
func writePackage(path string, b packaging.Build) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".mkpkg-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := b.Write(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func writeAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
