package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/flint-dev/flint/handlers/builtin"
	"github.com/flint-dev/flint/imds"
	"github.com/flint-dev/flint/network"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// newNetworkMetadata builds the metadata reader "flint network" uses. It
// must not cache: watch re-reads metadata to see hot-plugged ENIs.
var newNetworkMetadata = func(endpoint string) (network.Metadata, error) {
	return imds.New(imds.Options{Endpoint: endpoint})
}

// networkCommand is "flint network plan|apply|watch", on the links of the
// current network namespace.
func networkCommand() Command {
	var (
		fs                     *flag.FlagSet
		flags                  network.Config
		endpoint, ignore, root string
		refresh                time.Duration
	)
	declare := func(set *flag.FlagSet) {
		fs = set
		set.StringVar(&endpoint, "endpoint", "", "metadata endpoint `URL` (default: imds.endpoint, AWS_EC2_METADATA_SERVICE_ENDPOINT or the link-local address)")
		set.StringVar(&ignore, "ignore", "", "comma-separated link name `PATTERNS` to leave alone, besides docker0, veth*, lo, ...")
		set.DurationVar(&refresh, "refresh", 0, "watch: also re-read metadata this often (0: only on link events)")
		set.IntVar(&flags.MTU, "mtu", 0, fmt.Sprintf("`MTU` for managed links (0: %d, -1: leave alone)", network.DefaultMTU))
		set.BoolVar(&flags.MTUFloor, "mtu-floor", false, "only raise MTUs below --mtu, never lower one")
		set.BoolVar(&flags.StaticPrimary, "static-primary", false, "no DHCP client runs on the primary: also add its first addresses and default routes")
		set.BoolVar(&flags.NoPrefixRoutes, "no-prefix-routes", false, "do not add local routes for delegated prefixes (rules only)")
		set.StringVar(&root, "root", "/", "read `DIR`/etc/flint/flint.yaml (its network: and imds.endpoint settings; flags override them)")
	}
	sub := func(name, short, long string, exits []exitCode) Command {
		usage := "[--root DIR] [--endpoint URL] [--mtu MTU [--mtu-floor]] [--static-primary] [--no-prefix-routes] [--ignore PATTERNS]"
		if name == "watch" {
			usage += " [--refresh DURATION]"
		}
		return Command{
			Name: name, Usage: usage, Short: short, Long: long, Exit: exits, Flags: declare,
			Func: func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
				if len(args) != 0 {
					return usageError(stderr, "flint network "+name, "unexpected argument %q", args[0])
				}
				return cmdNetwork(ctx, name, fs, flags, endpoint, ignore, root, refresh, stdout, stderr)
			},
		}
	}
	const common = "Configures the links of the network interfaces (ENIs) attached to this instance from " +
		"instance metadata: addresses, per-ENI routing tables, source-based policy rules, delegated prefixes " +
		"and MTU. What the OS's DHCP client manages on the primary is left to it unless --static-primary; " +
		"routes and rules flint did not add are never removed."
	return Command{
		Name:    "network",
		Short:   "plan, apply or watch ENI configuration",
		Long:    common,
		Signals: true,
		Commands: []Command{
			sub("plan", "print the changes that would be made", common+"\n\nplan prints the changes and makes none.", exits("the changes (or \"no changes\") were printed", "failure")),
			sub("apply", "make them once", common+"\n\napply makes the changes once and prints them.", nil),
			sub("watch", "make them, then follow ENIs attached or detached later", common+
				"\n\nwatch applies, then follows links appearing and disappearing (and re-reads metadata every --refresh) until interrupted.",
				exits("interrupted (SIGINT or SIGTERM)", "failure")),
		},
	}
}

// cmdNetwork runs one of plan, apply and watch. The configuration file
// sits between the flags' defaults and the flags given.
func cmdNetwork(ctx context.Context, sub string, fs *flag.FlagSet, flags network.Config, endpoint, ignore, root string, refresh time.Duration, stdout, stderr io.Writer) int {
	fileCfg, err := builtin.Catalog().LoadConfig(root, "")
	if err != nil {
		return fail(stderr, "network: %v", err)
	}
	var cfg network.Config
	if _, err := fileCfg.Section("network", &cfg); err != nil {
		return fail(stderr, "network: %v", err)
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "mtu":
			cfg.MTU = flags.MTU
		case "mtu-floor":
			cfg.MTUFloor = flags.MTUFloor
		case "static-primary":
			cfg.StaticPrimary = flags.StaticPrimary
		case "no-prefix-routes":
			cfg.NoPrefixRoutes = flags.NoPrefixRoutes
		}
	})
	cfg.Ignore = append(cfg.Ignore, splitList(ignore)...)
	if err := cfg.Validate(); err != nil {
		return fail(stderr, "network: %v", err)
	}
	if endpoint == "" {
		endpoint = fileCfg.IMDS.Endpoint
	}
	md, err := newNetworkMetadata(endpoint)
	if err != nil {
		return fail(stderr, "network: %v", err)
	}
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return fail(stderr, "network: open netlink: %v", err)
	}
	defer h.Close()

	if sub == "watch" {
		err := network.Watch(ctx, h, md, network.WatchOptions{
			Config:  cfg,
			Refresh: refresh,
			Logf: func(format string, a ...any) {
				fmt.Fprintf(stderr, time.Now().UTC().Format(time.RFC3339)+" "+format+"\n", a...)
			},
		})
		if err != nil {
			return fail(stderr, "network watch: %v", err)
		}
		return exitOK
	}
	res, err := network.Reconcile(ctx, h, md, cfg, sub == "plan")
	for _, c := range res.Changes {
		fmt.Fprintln(stdout, c)
	}
	if len(res.Changes) == 0 && err == nil {
		fmt.Fprintln(stdout, "no changes")
	}
	if err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(stderr, "flint: network: %s\n", line)
		}
		return exitFail
	}
	return exitOK
}
