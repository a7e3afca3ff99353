package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/flint-dev/flint/handlers/builtin"
	"github.com/flint-dev/flint/modules"
	"golang.org/x/sys/unix"
)

// modulesCommand is "flint modules install|status".
func modulesCommand() Command {
	var (
		f                                  imdsFlags
		root, release, bundle, sha, format string
		configFile                         string
		force, load, live, noMetadata      bool
		asJSON                             bool
	)
	return Command{
		Name:    "modules",
		Short:   "install or check a kernel's module bundle; pack, sign and verify bundles (vendors)",
		Long:    "Commands on the kernel-module tree of a kernel, ROOT/lib/modules/RELEASE, installed from a bundle.",
		Signals: true,
		Commands: append([]Command{{
			Name:  "install",
			Usage: "[--release R] [--bundle URL --sha256 HEX] [--format F] [--root DIR] [--config FILE] [--force] [--load [--live]] [--no-metadata]",
			Short: "install the bundle for a kernel unless its tree is complete",
			Long: "Resolves the kernel's bundle (from the configuration's modules section, or --bundle), " +
				"downloads and verifies it, and installs it atomically as ROOT/lib/modules/RELEASE. " +
				"A complete tree is left alone unless --force.",
			Exit: exits("the tree is in place (installed now or before)", "failure"),
			Flags: func(fs *flag.FlagSet) {
				f.register(fs)
				fs.StringVar(&root, "root", "/", "target root `DIR`: the tree goes to DIR/lib/modules/RELEASE")
				fs.StringVar(&release, "release", "", "kernel `RELEASE` to install (default: the running kernel's)")
				fs.StringVar(&bundle, "bundle", "", "bundle `URL` (file://, https://, http:// with --sha256, s3://) instead of the configured one")
				fs.StringVar(&sha, "sha256", "", "expected SHA-256 `HEX` of the bundle (required with --bundle)")
				fs.StringVar(&format, "format", "", "bundle `FORMAT`: tar, tar.gz, tar.xz or tar.zst (default: from the name and content)")
				fs.StringVar(&configFile, "config", "", "configuration `FILE` (default: ROOT/etc/flint/flint.yaml and its drop-ins)")
				fs.BoolVar(&force, "force", false, "resolve the bundle even if a complete tree is present, and reinstall if its digest differs")
				fs.BoolVar(&load, "load", false, "load the modules listed in the configuration afterwards")
				fs.BoolVar(&live, "live", false, "with --root other than /, allow loading modules into the running kernel")
				fs.BoolVar(&noMetadata, "no-metadata", false, "do not read instance metadata (kernel-id, region, role credentials)")
			},
			Func: func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
				if len(args) > 0 {
					return usageError(stderr, "flint modules install", "unexpected argument %q", args[0])
				}
				return modulesInstall(ctx, installArgs{&f, root, release, bundle, sha, format, configFile, force, load, live, noMetadata}, stdout, stderr)
			},
		}, {
			Name:  "status",
			Usage: "[--release R] [--root DIR] [--json]",
			Short: "report whether a kernel's module tree is complete",
			Long:  "Reports whether ROOT/lib/modules/RELEASE is present and indexed, and the bundle flint installed it from.",
			Exit: []exitCode{
				{exitOK, "the tree is complete"},
				{exitFail, "it is missing or not indexed (no modules.dep), or it could not be read"},
				{exitUsage, "an interrupted install left debris (the next install or boot cleans it); or bad usage"},
			},
			Flags: func(fs *flag.FlagSet) {
				fs.StringVar(&root, "root", "/", "root `DIR` whose lib/modules to inspect")
				fs.StringVar(&release, "release", "", "kernel `RELEASE` (default: the running kernel's)")
				fs.BoolVar(&asJSON, "json", false, "print JSON")
			},
			Func: func(_ context.Context, args []string, stdout, stderr io.Writer) int {
				if len(args) > 0 {
					return usageError(stderr, "flint modules status", "unexpected argument %q", args[0])
				}
				return modulesStatus(root, release, asJSON, stdout, stderr)
			},
		}}, modulesVendorCommands()...),
	}
}

type installArgs struct {
	f                                  *imdsFlags
	root, release, bundle, sha, format string
	configFile                         string
	force, load, live, noMetadata      bool
}

func modulesInstall(ctx context.Context, in installArgs, stdout, stderr io.Writer) int {
	f, root, release, bundle, sha, format := in.f, in.root, in.release, in.bundle, in.sha, in.format
	configFile, force, load, live, noMetadata := in.configFile, in.force, in.load, in.live, in.noMetadata
	if (bundle == "") != (sha == "") {
		return usageError(stderr, "flint modules install", "--bundle and --sha256 go together")
	}
	liveRoot := root == "/" || root == ""
	if release == "" && !liveRoot {
		return usageError(stderr, "flint modules install", "--release is required with --root other than / (the running kernel's release says nothing about an image)")
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
	cfg, err := builtin.Catalog().LoadConfig(root, configFile)
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
		if out.Record.IndexNote != "" {
			fmt.Fprintf(stderr, "flint: %s; depmod rebuilt it\n", out.Record.IndexNote)
		}
		fmt.Fprintf(stdout, "installed lib/modules/%s (sha256 %s, %d files, module index from the %s)\n", out.Kernel.Release, out.Record.SHA256, out.Record.Files, out.Record.Index)
	default:
		fmt.Fprintf(stdout, "lib/modules/%s is already complete; nothing to do\n", out.Kernel.Release)
	}
	for _, m := range out.Loaded {
		fmt.Fprintf(stdout, "loaded %s\n", modules.ModuleName(m))
	}
	return exitOK
}

func modulesStatus(root, release string, asJSON bool, stdout, stderr io.Writer) int {
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
		if r.Index != "" {
			fmt.Fprintf(stdout, "index:     from the %s\n", r.Index)
		}
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
