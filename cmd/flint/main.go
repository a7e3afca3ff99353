// Command flint provisions a cloud instance at first boot and answers
// instance metadata queries. Each subcommand lives in its own file; this
// file holds the command table and the conventions every command follows.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
)

// Exit codes shared by every subcommand.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
	// exitTimeout: `flint status --wait --timeout` gave up before the
	// run finished; distinct from a finished run's codes.
	exitTimeout = 3
)

// Command is one entry of the command table. Its help text is data:
// `flint CMD --help` prints helpText(path, c), and the flint(8) manual is
// generated from the same text.
//
// Every command follows one convention: --help and -h print its help on
// stdout and exit 0; a bad flag, a wrong operand or an unknown subcommand
// prints one line on stderr and exits 2; its help lists its exit codes.
// `flint query` alone keeps ec2-metadata's command line, where -h is
// --local-hostname.
type Command struct {
	Name string
	// Usage follows "flint NAME" in the usage line: flags and operands.
	Usage string
	// Short is the one line of the command list.
	Short string
	// Long is the help's description, as paragraphs.
	Long string
	// Exit lists the exit codes; nil means stdExits.
	Exit []exitCode
	// Flags declares the command's flags. It is a function, not a built
	// FlagSet, so that a run builds only its own command's flags.
	Flags func(fs *flag.FlagSet)
	// Func runs the command with the operands left after the flags.
	Func func(ctx context.Context, args []string, stdout, stderr io.Writer) int
	// Commands are nested subcommands; a command has these or a Func.
	Commands []Command
	// Raw commands get their arguments unparsed and print their own help.
	Raw bool
	// Help returns the help a Raw command prints for --help.
	Help func() string
	// Signals: the command cancels its context on SIGINT/SIGTERM and
	// cleans up; short ones just die, and skip the signal goroutine's
	// start-up cost.
	Signals bool
}

type exitCode struct {
	code    int
	meaning string
}

var stdExits = []exitCode{
	{exitOK, "success"},
	{exitFail, "failure (one line on stderr says what failed)"},
	{exitUsage, "bad usage: an unknown flag, subcommand or operand"},
}

// table lists the top-level commands in the order `flint --help` shows
// them. It is static data (no init-time work), and an entry is built only
// when it runs or for help: a run pays for its own command alone, which
// matters to the one-shot `query` and `ssh-keys`.
var table = [...]struct {
	name  string
	build func() Command
}{
	{"run", runCommand},
	{"local", localCommand},
	{"status", statusCommand},
	{"analyze", analyzeCommand},
	{"config", configCommand},
	{"query", queryCommand},
	{"get", getCommand},
	{"dump", dumpCommand},
	{"userdata", userdataCommand},
	{"network", networkCommand},
	{"modules", modulesCommand},
	{"ssh-keys", sshKeysCommand},
	{"clean", cleanCommand},
	{"events", eventsCommand},
	{"emulate", emulateCommand},
	{"version", versionCommand},
}

// exits lists a command's exit codes: what 0 and 1 mean for it, and 2
// for bad usage.
func exits(ok, failed string) []exitCode {
	return []exitCode{{exitOK, ok}, {exitFail, failed}, {exitUsage, "bad usage"}}
}

// commands builds the whole table.
func commands() []Command {
	out := make([]Command, len(table))
	for i, e := range table {
		out[i] = e.build()
	}
	return out
}

func versionCommand() Command {
	return Command{
		Name:  "version",
		Short: "print the version",
		Long:  "Prints \"flint\" and the version it was built as; flint --version is the same.",
		Exit:  []exitCode{{exitOK, "always"}, {exitUsage, "bad usage"}},
		Func:  cmdVersion,
	}
}

// flintCommand is flint itself: the root of the table.
func flintCommand() Command {
	return Command{
		Name:  "flint",
		Short: "first-boot provisioning and instance metadata",
		Long: "flint provisions a cloud instance at first boot (users, SSH keys, host keys, " +
			"user-data, kernel modules, network interfaces) and answers instance metadata queries. " +
			"Installed as ec2-metadata, it is flint query.",
		Exit: []exitCode{
			{exitOK, "--help or --version"},
			{exitUsage, "no command or an unknown one"},
		},
		Commands: commands(),
	}
}

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(dispatch(context.Background(), os.Args, os.Stdout, os.Stderr))
}

func dispatch(ctx context.Context, argv []string, stdout, stderr io.Writer) int {
	if name := filepath.Base(argv[0]); name == "ec2-metadata" {
		q := queryCommand()
		return q.Func(ctx, argv[1:], stdout, stderr)
	}
	if len(argv) > 1 && argv[1] == "--version" {
		return cmdVersion(ctx, nil, stdout, stderr)
	}
	if len(argv) > 2 && argv[1] == "help" {
		// `flint help CMD...` is `flint CMD... --help`.
		argv = append(append([]string{argv[0]}, argv[2:]...), "--help")
	} else if len(argv) == 2 && argv[1] == "help" {
		argv = []string{argv[0], "--help"}
	}
	if len(argv) > 1 {
		for _, e := range table {
			if e.name == argv[1] {
				return enter(ctx, []string{"flint"}, e.build(), argv[2:], stdout, stderr)
			}
		}
	}
	return execute(ctx, nil, flintCommand(), argv[1:], stdout, stderr)
}

// enter runs sub, a subcommand of path, with the signal handling it asks for.
func enter(ctx context.Context, path []string, sub Command, args []string, stdout, stderr io.Writer) int {
	if sub.Signals {
		var stop context.CancelFunc
		ctx, stop = signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		defer stop()
	}
	return execute(ctx, path, sub, args, stdout, stderr)
}

// execute runs c, reached through the commands in path, with args.
func execute(ctx context.Context, path []string, c Command, args []string, stdout, stderr io.Writer) int {
	path = append(path, c.Name)
	name := strings.Join(path, " ")
	if c.Raw {
		return c.Func(ctx, args, stdout, stderr)
	}
	if c.Commands != nil {
		if len(args) == 0 {
			return usageError(stderr, name, "missing command")
		}
		switch args[0] {
		case "-h", "--help", "-help":
			io.WriteString(stdout, helpText(path, c))
			return exitOK
		}
		for _, sub := range c.Commands {
			if sub.Name == args[0] {
				return enter(ctx, path, sub, args[1:], stdout, stderr)
			}
		}
		if strings.HasPrefix(args[0], "-") {
			return usageError(stderr, name, "unknown flag %s", args[0])
		}
		return usageError(stderr, name, "unknown command %q", args[0])
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	// The flag package's own messages are multi-line (error, then usage);
	// ours are one line, built below.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if c.Flags != nil {
		c.Flags(fs)
	}
	operands, err := parseInterleaved(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		io.WriteString(stdout, helpText(path, c))
		return exitOK
	}
	if err != nil {
		return usageError(stderr, name, "%s", dashes(err.Error()))
	}
	return c.Func(ctx, operands, stdout, stderr)
}

// parseInterleaved parses flags that may come before, between or after
// the operands ("flint userdata inspect FILE --json"); "--" ends the
// flags.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var operands []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return operands, nil
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(operands, rest...), nil
		}
		operands = append(operands, rest[0])
		args = rest[1:]
	}
}

// dashes rewrites the flag package's "-name" in its error messages as the
// "--name" every usage line and flag listing shows.
func dashes(msg string) string {
	for _, p := range []string{"defined: -", "flag -", "for -", "argument: -"} {
		msg = strings.Replace(msg, p, p+"-", 1)
	}
	return strings.Replace(msg, "flag provided but not defined: ", "unknown flag ", 1)
}

// usageError prints one line for bad usage and returns exitUsage.
func usageError(stderr io.Writer, name, format string, args ...any) int {
	fmt.Fprintf(stderr, "%s: %s (see '%s --help')\n", name, fmt.Sprintf(format, args...), name)
	return exitUsage
}

// helpText is the help of c, reached through path ("flint", "modules",
// "install"): usage line, description, subcommands or flags, exit codes.
func helpText(path []string, c Command) string {
	if c.Help != nil {
		return c.Help()
	}
	name := strings.Join(path, " ")
	var b strings.Builder
	switch {
	case c.Commands != nil:
		fmt.Fprintf(&b, "Usage: %s COMMAND [flags]\n", name)
	case c.Usage != "":
		fmt.Fprintf(&b, "Usage: %s %s\n", name, c.Usage)
	default:
		fmt.Fprintf(&b, "Usage: %s\n", name)
	}
	if c.Long != "" {
		b.WriteString("\n")
		wrap(&b, c.Long, "", 80)
	}
	if c.Commands != nil {
		b.WriteString("\nCommands:\n")
		width := 0
		for _, sub := range c.Commands {
			width = max(width, len(sub.Name))
		}
		for _, sub := range c.Commands {
			fmt.Fprintf(&b, "  %-*s  %s\n", width, sub.Name, sub.Short)
		}
		if len(path) == 1 {
			b.WriteString("\nFlags:\n  --help, -h\n      print this help\n  --version\n      print the version\n")
		}
		fmt.Fprintf(&b, "\nRun '%s COMMAND --help' for a command's flags and exit codes.\n", name)
	} else {
		b.WriteString("\nFlags:\n")
		if c.Flags != nil {
			fs := flag.NewFlagSet(name, flag.ContinueOnError)
			c.Flags(fs)
			fs.VisitAll(func(f *flag.Flag) { writeFlag(&b, f) })
		}
		b.WriteString("  --help, -h\n      print this help\n")
	}
	b.WriteString("\nExit codes:\n")
	exits := c.Exit
	if exits == nil {
		exits = stdExits
	}
	for _, e := range exits {
		fmt.Fprintf(&b, "  %d  %s\n", e.code, e.meaning)
	}
	return b.String()
}

// writeFlag lists one flag as "--name ARG", then its usage indented, in
// the place of the flag package's "-name type" style.
func writeFlag(b *strings.Builder, f *flag.Flag) {
	arg, usage := flag.UnquoteUsage(f)
	if arg != "" {
		arg = " " + strings.ToUpper(arg)
	}
	fmt.Fprintf(b, "  --%s%s\n", f.Name, arg)
	switch f.DefValue {
	case "", "false", "0", "0s":
	default:
		usage += fmt.Sprintf(" (default %s)", f.DefValue)
	}
	wrap(b, usage, "      ", 80)
}

// wrap writes text as lines of at most width columns behind indent;
// blank lines in text separate paragraphs and are kept.
func wrap(b *strings.Builder, text, indent string, width int) {
	for i, para := range strings.Split(text, "\n\n") {
		if i > 0 {
			b.WriteString("\n")
		}
		line := indent
		for _, w := range strings.Fields(para) {
			if len(line) > len(indent) && len(line)+1+len(w) > width {
				b.WriteString(line + "\n")
				line = indent
			}
			if len(line) > len(indent) {
				line += " "
			}
			line += w
		}
		b.WriteString(line + "\n")
	}
}

func cmdVersion(_ context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		return usageError(stderr, "flint version", "unexpected argument %q", args[0])
	}
	fmt.Fprintln(stdout, "flint", version)
	return exitOK
}

// fail prints one "flint: ..." line and returns exitFail.
func fail(stderr io.Writer, format string, args ...any) int {
	fmt.Fprintf(stderr, "flint: "+format+"\n", args...)
	return exitFail
}
