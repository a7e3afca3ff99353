package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/flint-dev/flint/imds/imdstest"
)

func emulateCommand() Command {
	var (
		fixture, listen, faults, events string
		v2only, quiet                   bool
	)
	return Command{
		Name:  "emulate",
		Usage: "[--fixture FILE] [--listen ADDR] [--v2-only] [--faults SPEC] [--event SPEC] [--quiet]",
		Short: "serve an instance metadata emulator",
		Long: "Serves an instance metadata tree over HTTP, IMDSv2 tokens included, until interrupted. " +
			"SPEC is a list of ;-separated fault rules such as path=meta-data/*,status=503,retry-after=1,count=3 " +
			"or path=api/token,method=PUT,drop (keys: path, method, status, retry-after, latency, count, reset, drop, truncate). " +
			"--event serves interruption and maintenance notices: KIND[@+DELAY|@TIME] separated by ';', e.g. " +
			"'spot-stop@+30s;rebalance'; more can be injected at run time with POST /_flint/events?event=KIND on the same listener.",
		Exit:    exits("interrupted (SIGINT or SIGTERM)", "a bad fixture or fault rule, or the address cannot be listened on"),
		Signals: true,
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&fixture, "fixture", "", "YAML metadata tree `FILE` to serve (default: the built-in realistic instance)")
			fs.StringVar(&listen, "listen", "127.0.0.1:1338", "`ADDR` (host:port) to listen on")
			fs.BoolVar(&v2only, "v2-only", false, "require IMDSv2 tokens (HttpTokens=required)")
			fs.StringVar(&faults, "faults", "", "fault rules `SPEC`, e.g. 'path=meta-data/*,status=503,count=3;path=api/token,drop'")
			fs.StringVar(&events, "event", "", "notices `SPEC` to serve, e.g. 'spot-stop@+30s;rebalance'")
			fs.BoolVar(&quiet, "quiet", false, "do not log requests")
		},
		Func: func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
			if len(args) > 0 {
				return usageError(stderr, "flint emulate", "unexpected argument %q", args[0])
			}
			return cmdEmulate(ctx, fixture, listen, faults, events, v2only, quiet, stdout, stderr)
		},
	}
}

func cmdEmulate(ctx context.Context, fixture, listen, faults, events string, v2only, quiet bool, stdout, stderr io.Writer) int {
	var tree *imdstest.Tree
	var err error
	if fixture == "" {
		tree, err = imdstest.ParseFixture(imdstest.DefaultFixture)
	} else {
		tree, err = imdstest.LoadFixture(fixture)
	}
	if err != nil {
		return fail(stderr, "fixture: %v", err)
	}
	fl, err := imdstest.ParseFaults(faults)
	if err != nil {
		return fail(stderr, "--faults: %v", err)
	}
	evs, err := imdstest.ParseEvents(events, time.Now())
	if err != nil {
		return fail(stderr, "--event: %v", err)
	}
	opts := imdstest.Options{V2Only: v2only, Faults: fl, LogLimit: 10000, Events: evs}
	if !quiet {
		var mu sync.Mutex
		opts.OnRequest = func(r imdstest.Request) {
			// Only method, path and status: never tokens or values.
			mu.Lock()
			fmt.Fprintf(stderr, "%s %s\n", time.Now().Format("15:04:05.000"), r)
			mu.Unlock()
		}
	}
	emu := imdstest.New(tree, opts)
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fail(stderr, "%v", err)
	}
	var h http.Handler = emu
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	fmt.Fprintf(stdout, "flint emulate: serving on http://%s\n", ln.Addr())
	go func() {
		<-ctx.Done()
		emu.Close()
		srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fail(stderr, "%v", err)
	}
	return exitOK
}
