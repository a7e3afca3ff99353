package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/flint-dev/flint/events"
	"github.com/flint-dev/flint/handlers/builtin"
	"github.com/flint-dev/flint/imds"
	"github.com/flint-dev/flint/internal/logging"
	"github.com/flint-dev/flint/internal/rootfs"
)

func eventsCommand() Command {
	var (
		root, cfgFile, endpoint string
		asJSON, dry             bool
	)
	return Command{
		Name:  "events",
		Usage: "[watch] [--root DIR] [--config FILE] [--endpoint URL] [--json] [--dry-run]",
		Short: "print pending interruption and maintenance notices, or watch for them",
		Long: "Without an operand, prints the notices pending now: Spot interruption, rebalance " +
			"recommendation, scheduled maintenance events and the Auto Scaling lifecycle state. " +
			"`flint events watch` is the agent of flint-events.service: it polls those paths at the periods " +
			"of the events section of flint.yaml and, once per notice, logs it and runs the executables in " +
			"ROOT/etc/flint/events.d with the notice as JSON on stdin, and the configured actions (log, shutdown).",
		Exit:    exits("nothing went wrong (with watch: stopped by SIGINT or SIGTERM)", "failure (one line says what)"),
		Signals: true,
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&root, "root", "/", "read configuration and hooks, and keep state, below `DIR`")
			fs.StringVar(&cfgFile, "config", "", "configuration `FILE` (default ROOT/etc/flint/flint.yaml and flint.d/*.yaml)")
			fs.StringVar(&endpoint, "endpoint", "", "metadata endpoint `URL` or auto (overrides config and environment)")
			fs.BoolVar(&asJSON, "json", false, "print the pending notices as a JSON list")
			fs.BoolVar(&dry, "dry-run", false, "with watch: log what hooks and actions would do; run none")
		},
		Func: func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
			watch := false
			switch {
			case len(args) == 1 && args[0] == "watch":
				watch = true
			case len(args) > 0:
				return usageError(stderr, "flint events", "unexpected argument %q", args[0])
			}
			return cmdEvents(ctx, watch, root, cfgFile, endpoint, asJSON, dry, stdout, stderr)
		},
	}
}

// cmdEvents is `flint events` (print what is pending now) and `flint
// events watch` (the agent of flint-events.service).
func cmdEvents(ctx context.Context, watch bool, rootDir, cfgFile, endpoint string, asJSON, dry bool, stdout, stderr io.Writer) int {
	root := &rootDir
	r, err := rootfs.Open(*root)
	if err != nil {
		return fail(stderr, "%v", err)
	}
	defer r.Close()
	cfg, err := builtin.Catalog().LoadConfig(r.Dir(), cfgFile)
	if err != nil {
		return fail(stderr, "%v", err)
	}
	if endpoint == "" {
		endpoint = cfg.IMDS.Endpoint
	}
	mode, _ := imds.ParseMode(cfg.IMDS.Mode) // validated by config.Load
	log := logging.New(cfg.Log.Target, cfg.Log.Level, stderr)
	client, err := imds.New(imds.Options{
		Endpoint: endpoint, Mode: mode, TokenTTL: time.Duration(cfg.IMDS.TokenTTL),
		// A poll that fails is repeated at the next period anyway: two
		// quick attempts, so a dead endpoint costs one period, not minutes.
		AttemptTimeout: 2 * time.Second, MaxAttempts: 2, MaxBackoff: 500 * time.Millisecond,
		Logf: func(f string, a ...any) { log.Debug(fmt.Sprintf(f, a...)) },
	})
	if err != nil {
		return fail(stderr, "%v", err)
	}
	if !watch {
		return printPending(ctx, client, asJSON, stdout, stderr)
	}
	seen, err := events.OpenSeen(r, events.BootID())
	if err != nil {
		log.Warn(err.Error())
	}
	w := &events.Watcher{
		Metadata: client,
		Config:   cfg.Events,
		Seen:     seen,
		Hooks:    &events.Hooks{Root: r, Dir: cfg.Events.HooksDir, Timeout: time.Duration(cfg.Events.HookTimeout), Log: log, DryRun: dry},
		Log:      log,
	}
	for _, a := range cfg.Events.Actions {
		if a == "shutdown" {
			w.Shutdown = &events.Shutdown{Command: cfg.Events.ShutdownCommand, Log: log, DryRun: dry}
		}
	}
	log.Info("watching for notices", "endpoint", client.Endpoint(),
		"spot", time.Duration(cfg.Events.Periods.Spot).String(), "scheduled", time.Duration(cfg.Events.Periods.Scheduled).String())
	if err := w.Watch(ctx); err != nil {
		return fail(stderr, "%v", err)
	}
	return exitOK
}

func printPending(ctx context.Context, client *imds.Client, asJSON bool, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	notices, err := events.Pending(ctx, client)
	if asJSON {
		if notices == nil {
			notices = []events.Notice{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(notices)
	} else {
		for _, n := range notices {
			fmt.Fprintf(stdout, "%-9s %-24s %s  %s\n", n.Kind, n.Action, n.Time.UTC().Format(time.RFC3339), n.ID)
		}
		if len(notices) == 0 && err == nil {
			fmt.Fprintln(stdout, "no notices pending")
		}
	}
	if err != nil {
		return fail(stderr, "%v", err)
	}
	return exitOK
}
