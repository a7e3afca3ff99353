package ec2metadata

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/flint-dev/flint/imds"
)

// tokenError is the line the script prints on stdout, exiting 1, when it
// cannot get a token; flint prints it when the service cannot be used at
// all, so scripts that test for it keep working.
const tokenError = "[ERROR] Could not get IMDSv2 token. Instance Metadata might have been disabled or this is not an EC2 instance.\n"

// DefaultTimeout bounds a whole query, retries included, when the caller's
// context has no deadline: long enough to ride out a slow or briefly
// unavailable service, short enough that a script on a machine without
// one is not stuck (the script's curl could wait minutes).
const DefaultTimeout = 10 * time.Second

// prog names the command in messages on stderr.
const prog = "flint query"

// Main is `flint query ARGS` (and flint run as `ec2-metadata ARGS`). It
// parses args, calls connect with the --endpoint value ("" when none) only
// if the command reads metadata, runs it, and returns the exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer, connect func(endpoint string) (Getter, error)) int {
	c := Parse(args)
	var g Getter
	if c.needsMetadata() {
		var err error
		if g, err = connect(c.Endpoint); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", prog, err)
			return 1
		}
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
			defer cancel()
		}
	}
	return c.Run(ctx, g, stdout, stderr)
}

// Run executes the command, reading metadata through g (unused, and may be
// nil, when the command only prints help), and writes its output. The exit
// code is 0 on success, absent keys ("not available") included; 1 after a
// bad argument, when the service cannot be used (the script's token error
// line), or when some path failed for a reason other than absence (those
// print "not available" like the script, and the reason goes to stderr).
func (c *Command) Run(ctx context.Context, g Getter, stdout, stderr io.Writer) int {
	code := 0
	// Help and usage steps fetch nothing: with only those, g is not used.
	f := newFetcher(ctx, g)
	defer f.cancel()
	results := resolve(f, c.steps)
	if !c.ShowSecrets {
		for _, r := range results {
			if r.kind == metricStep && r.v.found() {
				r.v.raw = imds.RedactValue(r.path, r.v.raw)
			}
		}
	}
	failed, service := f.failures()
	if service != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prog, service)
		if !c.JSON {
			io.WriteString(stdout, tokenError)
		}
		return 1
	}
	for _, x := range failed {
		// The client's errors name the request; that is the path.
		fmt.Fprintf(stderr, "%s: %v\n", prog, x.err)
		code = 1
	}

	help := false
	for _, r := range results {
		switch r.kind {
		case usageStep:
			fmt.Fprintf(stderr, "%s: %s\n", prog, r.problem)
			code = 1
		case helpStep:
			help = true
		}
	}

	var out []byte
	switch {
	case !c.JSON:
		var b strings.Builder
		writeText(&b, results, c.Quiet)
		out = []byte(b.String())
	case hasKind(results, usageStep):
		// A bad argument with --json: stdout holds JSON or nothing.
	case help && !c.needsMetadata():
		out = []byte(helpText)
	default:
		var err error
		if out, err = writeJSON(results); err != nil {
			fmt.Fprintf(stderr, "%s: encoding JSON: %v\n", prog, err)
			return 1
		}
	}
	if _, err := stdout.Write(out); err != nil {
		fmt.Fprintf(stderr, "%s: writing output: %v\n", prog, err)
		return 1
	}
	return code
}

func hasKind(results []*result, k kind) bool {
	for _, r := range results {
		if r.kind == k {
			return true
		}
	}
	return false
}
