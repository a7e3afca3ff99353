package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/flint-dev/flint/internal/rootfs"
	"github.com/flint-dev/flint/network/fallback"
)

// cmdLocal is flint's early stage (flint-local.service, before
// network-pre.target): on an image with no network configuration for the
// primary interface, write the fallback DHCP configuration for the image's
// network stack, so that the primary interface is up for IMDS.
func cmdLocal(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("local", stderr)
	root := fs.String("root", "/", "the image's root directory")
	wait := fs.Duration("wait", 10*time.Second, "how long to wait for the primary interface to appear and for udev to name it")
	dryRun := fs.Bool("dry-run", false, "print the plan, write nothing")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: flint local [--root DIR] [--wait 10s] [--dry-run]")
		fmt.Fprintln(stderr, "Bring the primary interface up on an image that has no network configuration for it:")
		fmt.Fprintln(stderr, "write IPv4 DHCP (and IPv6 router advertisements accepted) for the image's stack")
		fmt.Fprintln(stderr, "(netplan, NetworkManager, ifupdown, systemd-networkd). The primary interface is the")
		fmt.Fprintln(stderr, "physical Ethernet interface the kernel registered first. A configured one is left alone.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	r, err := rootfs.Open(*root)
	if err != nil {
		return fail(stderr, "local: %v", err)
	}
	defer r.Close()

	links, err := primaryLinks(ctx, *wait)
	if err != nil {
		return fail(stderr, "local: %v", err)
	}
	p, err := fallback.Decide(fallback.RootFS(r), links)
	switch {
	case errors.Is(err, fallback.ErrNoStack):
		return fail(stderr, "local: %s: %v; nothing written", p.Link.Name, err)
	case err != nil:
		return fail(stderr, "local: %v; nothing written", err)
	case p.Configured != "":
		fmt.Fprintf(stdout, "flint local: %s (%s) is configured by %s; left alone\n", p.Link.Name, p.Link.MAC, p.Configured)
		return exitOK
	}
	for _, f := range p.Files {
		if *dryRun {
			fmt.Fprintf(stdout, "flint local: would write /%s for %s (%s) [%s]:\n%s", f.Path, p.Link.Name, p.Link.MAC, p.Stack, f.Data)
			continue
		}
		if err := r.WriteFile(f.Path, f.Data, rootfs.WriteOptions{Perm: f.Mode, MkdirPerm: 0o755}); err != nil {
			return fail(stderr, "local: %v", err)
		}
		fmt.Fprintf(stdout, "flint local: %s (%s) had no network configuration: wrote /%s [%s]\n", p.Link.Name, p.Link.MAC, f.Path, p.Stack)
	}
	for _, c := range p.Commands {
		if *dryRun || !r.IsHost() {
			fmt.Fprintf(stdout, "flint local: run in the image: %s\n", strings.Join(c, " "))
			continue
		}
		if out, err := exec.CommandContext(ctx, c[0], c[1:]...).CombinedOutput(); err != nil {
			return fail(stderr, "local: %s: %v: %s", strings.Join(c, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return exitOK
}

// primaryLinks waits (up to wait) until a primary interface exists and
// udev is done naming it, and returns the links then present.
func primaryLinks(ctx context.Context, wait time.Duration) ([]fallback.Link, error) {
	deadline := time.Now().Add(wait)
	for {
		links, err := fallback.ReadLinks("/sys")
		if err != nil {
			return nil, fmt.Errorf("list network interfaces: %w", err)
		}
		l, ok := fallback.Primary(links)
		if ok && fallback.Settled("/run", l) {
			return links, nil
		}
		if time.Now().After(deadline) {
			if ok {
				// udev never named it: its current name is the one to use.
				return links, nil
			}
			return nil, fmt.Errorf("no physical Ethernet interface appeared in %s (%s)", wait, filepath.Join("/sys", "class/net"))
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
