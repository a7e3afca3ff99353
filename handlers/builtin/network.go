package builtin

import (
	"context"
	"fmt"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/imds"
	"github.com/flint-dev/flint/internal/state"
	"github.com/flint-dev/flint/network"
)

// networkHandler configures every ENI over netlink (addresses, per-ENI
// routing tables, source rules, MTU) in the network namespace flint runs
// in. It runs every boot: the reconcile is a diff, so a converged boot
// changes nothing. Without a live root it plans only.
var networkHandler = handlers.Builtin{
	Name: "network", Frequency: state.PerBoot,
	Section: "network", Config: func() any { return new(network.Config) },
	// The secondary ENIs: nothing up to READY=1 builds on them.
	Beside:  true,
	Prepare: warmMetadata(func(ctx context.Context, md imds.Reader) { network.Gather(ctx, md) }),
	Run:     runNetwork,
}

// warmMetadata is a Prepare that reads, in the background from the
// chain's start, the metadata its handler reads when it runs: a run's
// metadata is remembered (imds.Memo, a read in flight shared), so the
// handler finds it there instead of waiting, behind the handlers before
// it, for one request after another. A read that fails is read again by
// the handler.
func warmMetadata(read func(ctx context.Context, md imds.Reader)) func(context.Context, *handlers.Boot) any {
	return func(ctx context.Context, b *handlers.Boot) any {
		go read(ctx, b.Metadata)
		return nil
	}
}

func runNetwork(ctx context.Context, b *handlers.Boot) error {
	var cfg network.Config
	if err := b.Settings(&cfg); err != nil {
		return err
	}
	// Only rtnetlink: a kernel without XFRM (cloud kernels) refuses a
	// handle that asks for every family.
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	defer h.Close()
	planOnly := b.DryRun || !b.Live
	res, rerr := network.Reconcile(ctx, h, b.Metadata, cfg, planOnly)
	verb := "applied"
	if planOnly {
		verb = "would"
	}
	for _, c := range res.Changes {
		b.Note("%s %s", verb, c)
	}
	if len(res.Changes) == 0 && rerr == nil {
		b.Note("no change")
	}
	if rerr != nil {
		return rerr
	}
	if planOnly && !b.DryRun && len(res.Changes) > 0 {
		return fmt.Errorf("%d network changes: %w", len(res.Changes), handlers.ErrNotLive)
	}
	return nil
}
