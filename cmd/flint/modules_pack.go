package main

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
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

const modulesVendorUsage = `vendor subcommands (see docs/modules.md):
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
	case "keygen":
		return modulesKeygen(args[1:], stdout, stderr)
	case "sign":
		return modulesSign(args[1:], stdout, stderr)
	case "verify":
		return modulesVerify(args[1:], stdout, stderr)
	}
	return exitUsage
}

// checkModulesConfig is config check's look at the modules section beyond
// its keys: URLs, digests, the public key (see modules.Config.Validate).
func checkModulesConfig(cfg interface {
	Section(name string, v any) (bool, error)
}) error {
	var mc modules.Config
	if _, err := cfg.Section("modules", &mc); err != nil {
		return err
	}
	return mc.Validate()
}

func modulesKeygen(args []string, stdout, stderr io.Writer) int {
	const usage = "usage: flint modules keygen [--out PREFIX]\n\nWrites PREFIX.key (PKCS#8 PEM, mode 0600) and PREFIX.pub (SPKI PEM), the forms openssl uses."
	fs, parse := vendorFlagSet("modules keygen", usage, stdout, stderr)
	prefix := fs.String("out", "modules-signing", "file name prefix")
	operands, code, ok := parse(args)
	if !ok {
		return code
	}
	if len(operands) > 0 {
		fmt.Fprintf(stderr, "flint modules keygen: unexpected argument %q\n", operands[0])
		return exitUsage
	}
	priv, pub, key, err := modules.GenerateKey()
	if err != nil {
		return fail(stderr, "generate key: %v", err)
	}
	// O_EXCL: an existing signing key is never overwritten.
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{{*prefix + ".key", priv, 0o600}, {*prefix + ".pub", pub, 0o644}} {
		fh, err := os.OpenFile(f.name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, f.mode)
		if err != nil {
			return fail(stderr, "keygen: %v (nothing overwritten)", err)
		}
		_, err = fh.Write(f.data)
		if cerr := fh.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(f.name)
			return fail(stderr, "keygen: write %s: %v", f.name, err)
		}
	}
	fmt.Fprintf(stdout, "wrote %s.key (keep it secret) and %s.pub (%s)\n", *prefix, *prefix, modules.KeyFingerprint(key))
	fmt.Fprintf(stdout, "instance configuration:\n  modules:\n    public_key: %s\n", base64.StdEncoding.EncodeToString(key))
	return exitOK
}

func modulesSign(args []string, stdout, stderr io.Writer) int {
	const usage = "usage: flint modules sign --key PRIVATE [-o SIG] MANIFEST\n\nPRIVATE is PKCS#8 PEM (openssl genpkey -algorithm ed25519), an OpenSSH ed25519 key, or a raw seed in hex or base64."
	fs, parse := vendorFlagSet("modules sign", usage, stdout, stderr)
	keyFile := fs.String("key", "", "private key file")
	out := fs.String("o", "", "signature file (default: MANIFEST.sig)")
	operands, code, ok := parse(args)
	if !ok {
		return code
	}
	if len(operands) != 1 || *keyFile == "" {
		fmt.Fprintln(stderr, "flint modules sign: want --key PRIVATE and one MANIFEST")
		return exitUsage
	}
	manifest := operands[0]
	raw, err := os.ReadFile(manifest)
	if err != nil {
		return fail(stderr, "%v", err)
	}
	// Signing a manifest an instance would refuse helps nobody.
	if _, err := modules.ParseManifest(raw); err != nil {
		return fail(stderr, "manifest %s: %v (not signed)", manifest, err)
	}
	keyBytes, err := os.ReadFile(*keyFile)
	if err != nil {
		return fail(stderr, "%v", err)
	}
	priv, err := modules.ParsePrivateKey(keyBytes)
	if err != nil {
		return fail(stderr, "key %s: %v", *keyFile, err)
	}
	sigFile := *out
	if sigFile == "" {
		sigFile = manifest + ".sig"
	}
	sig := modules.SignManifest(raw, priv)
	if err := modules.WriteFileAtomic(sigFile, func(w io.Writer) error { _, err := w.Write(sig); return err }); err != nil {
		return fail(stderr, "write %s: %v", sigFile, err)
	}
	fmt.Fprintf(stdout, "signed %s with %s: %s\n", manifest, modules.KeyFingerprint(priv.Public().(ed25519.PublicKey)), sigFile)
	return exitOK
}

func modulesVerify(args []string, stdout, stderr io.Writer) int {
	const usage = "usage: flint modules verify --key PUBLIC [--sig SIG] MANIFEST\n\nPUBLIC is a file or a value: PEM (openssl pkey -pubout), an ssh-ed25519 line, or 32 bytes in hex or base64."
	fs, parse := vendorFlagSet("modules verify", usage, stdout, stderr)
	key := fs.String("key", "", "public key: a file, or the key itself")
	sigFile := fs.String("sig", "", "signature file (default: MANIFEST.sig)")
	operands, code, ok := parse(args)
	if !ok {
		return code
	}
	if len(operands) != 1 || *key == "" {
		fmt.Fprintln(stderr, "flint modules verify: want --key PUBLIC and one MANIFEST")
		return exitUsage
	}
	manifest := operands[0]
	if *sigFile == "" {
		*sigFile = manifest + ".sig"
	}
	pubText := *key
	if b, err := os.ReadFile(*key); err == nil {
		pubText = string(b)
	}
	pub, err := modules.ParsePublicKey(pubText)
	if err != nil {
		return fail(stderr, "key %s: %v", *key, err)
	}
	raw, err := os.ReadFile(manifest)
	if err != nil {
		return fail(stderr, "%v", err)
	}
	sig, err := os.ReadFile(*sigFile)
	if err != nil {
		return fail(stderr, "%v", err)
	}
	if err := modules.VerifyManifest(raw, sig, pubText); err != nil {
		return fail(stderr, "manifest %s: %v", manifest, err)
	}
	m, err := modules.ParseManifest(raw)
	if err != nil {
		return fail(stderr, "manifest %s: signed, but %v", manifest, err)
	}
	fmt.Fprintf(stdout, "manifest %s: signature good (%s), %d bundles\n", manifest, modules.KeyFingerprint(pub), len(m.Bundles))
	for _, b := range m.Bundles {
		fmt.Fprintf(stdout, "  release %s kernel_id %s arch %s: %s (%s, sha256 %s)\n", orNone(b.Release), orNone(b.KernelID), orNone(b.Arch), b.URL, orNone(b.Format), b.SHA256)
	}
	return exitOK
}
