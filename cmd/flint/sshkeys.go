package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/handlers/builtin"
	"github.com/flint-dev/flint/imds"
	"github.com/flint-dev/flint/internal/config"
	"github.com/flint-dev/flint/sshkeys"
)

// sshKeysDeadline bounds one `flint ssh-keys`: sshd waits for it while a
// person waits for sshd.
const sshKeysDeadline = 3 * time.Second

// sshKeysCommand is `flint ssh-keys USER`, an sshd AuthorizedKeysCommand.
// It prints the user's keys and always exits 0 once its arguments are
// right: when metadata cannot be read it prints nothing and logs one line,
// and sshd falls back to the AuthorizedKeysFile.
func sshKeysCommand() Command {
	var root, endpoint, caBundle string
	return Command{
		Name:  "ssh-keys",
		Usage: "[--root DIR] [--endpoint URL] [--ca-bundle FILE] USER",
		Short: "print a user's SSH keys for sshd (AuthorizedKeysCommand)",
		Long: "Prints USER's authorized keys from instance metadata (the launch key, and keys pushed " +
			"by EC2 Instance Connect, verified against the CA bundle) for sshd's AuthorizedKeysCommand. " +
			"When metadata cannot be read it prints nothing and one line on stderr, and sshd falls back " +
			"to the AuthorizedKeysFile. It gives up after 3 seconds.",
		Exit: exits("keys printed, or none (also when metadata could not be read)", "the metadata endpoint is misconfigured"),
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&root, "root", "/", "read the configuration and CA bundle below `DIR`")
			fs.StringVar(&endpoint, "endpoint", "", "metadata endpoint `URL` (overrides config and environment)")
			fs.StringVar(&caBundle, "ca-bundle", "", "trusted CA bundle `FILE` for EC2 Instance Connect (default: config ssh_keys.ca_bundle, then the system bundle)")
		},
		Func: func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
			if len(args) != 1 {
				return usageError(stderr, "flint ssh-keys", "want one USER, got %d operands", len(args))
			}
			return cmdSSHKeys(ctx, args[0], root, endpoint, caBundle, stdout, stderr)
		},
	}
}

func cmdSSHKeys(ctx context.Context, user, root, endpoint, caBundle string, stdout, stderr io.Writer) int {
	// Only the sections read here are decoded (strictly); `flint config
	// check` and boots validate the rest.
	cfg, err := loadSSHKeysConfig(root)
	if err != nil {
		// A broken config must not lock people out: Instance Connect keys
		// still work without it.
		fmt.Fprintf(stderr, "flint ssh-keys: configuration: %v\n", err)
		cfg = nil
	}
	var lookup sshkeys.Lookup
	mode := imds.ModeV2Preferred
	if cfg != nil {
		if lookup, err = builtin.SSHKeysLookup(cfg); err != nil {
			fmt.Fprintf(stderr, "flint ssh-keys: configuration: %v\n", err)
		}
		if endpoint == "" {
			endpoint = cfg.IMDS.Endpoint
		}
		mode, _ = imds.ParseMode(cfg.IMDS.Mode)
	}
	if lookup.DefaultUser == "" {
		// As the users handler decides: the distribution's default user.
		lookup.DefaultUser = builtin.ImageDefaultUserName(root)
	}
	switch {
	case caBundle != "":
		lookup.CABundle = caBundle
	case lookup.CABundle != "":
		lookup.CABundle = filepath.Join(root, lookup.CABundle)
	default:
		lookup.CARoot = root
	}
	lookup.Logf = func(f string, a ...any) { fmt.Fprintf(stderr, f+"\n", a...) }
	client, err := imds.New(imds.Options{
		Endpoint: endpoint, Mode: mode,
		AttemptTimeout: time.Second, TokenTimeout: time.Second,
		MaxAttempts: 2, MaxBackoff: 100 * time.Millisecond,
	})
	if err != nil {
		return fail(stderr, "ssh-keys: %v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, sshKeysDeadline)
	defer cancel()
	lines, err := sshkeys.AuthorizedKeysFor(ctx, client, user, lookup)
	if err != nil {
		fmt.Fprintf(stderr, "flint ssh-keys: no keys for %s from instance metadata: %v\n", user, err)
	}
	w := bufferedLines(lines)
	stdout.Write(w)
	return exitOK
}

func loadSSHKeysConfig(root string) (*config.Config, error) {
	paths, err := config.Paths(root, handlers.ConfigPath)
	if err != nil {
		return nil, err
	}
	return config.Load(paths, builtin.Catalog().Sections())
}

func bufferedLines(lines []string) []byte {
	var b []byte
	for _, l := range lines {
		b = append(b, l...)
		b = append(b, '\n')
	}
	return b
}
