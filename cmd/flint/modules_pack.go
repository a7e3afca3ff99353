package main

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
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

// modulesVendorCommands are the vendor's subcommands of flint modules.
func modulesVendorCommands() []Command {
	var (
		po                                           modules.PackOptions
		format, manifest, bundleURL, kernelID, mtime string
		prefix, keyFile, sigOut, key, sigFile        string
	)
	return []Command{{
		Name:  "pack",
		Usage: "[--release R] [--arch A] [--format F] [--o FILE] [--manifest FILE [--url URL] [--kernel-id ID]] [--mtime SECONDS] [--no-index] SOURCE",
		Short: "pack a module tree or a kernel .deb or .rpm into a reproducible bundle",
		Long: "SOURCE is a release tree, a root holding lib/modules/RELEASE, or a kernel package (.deb, or .rpm with a " +
			"gzip, bzip2, xz or zstd payload), read without dpkg or rpm. The bundle is " +
			"reproducible: sorted entries, fixed times, owners and modes. build and source links are dropped; " +
			"links out of the tree, device nodes and setuid/setgid bits are dropped or cleared, each said on stderr. " +
			"The bundle carries the module index depmod builds from the packed tree, so instances need not run depmod " +
			"(--no-index leaves it out). With --manifest, the bundle's entry is added to or updated in that manifest " +
			"(sign it again afterwards).",
		Exit: exits("the bundle (and manifest) were written", "the source could not be read or packed"),
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&po.Release, "release", "", "kernel `RELEASE` (default: from the source)")
			fs.StringVar(&po.Arch, "arch", "", "`ARCH` for the manifest entry (default: the package's or the release's suffix)")
			fs.StringVar(&format, "format", "tar.zst", "bundle `FORMAT`: tar.zst, tar.gz, tar.xz or tar")
			fs.StringVar(&po.Out, "o", "", "bundle `FILE` (default: RELEASE.FORMAT in the current directory)")
			fs.StringVar(&manifest, "manifest", "", "manifest `FILE` to add the bundle's entry to (created if missing)")
			fs.StringVar(&bundleURL, "url", "", "the bundle's `URL` in the manifest (default: its file name, relative to the manifest)")
			fs.StringVar(&kernelID, "kernel-id", "", "kernel-id (aki-…) `ID` the entry also requires")
			fs.StringVar(&mtime, "mtime", os.Getenv("SOURCE_DATE_EPOCH"), "time of every entry, Unix `SECONDS` (default: $SOURCE_DATE_EPOCH, else 0)")
			fs.BoolVar(&po.NoIndex, "no-index", false, "leave depmod's module index out of the bundle (instances run depmod)")
		},
		Func: func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
			if len(args) != 1 {
				return usageError(stderr, "flint modules pack", "want one SOURCE (a directory, a .deb or an .rpm)")
			}
			po.Source = args[0]
			return modulesPack(po, format, manifest, bundleURL, kernelID, mtime, stdout, stderr)
		},
	}, {
		Name:  "keygen",
		Usage: "[--out PREFIX]",
		Short: "make an ed25519 key pair for signing manifests",
		Long:  "Writes PREFIX.key (PKCS#8 PEM, mode 0600) and PREFIX.pub (SPKI PEM), the forms openssl uses; never overwrites a key.",
		Exit:  exits("the key pair was written", "a file exists or could not be written"),
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&prefix, "out", "modules-signing", "file name `PREFIX`")
		},
		Func: func(_ context.Context, args []string, stdout, stderr io.Writer) int {
			if len(args) > 0 {
				return usageError(stderr, "flint modules keygen", "unexpected argument %q", args[0])
			}
			return modulesKeygen(prefix, stdout, stderr)
		},
	}, {
		Name:  "sign",
		Usage: "--key PRIVATE [--o SIG] MANIFEST",
		Short: "sign a manifest",
		Long: "PRIVATE is PKCS#8 PEM (openssl genpkey -algorithm ed25519), an OpenSSH ed25519 key, or a raw seed " +
			"in hex or base64. A manifest an instance would refuse is not signed.",
		Exit: exits("the signature was written", "the manifest or the key is bad"),
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&keyFile, "key", "", "private key `FILE`")
			fs.StringVar(&sigOut, "o", "", "signature `FILE` (default: MANIFEST.sig)")
		},
		Func: func(_ context.Context, args []string, stdout, stderr io.Writer) int {
			if len(args) != 1 || keyFile == "" {
				return usageError(stderr, "flint modules sign", "want --key PRIVATE and one MANIFEST")
			}
			return modulesSign(keyFile, sigOut, args[0], stdout, stderr)
		},
	}, {
		Name:  "verify",
		Usage: "--key PUBLIC [--sig SIG] MANIFEST",
		Short: "verify a manifest's signature and list its bundles",
		Long:  "PUBLIC is a file or a value: PEM (openssl pkey -pubout), an ssh-ed25519 line, or 32 bytes in hex or base64.",
		Exit:  exits("the signature is good", "it is not, or a file could not be read"),
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&key, "key", "", "public key: a `FILE`, or the key itself")
			fs.StringVar(&sigFile, "sig", "", "signature `FILE` (default: MANIFEST.sig)")
		},
		Func: func(_ context.Context, args []string, stdout, stderr io.Writer) int {
			if len(args) != 1 || key == "" {
				return usageError(stderr, "flint modules verify", "want --key PUBLIC and one MANIFEST")
			}
			return modulesVerify(key, sigFile, args[0], stdout, stderr)
		},
	}}
}

func modulesPack(o modules.PackOptions, format, manifest, bundleURL, kernelID, mtime string, stdout, stderr io.Writer) int {
	f, err := modules.ParseFormat(format)
	if err != nil || f == "" {
		return usageError(stderr, "flint modules pack", "--format %q: want tar.zst, tar.gz, tar.xz or tar", format)
	}
	o.Format = f
	if mtime != "" {
		sec, err := strconv.ParseInt(mtime, 10, 64)
		if err != nil {
			return usageError(stderr, "flint modules pack", "--mtime %q: want Unix seconds", mtime)
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
	index := "no module index"
	if res.Index != "" {
		index = "module index by " + res.Index
	}
	fmt.Fprintf(stdout, "wrote %s: release %s, arch %s, %d files, %d bytes, %s, sha256 %s\n",
		res.Path, res.Release, orNone(res.Arch), res.Files, res.Size, index, res.SHA256)
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

func modulesKeygen(prefix string, stdout, stderr io.Writer) int {
	priv, pub, key, err := modules.GenerateKey()
	if err != nil {
		return fail(stderr, "generate key: %v", err)
	}
	// O_EXCL: an existing signing key is never overwritten.
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{{prefix + ".key", priv, 0o600}, {prefix + ".pub", pub, 0o644}} {
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
	fmt.Fprintf(stdout, "wrote %s.key (keep it secret) and %s.pub (%s)\n", prefix, prefix, modules.KeyFingerprint(key))
	fmt.Fprintf(stdout, "instance configuration:\n  modules:\n    public_key: %s\n", base64.StdEncoding.EncodeToString(key))
	return exitOK
}

func modulesSign(keyFile, out, manifest string, stdout, stderr io.Writer) int {
	raw, err := os.ReadFile(manifest)
	if err != nil {
		return fail(stderr, "%v", err)
	}
	// Signing a manifest an instance would refuse helps nobody.
	if _, err := modules.ParseManifest(raw); err != nil {
		return fail(stderr, "manifest %s: %v (not signed)", manifest, err)
	}
	keyBytes, err := os.ReadFile(keyFile)
	if err != nil {
		return fail(stderr, "%v", err)
	}
	priv, err := modules.ParsePrivateKey(keyBytes)
	if err != nil {
		return fail(stderr, "key %s: %v", keyFile, err)
	}
	sigFile := out
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

func modulesVerify(key, sigFile, manifest string, stdout, stderr io.Writer) int {
	if sigFile == "" {
		sigFile = manifest + ".sig"
	}
	pubText := key
	if b, err := os.ReadFile(key); err == nil {
		pubText = string(b)
	}
	pub, err := modules.ParsePublicKey(pubText)
	if err != nil {
		return fail(stderr, "key %s: %v", key, err)
	}
	raw, err := os.ReadFile(manifest)
	if err != nil {
		return fail(stderr, "%v", err)
	}
	sig, err := os.ReadFile(sigFile)
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
