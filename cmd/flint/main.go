// Command flint provisions a cloud instance at first boot and answers
// instance metadata queries. Each subcommand lives in its own file; this
// file holds the dispatch table and exit-code conventions only.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
)

// Exit codes shared by every subcommand.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
	// long commands cancel their context on SIGINT/SIGTERM and clean up;
	// short ones just die, and skip the signal goroutine's start-up cost.
	long bool
}

// commands is the one list of subcommands, in the order `flint help` shows them.
func commands() []command {
	return []command{
		{"run", "provision this instance (the boot chain)", cmdRun, true},
		{"status", "show the last run's result; --wait for it to finish", cmdStatus, true},
		{"analyze", "per-handler durations of the last run", cmdAnalyze, false},
		{"config", "check the configuration and print the effective one", cmdConfig, false},
		{"query", "ec2-metadata compatible queries (also run as ec2-metadata)", cmdQuery, false},
		{"get", "print one metadata value or listing", cmdGet, false},
		{"dump", "print the whole metadata tree", cmdDump, false},
		{"userdata", "inspect user-data: its parts and the merged cloud-config", cmdUserdata, false},
		{"network", "plan, apply or watch ENI configuration", cmdNetwork, true},
		{"modules", "install or check the kernel-module bundle for a kernel", cmdModules, true},
		{"ssh-keys", "print a user's SSH keys for sshd (AuthorizedKeysCommand)", cmdSSHKeys, false},
		{"clean", "remove instance state, optionally logs, host keys, machine-id: the last step of an image bake", cmdClean, false},
		{"emulate", "serve an instance metadata emulator", cmdEmulate, true},
		{"version", "print the version", cmdVersion, false},
	}
}

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(dispatch(context.Background(), os.Args, os.Stdout, os.Stderr))
}

func dispatch(ctx context.Context, argv []string, stdout, stderr io.Writer) int {
	if name := filepath.Base(argv[0]); name == "ec2-metadata" {
		if q := lookup("query"); q != nil {
			return q.run(ctx, argv[1:], stdout, stderr)
		}
	}
	if len(argv) < 2 {
		usage(stderr)
		return exitUsage
	}
	switch argv[1] {
	case "help", "-h", "--help":
		usage(stdout)
		return exitOK
	}
	c := lookup(argv[1])
	if c == nil {
		fmt.Fprintf(stderr, "flint: unknown command %q (see 'flint help')\n", argv[1])
		return exitUsage
	}
	if c.long {
		var stop context.CancelFunc
		ctx, stop = signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		defer stop()
	}
	return c.run(ctx, argv[2:], stdout, stderr)
}

func lookup(name string) *command {
	for _, c := range commands() {
		if c.name == name {
			return &c
		}
	}
	return nil
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: flint COMMAND [flags]")
	fmt.Fprintln(w)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'flint COMMAND -h' for a command's flags.")
}

func cmdVersion(_ context.Context, _ []string, stdout, _ io.Writer) int {
	fmt.Fprintln(stdout, "flint", version)
	return exitOK
}

// fail prints one "flint: ..." line and returns exitFail.
func fail(stderr io.Writer, format string, args ...any) int {
	fmt.Fprintf(stderr, "flint: "+format+"\n", args...)
	return exitFail
}
