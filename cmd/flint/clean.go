package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/flint-dev/flint/internal/image"
	"github.com/flint-dev/flint/internal/rootfs"
)

func cleanCommand() Command {
	var (
		root string
		o    image.Options
	)
	return Command{
		Name:  "clean",
		Usage: "[--root DIR] [--logs] [--host-keys] [--machine-id] [--dry-run]",
		Short: "remove instance state, optionally logs, host keys, machine-id: the last step of an image bake",
		Long: "Removes flint's instance state (/var/lib/flint: instances, semaphores, once-ever markers) and " +
			"/run/flint, so the next boot of an instance made from the image is a first boot. Refuses a root " +
			"without etc/flint, var/lib/flint or usr/bin/flint. Never follows a symlink out of the root.",
		Exit: exits("cleaned (or, with --dry-run, listed)", "not a root flint is installed in or ran in, or a removal failed"),
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&root, "root", "/", "the image root `DIR` to clean")
			fs.BoolVar(&o.Logs, "logs", false, "also remove /var/log/flint-output.log and its rotated copy")
			fs.BoolVar(&o.HostKeys, "host-keys", false, "also remove the SSH host keys (/etc/ssh/ssh_host_*key*)")
			fs.BoolVar(&o.MachineID, "machine-id", false, "also remove /etc/machine-id (systemd makes a new one at the next boot)")
			fs.BoolVar(&o.DryRun, "dry-run", false, "list what would be removed; remove nothing")
		},
		Func: func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
			if len(args) > 0 {
				return usageError(stderr, "flint clean", "unexpected argument %q", args[0])
			}
			return cmdClean(root, o, stdout, stderr)
		},
	}
}

// cmdClean is the last step of an image bake: it removes what a bake-time
// run left so that instances launched from the image have a first boot.
func cmdClean(rootDir string, o image.Options, stdout, stderr io.Writer) int {
	root := &rootDir
	r, err := rootfs.Open(*root)
	if err != nil {
		return fail(stderr, "%v", err)
	}
	defer r.Close()
	removed, err := image.Clean(r, o)
	verb := "removed"
	if o.DryRun {
		verb = "would remove"
	}
	for _, p := range removed {
		fmt.Fprintf(stdout, "%s %s\n", verb, r.Path(p))
	}
	if err != nil {
		return fail(stderr, "clean: %v", err)
	}
	return exitOK
}
