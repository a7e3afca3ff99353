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
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"go.yaml.in/yaml/v3"

	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/handlers/builtin"
	"github.com/flint-dev/flint/internal/config"
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

func runCommand() Command {
	var (
		root, cfg, endpoint, only, skip string
		live, force, dry                bool
	)
	return Command{
		Name:  "run",
		Usage: "[--root DIR [--live]] [--config FILE] [--endpoint URL] [--only A,B] [--skip A,B] [--force] [--dry-run]",
		Short: "provision this instance (the boot chain)",
		Long: "Runs the chain of handlers once, as at boot: each handler that has not yet run at its " +
			"frequency for this instance, then the executables in handlers.exec_dir. The result is " +
			"recorded in /run/flint/status.json (see flint status).",
		Exit: []exitCode{
			{exitOK, "done: every handler succeeded, was skipped or (with --dry-run or without --live) planned"},
			{exitFail, "the run failed: a required handler, the configuration, the metadata, or a read-only " +
				"root and state directory (nothing was done; flint status says which)"},
			{exitUsage, "degraded: a handler failed or did only part of its work, or user-data asked for " +
				"something that was dropped (see flint status); the rest ran. Also bad usage"},
		},
		Signals: true,
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&root, "root", "/", "provision `DIR` instead of /")
			fs.BoolVar(&live, "live", false, "with --root other than /, also make live changes (hostname, netlink, modules) and run programs "+
				"(bootcmd, runcmd, boothooks, scripts, packages, plug-ins) chrooted in DIR with its /proc, /sys, /dev mounted "+
				"in a private mount namespace; DIR must hold /bin/sh, /proc, /sys and /dev")
			fs.StringVar(&cfg, "config", "", "config `FILE` (default ROOT/etc/flint/flint.yaml and flint.d/*.yaml)")
			fs.StringVar(&endpoint, "endpoint", "", "metadata endpoint `URL` (overrides config and environment)")
			fs.StringVar(&only, "only", "", "comma-separated `HANDLERS` to run")
			fs.StringVar(&skip, "skip", "", "comma-separated `HANDLERS` not to run")
			fs.BoolVar(&force, "force", false, "run handlers even if they already ran at their frequency")
			fs.BoolVar(&dry, "dry-run", false, "print what would be done; change and write nothing")
		},
		Func: func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
			if len(args) > 0 {
				return usageError(stderr, "flint run", "unexpected argument %q", args[0])
			}
			if live && !dry && root != "/" {
				if code := checkBootable(root, stderr); code != exitOK {
					return code
				}
			}
			st, err := handlers.Execute(ctx, handlers.Setup{
				Root: root, Live: live, DryRun: dry, ConfigFile: cfg, Endpoint: endpoint,
				Only: splitList(only), Skip: splitList(skip), Force: force,
				Catalog: builtin.Catalog(), Stderr: stderr, Stdout: stdout,
				Notify: func(s string) { daemon.SdNotify(false, s) },
			})
			if err != nil {
				return fail(stderr, "%v", err)
			}
			// A dry run exits as the real run would end.
			return st.ExitCode()
		},
	}
}

func statusCommand() Command {
	var (
		root         string
		wait, asJSON bool
		timeout      time.Duration
	)
	return Command{
		Name:  "status",
		Usage: "[--root DIR] [--wait [--timeout DURATION]] [--json]",
		Short: "show the last run's result; --wait for it to finish",
		Long: "Prints the state of the last run, its warnings (what user-data asked for that was dropped, " +
			"user-data that could not be read) and the handlers that failed, did part of their work, " +
			"wait for user-data or only planned their changes.",
		Exit: []exitCode{
			{exitOK, "the run is done and every handler succeeded"},
			{exitFail, "the run failed (the error line says why; a read-only root is one), is still running " +
				"(without --wait), or none is recorded"},
			{exitUsage, "degraded: a handler failed or did part of its work, or the run has warnings; or bad usage"},
			{exitTimeout, "--wait --timeout ran out before the run finished"},
		},
		Signals: true,
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&root, "root", "/", "the root `DIR` whose status to read")
			fs.BoolVar(&wait, "wait", false, "wait until the run has finished (also if it has not started yet)")
			fs.DurationVar(&timeout, "timeout", 0, "with --wait, give up after this long (0: never)")
			fs.BoolVar(&asJSON, "json", false, "print the status file as JSON")
		},
		Func: func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
			if len(args) > 0 {
				return usageError(stderr, "flint status", "unexpected argument %q", args[0])
			}
			return cmdStatus(ctx, root, wait, timeout, asJSON, stdout, stderr)
		},
	}
}

func cmdStatus(ctx context.Context, root string, wait bool, timeout time.Duration, asJSON bool, stdout, stderr io.Writer) int {
	r, err := rootfs.Open(root)
	if err != nil {
		return fail(stderr, "%v", err)
	}
	defer r.Close()
	var st *handlers.Status
	if wait {
		if timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		st, err = handlers.WaitStatus(ctx, r, 50*time.Millisecond)
		if errors.Is(err, context.DeadlineExceeded) {
			state := "not started"
			if st != nil {
				state = st.State
			}
			fmt.Fprintf(stderr, "flint: the run has not finished after %s (state: %s)\n", timeout, state)
			return exitTimeout
		}
	} else {
		st, err = handlers.ReadStatus(r)
	}
	if os.IsNotExist(err) {
		return fail(stderr, "no run recorded (%s does not exist)", r.Path(handlers.StatusPath))
	}
	if err != nil {
		return fail(stderr, "%v", err)
	}
	if asJSON {
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
		for _, w := range st.Warnings {
			fmt.Fprintf(stdout, "warning: %s\n", w)
		}
		for _, h := range st.Handlers {
			switch h.Status {
			case handlers.ResultFailed, handlers.ResultPlanned, handlers.ResultPartial, handlers.ResultNotRun:
				fmt.Fprintf(stdout, "%s: %s: %s\n", h.Name, h.Status, h.Reason)
			}
		}
	}
	return st.ExitCode()
}

func analyzeCommand() Command {
	var root string
	return Command{
		Name:  "analyze",
		Usage: "[--root DIR]",
		Short: "per-handler durations of the last run",
		Long:  "Prints each handler's time in the last run, slowest first, and the totals.",
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&root, "root", "/", "the root `DIR` whose last run to analyze")
		},
		Func: func(_ context.Context, args []string, stdout, stderr io.Writer) int {
			if len(args) > 0 {
				return usageError(stderr, "flint analyze", "unexpected argument %q", args[0])
			}
			r, err := rootfs.Open(root)
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
		},
	}
}

func configCommand() Command {
	var root string
	return Command{
		Name:  "config",
		Short: "check the configuration and print the effective one",
		Long:  "Commands on flint's own configuration, /etc/flint/flint.yaml and its drop-ins.",
		Commands: []Command{{
			Name:  "check",
			Usage: "[--root DIR] [FILE]",
			Short: "check the configuration and print the effective one",
			Long: "Reads FILE, or ROOT/etc/flint/flint.yaml and its drop-ins, strictly (an unknown key " +
				"is an error naming its file and line), checks every section and prints the merged result.",
			Exit: exits("the configuration is valid", "it is not (one line says where and why)"),
			Flags: func(fs *flag.FlagSet) {
				fs.StringVar(&root, "root", "/", "read `DIR`/etc/flint/flint.yaml and its drop-ins")
			},
			Func: func(_ context.Context, args []string, stdout, stderr io.Writer) int {
				if len(args) > 1 {
					return usageError(stderr, "flint config check", "unexpected argument %q", args[1])
				}
				var file string
				if len(args) == 1 {
					file = args[0]
				}
				cfg, err := builtin.Catalog().LoadConfig(root, file)
				if err != nil {
					return fail(stderr, "%v", err)
				}
				if err := builtin.Catalog().ValidateSections(cfg); err != nil {
					return fail(stderr, "%v", err)
				}
				out, err := effectiveConfig(cfg)
				if err != nil {
					return fail(stderr, "%v", err)
				}
				fmt.Fprintf(stdout, "# effective configuration from: %s\n%s", strings.Join(cfg.Files(), ", "), out)
				return exitOK
			},
		}},
	}
}

// effectiveConfig renders the core sections with their defaults, then
// each handler's section in the chain's order: with the defaults applied
// where its type says what they are (a Defaults method), else as the files
// set it (drop-ins merged), and a section no file sets and whose defaults
// are the handler's own is a comment saying so.
func effectiveConfig(cfg *config.Config) (string, error) {
	var b strings.Builder
	// One encoder a value: one encoder given several separates them as
	// documents.
	encode := func(v any) error {
		enc := yaml.NewEncoder(&b)
		enc.SetIndent(2)
		if err := enc.Encode(v); err != nil {
			return err
		}
		return enc.Close()
	}
	if err := encode(cfg); err != nil {
		return "", err
	}
	for _, d := range builtin.Catalog() {
		if d.Section == "" {
			continue
		}
		v := d.Config()
		defaults, known := v.(interface{ Defaults() })
		if known {
			defaults.Defaults()
		}
		set, err := cfg.Section(d.Section, v)
		if err != nil {
			return "", err
		}
		if !set && !known {
			fmt.Fprintf(&b, "# %s: not set (the %s handler's defaults)\n", d.Section, d.Name)
			continue
		}
		if err := encode(map[string]any{d.Section: v}); err != nil {
			return "", err
		}
	}
	return b.String(), nil
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
