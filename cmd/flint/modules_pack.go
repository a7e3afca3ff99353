package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/flint-dev/flint/modules"
)

// The vendor half of kernel-module bundles: pack a tree or a package into
// a bundle and a manifest entry, make a key pair, sign and verify the
// manifest. See docs/modules.md.

const modulesVendorUsage = `usage:
  flint modules pack [--release R] [--arch A] [--format tar.zst|tar.gz|tar.xz] [-o FILE]
                     [--manifest FILE [--url URL] [--kernel-id ID]] SOURCE
  flint modules keygen [--out PREFIX]
  flint modules sign --key PRIVATE [-o SIG] MANIFEST
  flint modules verify --key PUBLIC [--sig SIG] MANIFEST`

// vendorFlagSet is newFlagSet with the usage convention of these
// subcommands: --help prints to stdout and succeeds; a bad flag is one
// line on stderr and exit 2. Flags may follow the operands; parse returns
// the operands.
func vendorFlagSet(name, usage string, stdout, stderr io.Writer) (*flag.FlagSet, func([]string) ([]string, int, bool)) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	parse := func(args []string) ([]string, int, bool) {
		var operands []string
		for {
			err := fs.Parse(args)
			switch {
			case errors.Is(err, flag.ErrHelp):
				fs.SetOutput(stdout)
				fmt.Fprintln(stdout, usage)
				fs.PrintDefaults()
				return nil, exitOK, false
			case err != nil:
				fmt.Fprintf(stderr, "flint %s: %v\n", name, err)
				return nil, exitUsage, false
			}
			args = fs.Args()
			if len(args) == 0 {
				return operands, 0, true
			}
			operands = append(operands, args[0])
			args = args[1:]
		}
	}
	return fs, parse
}

func modulesPack(_ context.Context, args []string, stdout, stderr io.Writer) int {
	const usage = "usage: flint modules pack [flags] SOURCE\n\nSOURCE is a release tree, a root holding lib/modules/RELEASE, or a kernel .deb."
	fs, parse := vendorFlagSet("modules pack", usage, stdout, stderr)
	var o modules.PackOptions
	var format, manifest, bundleURL, kernelID, mtime string
	fs.StringVar(&o.Release, "release", "", "kernel release (default: from the source)")
	fs.StringVar(&o.Arch, "arch", "", "architecture for the manifest entry (default: the package's or the release's suffix)")
	fs.StringVar(&format, "format", "tar.zst", "bundle format: tar.zst, tar.gz, tar.xz or tar")
	fs.StringVar(&o.Out, "o", "", "bundle file (default: RELEASE.FORMAT in the current directory)")
	fs.StringVar(&manifest, "manifest", "", "manifest file to add the bundle's entry to (created if missing)")
	fs.StringVar(&bundleURL, "url", "", "the bundle's URL in the manifest (default: its file name, relative to the manifest)")
	fs.StringVar(&kernelID, "kernel-id", "", "kernel-id (aki-…) the entry also requires")
	fs.StringVar(&mtime, "mtime", os.Getenv("SOURCE_DATE_EPOCH"), "time of every entry, Unix seconds (default: $SOURCE_DATE_EPOCH, else 0)")
	operands, code, ok := parse(args)
	if !ok {
		return code
	}
	if len(operands) != 1 {
		fmt.Fprintln(stderr, "flint modules pack: want one SOURCE (a directory or a .deb)")
		return exitUsage
	}
	o.Source = operands[0]
	f, err := modules.ParseFormat(format)
	if err != nil || f == "" {
		fmt.Fprintf(stderr, "flint modules pack: --format %q: want tar.zst, tar.gz, tar.xz or tar\n", format)
		return exitUsage
	}
	o.Format = f
	if mtime != "" {
		sec, err := strconv.ParseInt(mtime, 10, 64)
		if err != nil {
			fmt.Fprintf(stderr, "flint modules pack: --mtime %q: want Unix seconds\n", mtime)
			return exitUsage
		}
		o.MTime = time.Unix(sec, 0)
	}
	res, err := modules.Pack(o)
	if err != nil {
		return fail(stderr, "%v", err)
	}
	for _, n := range res.Notes {
		fmt.Fprintf(stderr, "flint: pack: %s\n", n)
	}
	fmt.Fprintf(stdout, "wrote %s: release %s, arch %s, %d files, %d bytes, sha256 %s\n",
		res.Path, res.Release, orNone(res.Arch), res.Files, res.Size, res.SHA256)
	if manifest == "" {
		return exitOK
	}
	if bundleURL == "" {
		bundleURL = relativeTo(filepath.Dir(manifest), res.Path)
	}
	e := modules.ManifestEntry{Release: res.Release, KernelID: kernelID, Arch: res.Arch,
		URL: bundleURL, SHA256: res.SHA256, Size: res.Size, Format: string(res.Format)}
	replaced, err := modules.UpdateManifestFile(manifest, e)
	if err != nil {
		return fail(stderr, "%v", err)
	}
	verb := "added"
	if replaced {
		verb = "updated"
	}
	fmt.Fprintf(stdout, "%s the entry for release %s in %s (sign it again: flint modules sign)\n", verb, res.Release, manifest)
	return exitOK
}

// relativeTo names the bundle as the manifest refers to it: relative when
// both sit in one tree that is uploaded as is.
func relativeTo(dir, p string) string {
	if r, err := filepath.Rel(dir, p); err == nil && !filepath.IsAbs(r) && r != ".." && !hasDotDot(r) {
		return filepath.ToSlash(r)
	}
	return filepath.Base(p)
}

func hasDotDot(r string) bool {
	return len(r) >= 3 && r[:3] == ".."+string(filepath.Separator)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// modulesVendor runs the vendor subcommands named by args[0].
func modulesVendor(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	switch args[0] {
	case "pack":
		return modulesPack(ctx, args[1:], stdout, stderr)
	}
	return exitUsage
}
