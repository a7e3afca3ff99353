package main

import (
	"context"
	"fmt"
	"io"

	"github.com/flint-dev/flint/internal/image"
	"github.com/flint-dev/flint/internal/rootfs"
)

// cmdClean is the last step of an image bake: it removes what a bake-time
// run left so that instances launched from the image have a first boot.
func cmdClean(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("clean", stderr)
	root := fs.String("root", "/", "the image root to clean")
	var o image.Options
	fs.BoolVar(&o.Logs, "logs", false, "also remove /var/log/flint-output.log and its rotated copy")
	fs.BoolVar(&o.HostKeys, "host-keys", false, "also remove the SSH host keys (/etc/ssh/ssh_host_*key*)")
	fs.BoolVar(&o.MachineID, "machine-id", false, "also remove /etc/machine-id (systemd makes a new one at the next boot)")
	fs.BoolVar(&o.DryRun, "dry-run", false, "list what would be removed; remove nothing")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: flint clean [--root DIR] [--logs] [--host-keys] [--machine-id] [--dry-run]")
		fmt.Fprintln(stderr, "Removes flint's instance state (/var/lib/flint: instances, semaphores, once-ever markers)")
		fmt.Fprintln(stderr, "and /run/flint, so the next boot is a first boot. Refuses a root without etc/flint,")
		fmt.Fprintln(stderr, "var/lib/flint or usr/bin/flint. Never follows a symlink out of the root.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return exitUsage
	}
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
