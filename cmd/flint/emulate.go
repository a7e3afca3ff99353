package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/flint-dev/flint/imds/imdstest"
)

func cmdEmulate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("emulate", stderr)
	fixture := fs.String("fixture", "", "YAML metadata tree to serve (default: the built-in realistic instance)")
	listen := fs.String("listen", "127.0.0.1:1338", "address to listen on")
	v2only := fs.Bool("v2-only", false, "require IMDSv2 tokens (HttpTokens=required)")
	faults := fs.String("faults", "", "fault rules, e.g. 'path=meta-data/*,status=503,count=3;path=api/token,drop'")
	quiet := fs.Bool("quiet", false, "do not log requests")
	events := fs.String("event", "", "notices to serve, KIND[@+DELAY|@TIME] separated by ';', e.g. 'spot-stop@+30s;rebalance' (more at runtime: POST /_flint/events?event=...)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: flint emulate [--fixture F] [--listen ADDR] [--v2-only] [--faults SPEC] [--event SPEC]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	var tree *imdstest.Tree
	var err error
	if *fixture == "" {
		tree, err = imdstest.ParseFixture(imdstest.DefaultFixture)
	} else {
		tree, err = imdstest.LoadFixture(*fixture)
	}
	if err != nil {
		return fail(stderr, "fixture: %v", err)
	}
	fl, err := imdstest.ParseFaults(*faults)
	if err != nil {
		return fail(stderr, "--faults: %v", err)
	}
	evs, err := imdstest.ParseEvents(*events, time.Now())
	if err != nil {
		return fail(stderr, "--event: %v", err)
	}
	opts := imdstest.Options{V2Only: *v2only, Faults: fl, LogLimit: 10000, Events: evs}
	if !*quiet {
		var mu sync.Mutex
		opts.OnRequest = func(r imdstest.Request) {
			// Only method, path and status: never tokens or values.
			mu.Lock()
			fmt.Fprintf(stderr, "%s %s\n", time.Now().Format("15:04:05.000"), r)
			mu.Unlock()
		}
	}
	emu := imdstest.New(tree, opts)
	ln, err := net.Listen("tcp", *listen)
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
