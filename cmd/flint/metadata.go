package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/flint-dev/flint/imds"
)

// imdsFlags are the endpoint flags every metadata-reading command takes.
type imdsFlags struct {
	endpoint string
	mode     string
	ttl      string
}

func (f *imdsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.endpoint, "endpoint", "", "metadata endpoint URL or auto (default: AWS_EC2_METADATA_SERVICE_ENDPOINT, else auto: "+imds.DefaultEndpoint+", then "+imds.DefaultIPv6Endpoint+")")
	fs.StringVar(&f.mode, "imds-mode", "v2-preferred", "v2-preferred, v2-only or v1")
	fs.StringVar(&f.ttl, "token-ttl", "21600", "IMDSv2 token lifetime in seconds (1-21600)")
}

func (f *imdsFlags) client() (*imds.Client, error) {
	mode, err := imds.ParseMode(f.mode)
	if err != nil {
		return nil, err
	}
	ttl, err := strconv.Atoi(f.ttl)
	if err != nil || ttl < 1 || ttl > 21600 {
		return nil, fmt.Errorf("--token-ttl %q: want a whole number of seconds from 1 to 21600", f.ttl)
	}
	return imds.New(imds.Options{Endpoint: f.endpoint, Mode: mode, TokenTTL: time.Duration(ttl) * time.Second})
}

// newFlagSet returns a FlagSet that reports errors on stderr and does not exit.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("flint "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func cmdGet(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("get", stderr)
	var f imdsFlags
	f.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: flint get [--endpoint URL] PATH   (PATH relative to /latest/, e.g. meta-data/instance-id)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return exitUsage
	}
	c, err := f.client()
	if err != nil {
		return fail(stderr, "%v", err)
	}
	b, err := c.Get(ctx, fs.Arg(0))
	if errors.Is(err, imds.ErrNotFound) {
		return fail(stderr, "%s: not found in instance metadata", fs.Arg(0))
	}
	if err != nil {
		return fail(stderr, "%v", err)
	}
	stdout.Write(b)
	if len(b) > 0 && b[len(b)-1] != '\n' {
		io.WriteString(stdout, "\n")
	}
	return exitOK
}

func cmdDump(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("dump", stderr)
	var f imdsFlags
	f.register(fs)
	asJSON := fs.Bool("json", false, "print a JSON object nested like the tree")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: flint dump [--json] [--endpoint URL] [DIR]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 1 {
		fs.Usage()
		return exitUsage
	}
	c, err := f.client()
	if err != nil {
		return fail(stderr, "%v", err)
	}
	entries, err := c.Dump(ctx, fs.Arg(0))
	if err != nil {
		return fail(stderr, "%v", err)
	}
	failed := 0
	for _, e := range entries {
		if e.Err != nil {
			failed++
			fmt.Fprintf(stderr, "flint: %s: %v\n", e.Path, e.Err)
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(nest(entries)); err != nil {
			return fail(stderr, "%v", err)
		}
	} else {
		for _, e := range entries {
			if e.Err == nil {
				fmt.Fprintf(stdout, "%s: %s\n", e.Path, printable(e.Value))
			}
		}
	}
	if failed > 0 {
		return exitFail
	}
	return exitOK
}

// printable renders a value on one line: text with newlines escaped,
// binary (gzip'd user-data) as base64 behind a "base64:" marker.
func printable(b []byte) string {
	if !utf8.Valid(b) {
		return "base64:" + base64.StdEncoding.EncodeToString(b)
	}
	return strings.ReplaceAll(string(b), "\n", `\n`)
}

// nest turns "a/b/c" leaves into nested JSON objects; binary values are
// base64 strings behind a "base64:" marker, as in the text form.
func nest(entries []imds.Entry) map[string]any {
	for i, e := range entries {
		if !utf8.Valid(e.Value) {
			entries[i].Value = []byte(printable(e.Value))
		}
	}
	return imds.Tree(entries, "")
}
