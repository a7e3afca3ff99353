package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"go.yaml.in/yaml/v3"

	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/internal/rootfs"
)

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("run", stderr)
	root := fs.String("root", "/", "provision this directory instead of /")
	live := fs.Bool("live", false, "with --root other than /, also make live changes (hostname, netlink, modules) and run programs (bootcmd, runcmd, boothooks, scripts, packages, plug-ins) chrooted in DIR with its /proc, /sys, /dev mounted in a private mount namespace; DIR must hold /bin/sh, /proc, /sys and /dev")
	cfg := fs.String("config", "", "config file (default ROOT/etc/flint/flint.yaml and flint.d/*.yaml)")
	endpoint := fs.String("endpoint", "", "metadata endpoint URL (overrides config and environment)")
	only := fs.String("only", "", "comma-separated handlers to run")
	skip := fs.String("skip", "", "comma-separated handlers not to run")
	force := fs.Bool("force", false, "run handlers even if they already ran at their frequency")
	dry := fs.Bool("dry-run", false, "print what would be done; change and write nothing")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: flint run [--root DIR [--live]] [--config F] [--only a,b] [--skip a,b] [--force] [--dry-run]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return exitUsage
	}
	if *live && !*dry && *root != "/" {
		if code := checkBootable(*root, stderr); code != exitOK {
			return code
		}
	}
	st, err := handlers.Execute(ctx, handlers.Setup{
		Root: *root, Live: *live, DryRun: *dry, ConfigFile: *cfg, Endpoint: *endpoint,
		Only: splitList(*only), Skip: splitList(*skip), Force: *force,
		Stderr: stderr, Stdout: stdout,
		Notify: func(s string) { daemon.SdNotify(false, s) },
	})
	if err != nil {
		return fail(stderr, "%v", err)
	}
	if *dry {
		return exitOK
	}
	return st.ExitCode()
}

func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("status", stderr)
	root := fs.String("root", "/", "the root whose status to read")
	wait := fs.Bool("wait", false, "wait until the run has finished (also if it has not started yet)")
	timeout := fs.Duration("timeout", 0, "with --wait, give up after this long (0: never)")
	asJSON := fs.Bool("json", false, "print the status file as JSON")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return exitUsage
	}
	r, err := rootfs.Open(*root)
	if err != nil {
		return fail(stderr, "%v", err)
	}
	defer r.Close()
	var st *handlers.Status
	if *wait {
		if *timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, *timeout)
			defer cancel()
		}
		st, err = handlers.WaitStatus(ctx, r, 50*time.Millisecond)
	} else {
		st, err = handlers.ReadStatus(r)
	}
	if os.IsNotExist(err) {
		return fail(stderr, "no run recorded (%s does not exist)", r.Path(handlers.StatusPath))
	}
	if err != nil {
		return fail(stderr, "%v", err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(st)
	} else {
		fmt.Fprintf(stdout, "status: %s\n", st.State)
		if st.InstanceID != "" {
			fmt.Fprintf(stdout, "instance: %s\n", st.InstanceID)
		}
		if st.Error != "" {
			fmt.Fprintf(stdout, "error: %s\n", st.Error)
		}
		for _, h := range st.Handlers {
			if h.Status == handlers.ResultFailed || h.Status == handlers.ResultPlanned {
				fmt.Fprintf(stdout, "%s: %s: %s\n", h.Name, h.Status, h.Reason)
			}
		}
	}
	return st.ExitCode()
}

func cmdAnalyze(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("analyze", stderr)
	root := fs.String("root", "/", "the root whose last run to analyze")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return exitUsage
	}
	r, err := rootfs.Open(*root)
	if err != nil {
		return fail(stderr, "%v", err)
	}
	defer r.Close()
	st, err := handlers.ReadStatus(r)
	if err != nil {
		return fail(stderr, "no run to analyze: %v", err)
	}
	fmt.Fprint(stdout, handlers.Blame(st))
	return exitOK
}

func cmdConfig(_ context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "check" {
		fmt.Fprintln(stderr, "usage: flint config check [--root DIR] [FILE]")
		return exitUsage
	}
	fs := newFlagSet("config check", stderr)
	root := fs.String("root", "/", "read ROOT/etc/flint/flint.yaml and its drop-ins")
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() > 1 {
		return exitUsage
	}
	cfg, err := handlers.LoadConfig(*root, fs.Arg(0))
	if err != nil {
		return fail(stderr, "%v", err)
	}
	if err := handlers.ValidateSections(cfg); err != nil {
		return fail(stderr, "%v", err)
	}
	fmt.Fprintf(stdout, "# effective configuration from: %s\n", strings.Join(cfg.Files(), ", "))
	enc := yaml.NewEncoder(stdout)
	enc.SetIndent(2)
	enc.Encode(cfg)
	return exitOK
}

// checkBootable refuses --root DIR --live before anything is written
// when programs could not run chrooted in DIR.
func checkBootable(dir string, stderr io.Writer) int {
	r, err := rootfs.Open(dir)
	if err != nil {
		return fail(stderr, "%v", err)
	}
	defer r.Close()
	if err := handlers.CheckBootable(r); err != nil {
		return fail(stderr, "%v; nothing was run or written", err)
	}
	return exitOK
}
