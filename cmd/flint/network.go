package main

import (
	"context"
	"errors"
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

const networkUsage = `usage: flint network plan  [flags]   print the changes that would be made
       flint network apply [flags]   make them once
       flint network watch [flags]   make them, then follow ENIs attached or detached later`

// cmdNetwork runs "flint network plan|apply|watch" against the links of
// the current network namespace.
func cmdNetwork(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(stderr, networkUsage)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	sub := args[0]
	switch sub {
	case "plan", "apply", "watch":
	default:
		fmt.Fprintf(stderr, "flint network: unknown subcommand %q\n%s\n", sub, networkUsage)
		return exitUsage
	}
	fs := newFlagSet("network "+sub, stderr)
	var (
		cfg      network.Config
		endpoint = fs.String("endpoint", "", "metadata endpoint URL or auto (default: AWS_EC2_METADATA_SERVICE_ENDPOINT, else auto: the IPv4 link-local address, then the IPv6 one)")
		ignore   = fs.String("ignore", "", "comma-separated link name patterns to leave alone, besides docker0, veth*, lo, ...")
		refresh  = fs.Duration("refresh", 0, "watch: also re-read metadata this often (0: only on link events)")
	)
	fs.IntVar(&cfg.MTU, "mtu", 0, fmt.Sprintf("MTU for managed links (0: %d, -1: leave alone)", network.DefaultMTU))
	fs.BoolVar(&cfg.MTUFloor, "mtu-floor", false, "only raise MTUs below --mtu, never lower one")
	fs.BoolVar(&cfg.StaticPrimary, "static-primary", false, "no DHCP client runs on the primary: also add its first addresses and default routes")
	fs.BoolVar(&cfg.NoPrefixRoutes, "no-prefix-routes", false, "do not add local routes for delegated prefixes (rules only)")
	root := fs.String("root", "/", "read ROOT/etc/flint/flint.yaml (its network: and imds.endpoint settings; flags override them)")
	// The config file sits between the flags' defaults and the flags given.
	for i, a := range args[1:] {
		if v, ok := strings.CutPrefix(a, "--root="); ok {
			*root = v
		} else if (a == "--root" || a == "-root") && i+2 < len(args) {
			*root = args[i+2]
		}
	}
	fileCfg, err := builtin.Catalog().LoadConfig(*root, "")
	if err != nil {
		return fail(stderr, "network: %v", err)
	}
	if _, err := fileCfg.Section("network", &cfg); err != nil {
		return fail(stderr, "network: %v", err)
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "flint network %s: unexpected argument %q\n", sub, fs.Arg(0))
		return exitUsage
	}
	cfg.Ignore = append(cfg.Ignore, splitList(*ignore)...)
	if err := cfg.Validate(); err != nil {
		return fail(stderr, "network: %v", err)
	}
	if *endpoint == "" {
		*endpoint = fileCfg.IMDS.Endpoint
	}
	md, err := newNetworkMetadata(*endpoint)
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
			Refresh: *refresh,
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
