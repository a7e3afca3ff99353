package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/flint-dev/flint/handlers/builtin"
	"github.com/flint-dev/flint/userdata"
)

// The final message shows the version the binary was built with.
func init() { builtin.Version = version }

func userdataCommand() Command {
	var (
		f                       imdsFlags
		asJSON, noInclude, show bool
	)
	return Command{
		Name:  "userdata",
		Short: "inspect user-data: its parts and the merged cloud-config",
		Long:  "Commands on user-data, read as flint and cloud-init read it at boot.",
		Commands: []Command{{
			Name:  "inspect",
			Usage: "[FILE|-] [--json] [--no-include] [--show-secrets] [--endpoint URL] [--imds-mode MODE] [--token-ttl SECONDS]",
			Short: "list the parts of user-data and print the merged cloud-config",
			Long: "Lists the parts of user-data (FILE, - for stdin, else this instance's from the metadata " +
				"service) and the merged cloud-config, with passwords, tokens and private keys redacted " +
				"unless --show-secrets. Warnings (parts flint does not handle, includes not fetched) go to stderr.",
			Exit: exits("the user-data was read (warnings or not)", "it could not be read or decoded"),
			Flags: func(fs *flag.FlagSet) {
				f.register(fs)
				fs.BoolVar(&asJSON, "json", false, `print {"parts":[{"content_type","filename","size","sha256"}],"cloud_config":{...}}`)
				fs.BoolVar(&noInclude, "no-include", false, "do not fetch #include URLs (report them as warnings)")
				fs.BoolVar(&show, "show-secrets", false, "print passwords, tokens and private keys of the cloud-config (default: redacted)")
			},
			Func: func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
				if len(args) > 1 {
					return usageError(stderr, "flint userdata inspect", "unexpected argument %q", args[1])
				}
				return cmdUserdataInspect(ctx, &f, args, asJSON, noInclude, show, stdout, stderr)
			},
		}},
	}
}

func cmdUserdataInspect(ctx context.Context, f *imdsFlags, pos []string, asJSON, noInclude, showSecrets bool, stdout, stderr io.Writer) int {
	opts := userdata.Options{NoInclude: noInclude}
	// Templates render with the instance's data when an instance is
	// involved: its user-data, or --endpoint named with a file. A file
	// alone is inspected offline (its templates are reported unrendered).
	if len(pos) == 0 || f.endpoint != "" {
		opts.Lookup = func(ctx context.Context, o *userdata.Options, _, instanceData bool) error {
			if !instanceData {
				return nil
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			src, err := userdata.ReadInstanceSources(ctx, c, c.Endpoint())
			if err != nil {
				return err
			}
			o.InstanceData = userdata.BuildInstanceData(src)
			return nil
		}
	}
	var raw []byte
	var err error
	switch {
	case len(pos) == 1 && pos[0] == "-":
		raw, err = io.ReadAll(io.LimitReader(os.Stdin, userdata.DefaultMaxSize+1))
	case len(pos) == 1:
		raw, err = readCapped(pos[0], userdata.DefaultMaxSize+1)
	default:
		raw, err = instanceUserData(ctx, f, &opts)
	}
	if err != nil {
		return fail(stderr, "%v", err)
	}
	// No user-data at all (404) has no parts; an empty file is what
	// cloud-init makes of it: one empty part.
	ins := &userdata.Inspection{Parts: []userdata.PartInfo{}, CloudConfig: map[string]any{}}
	if raw != nil || len(pos) == 1 {
		if ins, err = userdata.Inspect(ctx, raw, opts); err != nil {
			return fail(stderr, "%v", err)
		}
	}
	for _, w := range ins.Warnings {
		fmt.Fprintf(stderr, "flint: warning: %s\n", w)
	}
	if !showSecrets {
		ins.CloudConfig = userdata.Redact(ins.CloudConfig)
	}
	if asJSON {
		if ins.CloudConfig == nil {
			ins.CloudConfig = map[string]any{}
		}
		ins.CloudConfig = jsonSafe(ins.CloudConfig).(map[string]any)
		enc := json.NewEncoder(stdout)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(ins); err != nil {
			return fail(stderr, "%v", err)
		}
		return exitOK
	}
	printInspection(stdout, ins)
	return exitOK
}

// readCapped reads at most max bytes of a file, so a huge file given by
// mistake is refused by Inspect's size cap instead of filling memory.
func readCapped(name string, max int64) ([]byte, error) {
	fh, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	return io.ReadAll(io.LimitReader(fh, max))
}

// instanceUserData reads this instance's user-data (none is empty) and
// its launch index, so parts meant for other instances of the same launch
// are left out as they are at boot.
func instanceUserData(ctx context.Context, f *imdsFlags, opts *userdata.Options) ([]byte, error) {
	c, err := f.client()
	if err != nil {
		return nil, err
	}
	raw, err := c.UserData(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading user-data: %w", err)
	}
	if raw == nil {
		return nil, nil
	}
	if v, err := c.Get(ctx, "meta-data/ami-launch-index"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(v))); err == nil {
			opts.LaunchIndex = &n
		}
	}
	return raw, nil
}

// jsonSafe replaces what JSON cannot hold (YAML's .nan and .inf) with
// the YAML spelling, as strings.
func jsonSafe(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = jsonSafe(x)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = jsonSafe(x)
		}
		return out
	case float64:
		switch {
		case math.IsNaN(v):
			return ".nan"
		case math.IsInf(v, 1):
			return ".inf"
		case math.IsInf(v, -1):
			return "-.inf"
		}
	}
	return v
}

func printInspection(w io.Writer, ins *userdata.Inspection) {
	fmt.Fprintf(w, "%d parts\n", len(ins.Parts))
	for _, p := range ins.Parts {
		fmt.Fprintf(w, "  %-16s %-32s %7d bytes  sha256:%s\n", p.Filename, p.ContentType, p.Size, p.SHA256)
	}
	if len(ins.CloudConfig) == 0 {
		fmt.Fprintln(w, "no cloud-config")
		return
	}
	fmt.Fprintf(w, "cloud-config (merged, %d keys):\n", len(ins.CloudConfig))
	var buf strings.Builder
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(ins.CloudConfig); err != nil {
		fmt.Fprintf(w, "  (cannot print: %v)\n", err)
		return
	}
	for _, line := range strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n") {
		fmt.Fprintln(w, "  "+line)
	}
}
