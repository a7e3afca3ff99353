package network

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ReadLinks lists the links h sees.
func ReadLinks(h *netlink.Handle) ([]Link, error) {
	nls, err := h.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	links := make([]Link, 0, len(nls))
	for _, l := range nls {
		links = append(links, linkFrom(l))
	}
	return links, nil
}

func linkFrom(l netlink.Link) Link {
	a := l.Attrs()
	out := Link{Index: a.Index, Name: a.Name, MTU: a.MTU, Up: a.Flags&net.FlagUp != 0, Kind: l.Type()}
	if len(a.HardwareAddr) == 6 {
		out.MAC = strings.ToLower(a.HardwareAddr.String())
	}
	if out.Kind == "device" {
		out.Kind = ""
	}
	return out
}

// ReadCurrent reads the addresses of the given links and flint's routes
// and rules (those carrying Protocol) from every table.
func ReadCurrent(h *netlink.Handle, links []Link) (Current, error) {
	cur := Current{Links: links, Addrs: map[int][]CurrentAddr{}}
	addrs, err := h.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return cur, fmt.Errorf("list addresses: %w", err)
	}
	for _, a := range addrs {
		p, ok := prefixFrom(a.IPNet)
		if !ok {
			continue
		}
		cur.Addrs[a.LinkIndex] = append(cur.Addrs[a.LinkIndex], CurrentAddr{
			Prefix:    p,
			Permanent: a.Flags&unix.IFA_F_PERMANENT != 0,
			Global:    a.Scope == unix.RT_SCOPE_UNIVERSE,
		})
	}
	names := map[int]string{}
	for _, l := range links {
		names[l.Index] = l.Name
	}
	routes, err := h.RouteListFiltered(netlink.FAMILY_ALL,
		&netlink.Route{Table: unix.RT_TABLE_UNSPEC, Protocol: Protocol},
		netlink.RT_FILTER_TABLE|netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		return cur, fmt.Errorf("list routes: %w", err)
	}
	for _, r := range routes {
		dst, ok := prefixFrom(r.Dst)
		if !ok { // default routes come back without a destination
			if r.Family == netlink.FAMILY_V6 {
				dst = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
			} else {
				dst = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
			}
		}
		gw, _ := netip.AddrFromSlice(r.Gw)
		cur.Routes = append(cur.Routes, Route{
			Table: r.Table, Dst: dst, Gw: gw.Unmap(), Local: r.Type == unix.RTN_LOCAL,
			Metric: r.Priority, LinkIndex: r.LinkIndex, Dev: names[r.LinkIndex],
		})
	}
	rules, err := h.RuleList(netlink.FAMILY_ALL)
	if err != nil {
		return cur, fmt.Errorf("list rules: %w", err)
	}
	for _, r := range rules {
		if r.Protocol != Protocol {
			continue
		}
		src, ok := prefixFrom(r.Src)
		if !ok {
			continue
		}
		cur.Rules = append(cur.Rules, Rule{Priority: r.Priority, Table: r.Table, Src: src})
	}
	return cur, nil
}

func prefixFrom(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones), true
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// Apply makes each change through h. It goes on after a failed step (one
// bad address must not leave the other ENIs unconfigured) and returns the
// failures joined. An add that finds its object present, or a delete that
// finds it gone, is not a failure.
func Apply(ctx context.Context, h *netlink.Handle, changes []Change) error {
	var errs []error
	for _, c := range changes {
		if err := ctx.Err(); err != nil {
			return errors.Join(append(errs, err)...)
		}
		if err := applyOne(h, c); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c, err))
		}
	}
	return errors.Join(errs...)
}

func applyOne(h *netlink.Handle, c Change) error {
	link := &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: c.Link.Index, Name: c.Link.Name}}
	var err error
	switch {
	case c.Addr != nil:
		a := &netlink.Addr{IPNet: ipNet(c.Addr.Prefix)}
		if c.Addr.Prefix.Addr().Is6() {
			// EC2 answers for the VPC; DAD would only delay the address
			// (amazon-ec2-net-utils turns it off too).
			a.Flags |= unix.IFA_F_NODAD
		}
		if c.Addr.NoPrefixRoute {
			a.Flags |= unix.IFA_F_NOPREFIXROUTE
		}
		if c.Op == OpAdd {
			err = h.AddrAdd(link, a)
		} else {
			err = h.AddrDel(link, a)
		}
	case c.Route != nil:
		r := nlRoute(*c.Route)
		if c.Op == OpAdd {
			err = h.RouteAdd(r)
		} else {
			err = h.RouteDel(r)
		}
	case c.Rule != nil:
		r := netlink.NewRule()
		r.Priority, r.Table, r.Protocol = c.Rule.Priority, c.Rule.Table, Protocol
		r.Src = ipNet(c.Rule.Src)
		r.Family = netlink.FAMILY_V4
		if c.Rule.Src.Addr().Is6() {
			r.Family = netlink.FAMILY_V6
		}
		if c.Op == OpAdd {
			err = h.RuleAdd(r)
		} else {
			err = h.RuleDel(r)
		}
	default:
		if c.MTU != 0 {
			if err = h.LinkSetMTU(link, c.MTU); err != nil {
				return err
			}
		}
		if c.Up {
			err = h.LinkSetUp(link)
		}
	}
	switch {
	case c.Op == OpAdd && errors.Is(err, unix.EEXIST):
		return nil
	case c.Op == OpDel && (errors.Is(err, unix.ESRCH) || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EADDRNOTAVAIL)):
		return nil
	}
	return err
}

func nlRoute(r Route) *netlink.Route {
	out := &netlink.Route{
		LinkIndex: r.LinkIndex,
		Dst:       ipNet(r.Dst),
		Table:     r.Table,
		Priority:  r.Metric,
		Protocol:  Protocol,
		Family:    netlink.FAMILY_V4,
		Type:      unix.RTN_UNICAST,
		Scope:     netlink.SCOPE_UNIVERSE,
	}
	if r.Dst.Addr().Is6() {
		out.Family = netlink.FAMILY_V6
	}
	switch {
	case r.Local:
		out.Type, out.Scope = unix.RTN_LOCAL, netlink.SCOPE_HOST
	case r.Gw.IsValid():
		out.Gw = r.Gw.AsSlice()
	default:
		out.Scope = netlink.SCOPE_LINK
	}
	return out
}

// Result is what one reconciliation saw and did.
type Result struct {
	Desired Desired
	Changes []Change
}

// Reconcile reads metadata and the kernel's state, plans, diffs and, unless
// dryRun, applies the difference. The returned error joins per-ENI planning
// errors and failed steps; everything that could be done was done.
func Reconcile(ctx context.Context, h *netlink.Handle, md Metadata, cfg Config, dryRun bool) (Result, error) {
	var res Result
	if err := cfg.Validate(); err != nil {
		return res, err
	}
	in, err := Gather(ctx, md)
	if err != nil {
		return res, err
	}
	return reconcileWith(ctx, h, in, cfg, dryRun)
}

func reconcileWith(ctx context.Context, h *netlink.Handle, in Inputs, cfg Config, dryRun bool) (Result, error) {
	var res Result
	links, err := ReadLinks(h)
	if err != nil {
		return res, err
	}
	res.Desired = Plan(in, links, cfg)
	cur, err := ReadCurrent(h, links)
	if err != nil {
		return res, err
	}
	res.Changes = Diff(res.Desired, cur)
	var applyErr error
	if !dryRun {
		applyErr = Apply(ctx, h, res.Changes)
	}
	return res, errors.Join(res.Desired.Err(), applyErr)
}
