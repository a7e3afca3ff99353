package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/modules"
	"golang.org/x/sys/unix"
)

// Keeps staticcheck quiet until main.go's command table lists cmdModules;
// harmless afterwards.

// cmdModules implements "flint modules install|status".
//
//	flint modules install [--release R] [--bundle URL --sha256 HEX] [--root DIR] [--force] [--load]
//	flint modules status  [--release R] [--root DIR] [--json]
//
// install exits 0 when the tree is in place (installed now or before), 1 on
// failure, 2 on bad usage. status exits 0 when the tree is complete, 1 when
// it is missing or not indexed, 2 when an interrupted install left debris
// (the next install or boot cleans it).
func cmdModules(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: flint modules install|status [flags]")
		return exitUsage
	}
	switch args[0] {
	case "install":
		return modulesInstall(ctx, args[1:], stdout, stderr)
	case "status":
		return modulesStatus(args[1:], stdout, stderr)
	case "pack", "keygen", "sign", "verify":
		return modulesVendor(ctx, args, stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, "usage: flint modules install|status [flags]")
		fmt.Fprintln(stdout, modulesVendorUsage)
		return exitOK
	}
	fmt.Fprintf(stderr, "flint modules: unknown subcommand %q (want install, status, pack, keygen, sign or verify)\n", args[0])
	return exitUsage
}

func modulesInstall(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("modules install", stderr)
	var (
		f                                  imdsFlags
		root, release, bundle, sha, format string
		configFile                         string
		force, load, live, noMetadata      bool
	)
	f.register(fs)
	fs.StringVar(&root, "root", "/", "target root: the tree goes to ROOT/lib/modules/RELEASE")
	fs.StringVar(&release, "release", "", "kernel release to install (default: the running kernel's)")
	fs.StringVar(&bundle, "bundle", "", "bundle URL (file://, https://, http:// with --sha256, s3://) instead of the configured one")
	fs.StringVar(&sha, "sha256", "", "expected SHA-256 of the bundle (required with --bundle)")
	fs.StringVar(&format, "format", "", "bundle format: tar, tar.gz, tar.xz or tar.zst (default: from the name and content)")
	fs.StringVar(&configFile, "config", "", "configuration file (default: ROOT/etc/flint/flint.yaml and its drop-ins)")
	fs.BoolVar(&force, "force", false, "resolve the bundle even if a complete tree is present, and reinstall if its digest differs")
	fs.BoolVar(&load, "load", false, "load the modules listed in the configuration afterwards")
	fs.BoolVar(&live, "live", false, "with --root other than /, allow loading modules into the running kernel")
	fs.BoolVar(&noMetadata, "no-metadata", false, "do not read instance metadata (kernel-id, region, role credentials)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "flint modules install: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	if (bundle == "") != (sha == "") {
		fmt.Fprintln(stderr, "flint modules install: --bundle and --sha256 go together")
		return exitUsage
	}
	liveRoot := root == "/" || root == ""
	if release == "" && !liveRoot {
		fmt.Fprintln(stderr, "flint modules install: --release is required with --root other than / (the running kernel's release says nothing about an image)")
		return exitUsage
	}

	o := modules.Options{Root: root, Release: release, Force: force, Progress: stderr, TTY: isTerminal(stderr)}
	o.Load = load && (liveRoot || live)
	if load && !o.Load {
		fmt.Fprintln(stderr, "flint: not loading modules: --root is not / (add --live to load anyway)")
	}
	if bundle != "" {
		fm, err := modules.ParseFormat(format)
		if err != nil {
			return fail(stderr, "%v", err)
		}
		// A digest given on the command line is pinned by the operator.
		o.Bundle = &modules.Bundle{URL: bundle, SHA256: sha, Format: fm, Pinned: true}
	}
	cfg, err := handlers.LoadConfig(root, configFile)
	if err != nil {
		return fail(stderr, "%v", err)
	}
	if _, err := cfg.Section("modules", &o.Config); err != nil {
		return fail(stderr, "%v", err)
	}
	if liveRoot && !noMetadata {
		c, err := f.client()
		if err != nil {
			return fail(stderr, "%v", err)
		}
		o.Metadata = c
	}
	// The AWS SDKs' order: the environment's keys, then the instance role.
	o.Credentials = modules.DefaultCredentials(o.Metadata)
	out, err := modules.Ensure(ctx, o)
	if err != nil {
		return fail(stderr, "%v", err)
	}
	switch out.Action {
	case modules.ActionInstalled:
		fmt.Fprintf(stdout, "installed lib/modules/%s (sha256 %s, %d files)\n", out.Kernel.Release, out.Record.SHA256, out.Record.Files)
	default:
		fmt.Fprintf(stdout, "lib/modules/%s is already complete; nothing to do\n", out.Kernel.Release)
	}
	for _, m := range out.Loaded {
		fmt.Fprintf(stdout, "loaded %s\n", modules.ModuleName(m))
	}
	return exitOK
}

func modulesStatus(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("modules status", stderr)
	var root, release string
	var asJSON bool
	fs.StringVar(&root, "root", "/", "root whose lib/modules to inspect")
	fs.StringVar(&release, "release", "", "kernel release (default: the running kernel's)")
	fs.BoolVar(&asJSON, "json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if release == "" {
		r, _, err := modules.Uname()
		if err != nil {
			return fail(stderr, "%v", err)
		}
		release = r
	}
	st, err := modules.ReadStatus(root, release)
	if err != nil {
		return fail(stderr, "%v", err)
	}
	code := exitOK
	switch {
	case st.Old || len(st.Leftovers) > 0:
		code = 2
	case !st.Present || !st.Indexed:
		code = exitFail
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(st); err != nil {
			return fail(stderr, "%v", err)
		}
		return code
	}
	fmt.Fprintf(stdout, "release:   %s\n", st.Release)
	fmt.Fprintf(stdout, "directory: %s\n", st.Dir)
	switch {
	case !st.Present:
		fmt.Fprintln(stdout, "state:     missing")
	case !st.Indexed:
		fmt.Fprintln(stdout, "state:     present, no modules.dep (run depmod)")
	case st.Record == nil:
		fmt.Fprintln(stdout, "state:     complete (shipped with the image)")
	default:
		fmt.Fprintln(stdout, "state:     complete (installed by flint)")
	}
	if r := st.Record; r != nil {
		fmt.Fprintf(stdout, "bundle:    %s\n", r.URL)
		fmt.Fprintf(stdout, "sha256:    %s\n", r.SHA256)
		fmt.Fprintf(stdout, "installed: %s (%d files, %d bytes)\n", r.InstalledAt.Format("2006-01-02 15:04:05Z"), r.Files, r.Bytes)
	}
	if code == 2 {
		debris := st.Leftovers
		if st.Old {
			debris = append(debris, st.Release+".flint-old")
		}
		fmt.Fprintf(stdout, "warning:   an interrupted install left %s; the next install cleans it up\n", strings.Join(debris, " "))
	}
	return code
}

// isTerminal decides between a redrawn progress line and one line per 10%.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
