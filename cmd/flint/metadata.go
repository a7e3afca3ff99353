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
	fs.StringVar(&f.endpoint, "endpoint", "", "metadata endpoint `URL` or auto (default: AWS_EC2_METADATA_SERVICE_ENDPOINT, else auto: "+imds.DefaultEndpoint+", then "+imds.DefaultIPv6Endpoint+")")
	fs.StringVar(&f.mode, "imds-mode", "v2-preferred", "`MODE`: v2-preferred, v2-only or v1")
	fs.StringVar(&f.ttl, "token-ttl", "21600", "IMDSv2 token lifetime in `SECONDS` (1-21600)")
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

// showSecretsHelp is the --show-secrets flag's line, the same for every
// command that prints metadata values.
const showSecretsHelp = "print role credentials' secret key and token as the service sends them (default: redacted)"

func getCommand() Command {
	var (
		f    imdsFlags
		show bool
	)
	return Command{
		Name:  "get",
		Usage: "[--show-secrets] [--endpoint URL] [--imds-mode MODE] [--token-ttl SECONDS] PATH",
		Short: "print one metadata value or listing",
		Long: "Prints the value or listing at PATH, relative to /latest/ (meta-data/instance-id) " +
			"or, with a leading /, to the server root (/2021-03-23/meta-data/ami-id).",
		Exit: exits("the value was printed", "it is absent (404) or could not be read"),
		Flags: func(fs *flag.FlagSet) {
			f.register(fs)
			fs.BoolVar(&show, "show-secrets", false, showSecretsHelp)
		},
		Func: func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
			if len(args) != 1 {
				return usageError(stderr, "flint get", "want one PATH, got %d operands", len(args))
			}
			c, err := f.client()
			if err != nil {
				return fail(stderr, "%v", err)
			}
			b, err := c.Get(ctx, args[0])
			if errors.Is(err, imds.ErrNotFound) {
				return fail(stderr, "%s: not found in instance metadata", args[0])
			}
			if err != nil {
				return fail(stderr, "%v", err)
			}
			if !show {
				b = imds.RedactValue(args[0], b)
			}
			stdout.Write(b)
			if len(b) > 0 && b[len(b)-1] != '\n' {
				io.WriteString(stdout, "\n")
			}
			return exitOK
		},
	}
}

func dumpCommand() Command {
	var (
		f            imdsFlags
		asJSON, show bool
	)
	return Command{
		Name:  "dump",
		Usage: "[--json] [--show-secrets] [--endpoint URL] [--imds-mode MODE] [--token-ttl SECONDS] [DIR]",
		Short: "print the whole metadata tree",
		Long: "Walks the metadata tree, or the part under DIR, and prints one \"path: value\" line per " +
			"value (newlines escaped, binary values as base64:...), or with --json one object nested like the tree.",
		Exit: exits("every value was printed", "some values could not be read (each named on stderr) or the walk failed"),
		Flags: func(fs *flag.FlagSet) {
			f.register(fs)
			fs.BoolVar(&asJSON, "json", false, "print a JSON object nested like the tree")
			fs.BoolVar(&show, "show-secrets", false, showSecretsHelp)
		},
		Func: func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
			if len(args) > 1 {
				return usageError(stderr, "flint dump", "unexpected argument %q", args[1])
			}
			var dir string
			if len(args) == 1 {
				dir = args[0]
			}
			return cmdDump(ctx, &f, dir, asJSON, show, stdout, stderr)
		},
	}
}

func cmdDump(ctx context.Context, f *imdsFlags, dir string, asJSON, showSecrets bool, stdout, stderr io.Writer) int {
	c, err := f.client()
	if err != nil {
		return fail(stderr, "%v", err)
	}
	entries, err := c.Dump(ctx, dir)
	if err != nil {
		return fail(stderr, "%v", err)
	}
	failed := 0
	for i, e := range entries {
		if !showSecrets && e.Err == nil {
			entries[i].Value = imds.RedactValue(e.Path, e.Value)
		}
		if e.Err != nil {
			failed++
			fmt.Fprintf(stderr, "flint: %s: %v\n", e.Path, e.Err)
		}
	}
	if asJSON {
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
