package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/flint-dev/flint/handlers/builtin"
	"github.com/flint-dev/flint/internal/rootfs"
	"github.com/flint-dev/flint/network/fallback"
	"github.com/flint-dev/flint/sshkeys"
)

func localCommand() Command {
	var (
		root     string
		wait     time.Duration
		dryRun   bool
		hostKeys bool
	)
	return Command{
		Name:  "local",
		Usage: "[--root DIR] [--wait DURATION] [--dry-run] | --host-keys [--root DIR]",
		Short: "the early stage: bring the primary interface up where the image configures nothing; make host keys ahead",
		Long: "Run by flint-local.service before network-pre.target. On an image that has no network " +
			"configuration for the primary interface (the physical Ethernet interface first on its bus, " +
			"the lowest PCI address; once chosen, the one flint's file names while it is present), writes IPv4 DHCP with IPv6 router advertisements accepted for the image's network stack " +
			"(netplan, NetworkManager, ifupdown or systemd-networkd). An interface the image configures is left alone.\n\n" +
			"With --host-keys (flint-host-keys.service, started beside it on a boot whose image holds no host keys made for an instance): " +
			"generates the SSH host keys flint.yaml's host_keys asks for into /" + builtin.HostKeysAheadDir + " while the boot waits for the network; " +
			"flint run's host-keys handler takes them from there, waiting for a key still being made, and makes any other itself. " +
			"It makes none where the image has no sshd, the handler is disabled, or etc/ssh/ssh_host_keys.instance names an instance.",
		Exit:    exits("the interface is configured (now or before); --host-keys: made, or none to make", "no interface, no known network stack, or a write failed; --host-keys: a key could not be made"),
		Signals: true,
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&root, "root", "/", "the image's root `DIR`")
			fs.DurationVar(&wait, "wait", 10*time.Second, "how long to wait for the primary interface to appear and for udev to name it")
			fs.BoolVar(&dryRun, "dry-run", false, "print the plan, write nothing")
			fs.BoolVar(&hostKeys, "host-keys", false, "make the instance's SSH host keys ahead of flint run instead")
		},
		Func: func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
			if len(args) > 0 {
				return usageError(stderr, "flint local", "unexpected argument %q", args[0])
			}
			if hostKeys {
				if dryRun {
					return usageError(stderr, "flint local", "--host-keys has no --dry-run")
				}
				return cmdLocalHostKeys(root, stdout, stderr)
			}
			return cmdLocal(ctx, root, wait, dryRun, stdout, stderr)
		},
	}
}

// cmdLocal is flint's early stage (flint-local.service, before
// network-pre.target): on an image with no network configuration for the
// primary interface, write the fallback DHCP configuration for the image's
// network stack, so that the primary interface is up for IMDS.
func cmdLocal(ctx context.Context, rootDir string, waitFor time.Duration, dry bool, stdout, stderr io.Writer) int {
	root, wait, dryRun := &rootDir, &waitFor, &dry
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
// udev is done naming every Ethernet interface, and returns the links
// then present. A listing during a rename may lack the renamed interface
// (the primary, it may be): the primary is chosen from a listing in which
// nothing vanished and nothing waits for udev.
func primaryLinks(ctx context.Context, wait time.Duration) ([]fallback.Link, error) {
	deadline := time.Now().Add(wait)
	for {
		links, err := fallback.ReadLinks("/sys")
		if err != nil && !errors.Is(err, fallback.ErrChanged) {
			return nil, fmt.Errorf("list network interfaces: %w", err)
		}
		_, ok := fallback.Primary(links)
		if ok && err == nil && fallback.AllSettled("/run", links) {
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

// cmdLocalHostKeys makes the instance's host keys ahead of flint run (see
// builtin.HostKeysAhead).
func cmdLocalHostKeys(rootDir string, stdout, stderr io.Writer) int {
	r, err := rootfs.Open(rootDir)
	if err != nil {
		return fail(stderr, "local --host-keys: %v", err)
	}
	defer r.Close()
	cfg, err := builtin.Catalog().LoadConfig(r.Dir(), "")
	if err != nil {
		return fail(stderr, "local --host-keys: %v", err)
	}
	types, why, err := builtin.HostKeysAhead(r, cfg)
	if err != nil {
		return fail(stderr, "local --host-keys: %v", err)
	}
	if len(types) == 0 {
		fmt.Fprintf(stdout, "flint local: no host keys made ahead: %s\n", why)
		return exitOK
	}
	begin := time.Now()
	err = sshkeys.MakeAhead(r.Path(builtin.HostKeysAheadDir), types)
	if errors.Is(err, sshkeys.ErrAheadExists) {
		fmt.Fprintf(stdout, "flint local: %v (/%s)\n", err, builtin.HostKeysAheadDir)
		return exitOK
	}
	if err != nil {
		return fail(stderr, "local --host-keys: %v; flint run makes the missing keys", err)
	}
	fmt.Fprintf(stdout, "flint local: made host keys %s ahead of flint run in %v (/%s)\n",
		strings.Join(types, ", "), time.Since(begin).Round(time.Millisecond), builtin.HostKeysAheadDir)
	return exitOK
}
