package main

import (
	"bytes"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/flint-dev/flint/ec2metadata"
	"github.com/flint-dev/flint/internal/testenv"
)

// node is one command of the table with the path that reaches it.
type node struct {
	path []string
	cmd  Command
}

func allCommands() []node {
	var out []node
	var walk func(path []string, c Command)
	walk = func(path []string, c Command) {
		path = append(append([]string(nil), path...), c.Name)
		out = append(out, node{path, c})
		for _, sub := range c.Commands {
			walk(path, sub)
		}
	}
	walk(nil, flintCommand())
	return out
}

// flint runs the real binary, as a package installs it, and returns its
// exit code and outputs.
func flint(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(testenv.FlintBinary(t), args...)
	cmd.Dir = t.TempDir()
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("flint %q: %v", args, err)
	}
	return cmd.ProcessState.ExitCode(), o.String(), e.String()
}

func TestEveryCommandsHelpGoesToStdoutWithExitZero(t *testing.T) {
	for _, n := range allCommands() {
		name := strings.Join(n.path, " ")
		want := helpText(n.path, n.cmd)
		spellings := [][]string{{"--help"}, {"-h"}}
		if n.cmd.Name == "query" {
			// ec2-metadata's -h is --local-hostname.
			spellings = spellings[:1]
			if want != ec2metadata.HelpText() {
				t.Errorf("the table's help for query is not ec2-metadata's")
			}
		}
		if len(n.path) > 1 {
			spellings = append(spellings, []string{"help"})
		}
		for _, spell := range spellings {
			t.Run(name+" "+spell[0], func(t *testing.T) {
				var args []string
				if spell[0] == "help" {
					args = append([]string{"help"}, n.path[1:]...)
				} else {
					args = append(append(args, n.path[1:]...), spell...)
				}
				code, stdout, stderr := flint(t, args...)
				if code != 0 || stderr != "" || stdout != want {
					t.Fatalf("flint %q: exit %d, stderr %q, stdout:\n%s\nwant exit 0, nothing on stderr and the table's help:\n%s", args, code, stderr, stdout, want)
				}
			})
		}
		if n.cmd.Raw {
			continue
		}
		t.Run(name+" help lists its exit codes and --flags", func(t *testing.T) {
			if !strings.Contains(want, "\nExit codes:\n  0  ") {
				t.Errorf("%s --help lists no exit codes:\n%s", name, want)
			}
			if !strings.HasPrefix(want, "Usage: "+name) {
				t.Errorf("%s --help does not start with its usage line:\n%s", name, want)
			}
			for _, line := range strings.Split(want, "\n") {
				if strings.HasPrefix(line, "  -") && !strings.HasPrefix(line, "  --") {
					t.Errorf("%s --help lists a flag with one dash: %q", name, line)
				}
			}
		})
	}
}

func TestVersionIsACommandAndAFlag(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, stdout, stderr := flint(t, args...)
		if code != 0 || stderr != "" || !strings.HasPrefix(stdout, "flint ") || strings.Count(stdout, "\n") != 1 {
			t.Errorf("flint %q: exit %d, stdout %q, stderr %q", args, code, stdout, stderr)
		}
	}
}

func TestBadUsageExitsTwoWithOneLineOnStderr(t *testing.T) {
	cases := [][]string{
		{},
		{"frobnicate"},
		{"--frobnicate"},
		{"modules", "frob"},
		{"network"},
		{"get"},
		{"ssh-keys", "alice", "bob"},
		{"status", "--timeout", "soon"},
		{"run", "--root"},
		{"config", "check", "a", "b"},
	}
	// Every command that parses flags refuses one it does not know.
	for _, n := range allCommands() {
		if n.cmd.Func != nil && !n.cmd.Raw {
			cases = append(cases, append(append([]string(nil), n.path[1:]...), "--no-such-flag"))
		}
	}
	for _, args := range cases {
		t.Run(strings.Join(append([]string{"flint"}, args...), " "), func(t *testing.T) {
			code, stdout, stderr := flint(t, args...)
			if code != 2 || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "flint") ||
				!strings.Contains(stderr, "--help')") {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit 2 and one line on stderr pointing to --help", code, stdout, stderr)
			}
			if len(args) > 0 && args[len(args)-1] == "--no-such-flag" && !strings.Contains(stderr, "unknown flag --no-such-flag") {
				t.Errorf("stderr %q does not name the flag", stderr)
			}
		})
	}
}

func TestTheTableNamesEachCommandAsItsEntryDoes(t *testing.T) {
	for _, e := range table {
		if c := e.build(); c.Name != e.name || (c.Func == nil) == (c.Commands == nil) {
			t.Errorf("table entry %q builds command %q (Func set: %v, subcommands: %d); want the same name and one of the two",
				e.name, c.Name, c.Func != nil, len(c.Commands))
		}
	}
}
