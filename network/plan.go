package network

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
)

// Table numbering follows amazon-ec2-net-utils: table and rule priority
// are both tableBase + 100*network-card + device-number.
const (
	tableBase = 10000
	// metricBase is the main-table metric of routes flint adds for a
	// static primary, below systemd's 1024 as amazon-ec2-net-utils does.
	metricBase = 512
	tableMain  = 254
	tableLocal = 255
)

// TableFor returns the routing table (and rule priority) of an ENI.
func TableFor(networkCard, deviceNumber int) int {
	return tableBase + 100*networkCard + deviceNumber
}

// Link is a network link as the kernel reports it.
type Link struct {
	Index int
	Name  string
	MAC   string // lower case, colon separated
	MTU   int
	Up    bool
	Kind  string // "veth", "bridge", ... ; empty for plain devices
}

// Addr is an address on a link. NoPrefixRoute keeps the kernel from adding
// a prefix route for it (secondary IPv4 addresses are /32 aliases, as
// amazon-ec2-net-utils makes them).
type Addr struct {
	Prefix        netip.Prefix
	NoPrefixRoute bool
}

// Route is a route flint wants. Local marks a "local" route (delegated
// prefixes answered by this host); Gw is zero for on-link routes.
type Route struct {
	Table     int
	Dst       netip.Prefix
	Gw        netip.Addr
	Local     bool
	Metric    int
	LinkIndex int
	Dev       string
}

// Rule is a source-based policy rule: "from Src lookup Table".
type Rule struct {
	Priority int
	Table    int
	Src      netip.Prefix
}

// LinkPlan is the desired state of one managed link.
type LinkPlan struct {
	Link         Link
	Primary      bool
	DeviceNumber int
	NetworkCard  int
	Table        int
	MTU          int // 0 leaves the MTU alone
	Addrs        []Addr
	Routes       []Route
	Rules        []Rule
	// Subnets are the ENI's own subnets; only addresses inside them are
	// ever removed from the link.
	Subnets []netip.Prefix
	// Owned are addresses that belong to someone else (the DHCP client) and
	// must be neither added nor removed.
	Owned []netip.Addr
}

// ENIError says why one ENI could not be planned. Its link is left alone.
type ENIError struct {
	MAC  string
	Link string // empty when no link has the MAC
	// Pending is true when the metadata may still be propagating (hot-plug):
	// retrying later can succeed.
	Pending bool
	Err     error
}

func (e *ENIError) Error() string {
	on := e.MAC
	if e.Link != "" {
		on = e.Link + " (" + e.MAC + ")"
	}
	return "network interface " + on + ": " + e.Err.Error()
}

func (e *ENIError) Unwrap() error { return e.Err }

// errNotReady is the device-number 0 race: a hot-plugged ENI reports 0
// until its attachment has propagated to IMDS.
var errNotReady = errors.New("device-number 0 on a secondary interface: metadata still propagating")

// Desired is the planner's answer.
type Desired struct {
	// Links are the managed links, ordered by table.
	Links []LinkPlan
	// Errors hold one entry per ENI that could not be planned; their links
	// must not be changed.
	Errors []*ENIError
	// Unlisted are links (not ignored, with a MAC) that metadata does not
	// know (yet): a hot-plugged ENI before its metadata appears.
	Unlisted []Link
}

// Err joins the per-ENI errors, or returns nil.
func (d Desired) Err() error {
	errs := make([]error, len(d.Errors))
	for i, e := range d.Errors {
		errs[i] = e
	}
	return errors.Join(errs...)
}

// Plan computes the desired state from metadata, the links present and
// config. It is pure: same inputs, same answer.
func Plan(in Inputs, links []Link, cfg Config) Desired {
	var d Desired
	byMAC := map[string]Link{}
	for _, l := range links {
		if l.MAC == "" || cfg.Ignored(l.Name) {
			continue
		}
		byMAC[strings.ToLower(l.MAC)] = l
	}
	listed := map[string]bool{}
	tables := map[int]string{}
	for _, eni := range in.ENIs {
		listed[eni.MAC] = true
		link, ok := byMAC[eni.MAC]
		if !ok {
			continue // not attached to this OS (yet), or ignored
		}
		lp, err := planENI(eni, link, in.PrimaryMAC, cfg)
		if err == nil {
			if other, dup := tables[lp.Table]; dup {
				err = &ENIError{MAC: eni.MAC, Link: link.Name,
					Err: fmt.Errorf("table %d already used by %s: device-number/network-card clash", lp.Table, other)}
			}
		}
		if err != nil {
			d.Errors = append(d.Errors, err)
			continue
		}
		tables[lp.Table] = link.Name
		d.Links = append(d.Links, lp)
	}
	for _, l := range links {
		if l.MAC != "" && !cfg.Ignored(l.Name) && !listed[strings.ToLower(l.MAC)] {
			d.Unlisted = append(d.Unlisted, l)
		}
	}
	sort.Slice(d.Links, func(i, j int) bool { return d.Links[i].Table < d.Links[j].Table })
	return d
}

func planENI(eni ENIMetadata, link Link, primaryMAC string, cfg Config) (LinkPlan, *ENIError) {
	fail := func(pending bool, err error) (LinkPlan, *ENIError) {
		return LinkPlan{}, &ENIError{MAC: eni.MAC, Link: link.Name, Pending: pending, Err: err}
	}
	if eni.Err != nil {
		return fail(true, eni.Err)
	}
	lp := LinkPlan{Link: link, Primary: eni.MAC == primaryMAC}
	v := eni.Values

	var err error
	if s, ok := v["network-card"]; ok {
		if lp.NetworkCard, err = parseIndex("network-card", s); err != nil {
			return fail(false, err)
		}
	}
	s, ok := v["device-number"]
	switch {
	case ok:
		if lp.DeviceNumber, err = parseIndex("device-number", s); err != nil {
			return fail(false, err)
		}
	case !lp.Primary:
		return fail(true, errors.New("device-number missing from metadata"))
	}
	if lp.Primary {
		// The top-level mac is static from launch; trust 0 only for it.
		lp.DeviceNumber, lp.NetworkCard = 0, 0
	} else if lp.DeviceNumber == 0 && lp.NetworkCard == 0 {
		return fail(true, errNotReady)
	}
	lp.Table = TableFor(lp.NetworkCard, lp.DeviceNumber)

	v4s, err := parseAddrs("local-ipv4s", v["local-ipv4s"], true)
	if err != nil {
		return fail(false, err)
	}
	v6s, err := parseAddrs("ipv6s", v["ipv6s"], false)
	if err != nil {
		return fail(false, err)
	}
	var subnet4 []netip.Prefix
	if s, ok := v["subnet-ipv4-cidr-block"]; ok {
		if subnet4, err = parsePrefixes("subnet-ipv4-cidr-block", s, true); err != nil {
			return fail(false, err)
		}
	}
	if len(v4s) > 0 && len(subnet4) != 1 {
		return fail(false, fmt.Errorf("subnet-ipv4-cidr-block: want one IPv4 CIDR for local-ipv4s, got %d", len(subnet4)))
	}
	subnet6, err := parsePrefixes("subnet-ipv6-cidr-blocks", v["subnet-ipv6-cidr-blocks"], false)
	if err != nil {
		return fail(false, err)
	}
	if len(v6s) > 0 && len(subnet6) == 0 {
		return fail(false, errors.New("subnet-ipv6-cidr-blocks missing for ipv6s"))
	}
	pfx4, err := parsePrefixes("ipv4-prefix", v["ipv4-prefix"], true)
	if err != nil {
		return fail(false, err)
	}
	pfx6, err := parsePrefixes("ipv6-prefix", v["ipv6-prefix"], false)
	if err != nil {
		return fail(false, err)
	}
	if len(v4s) == 0 && len(v6s) == 0 {
		return fail(true, errors.New("no local-ipv4s or ipv6s in metadata"))
	}

	// Addresses. The primary's first address of each family belongs to the
	// DHCP client unless config says there is none.
	dhcp := lp.Primary && !cfg.StaticPrimary
	for i, a := range v4s {
		if !subnet4[0].Contains(a) {
			return fail(false, fmt.Errorf("local-ipv4s: %s is outside subnet %s", a, subnet4[0]))
		}
		switch {
		case i == 0 && dhcp:
			lp.Owned = append(lp.Owned, a)
		case i == 0:
			lp.Addrs = append(lp.Addrs, Addr{Prefix: netip.PrefixFrom(a, subnet4[0].Bits())})
		default:
			lp.Addrs = append(lp.Addrs, Addr{Prefix: netip.PrefixFrom(a, 32), NoPrefixRoute: true})
		}
	}
	for i, a := range v6s {
		block, ok := containing(subnet6, a)
		if !ok {
			return fail(false, fmt.Errorf("ipv6s: %s is outside subnet-ipv6-cidr-blocks", a))
		}
		if i == 0 && dhcp {
			lp.Owned = append(lp.Owned, a)
			continue
		}
		lp.Addrs = append(lp.Addrs, Addr{Prefix: netip.PrefixFrom(a, block.Bits())})
	}
	lp.Subnets = append(append(lp.Subnets, subnet4...), subnet6...)

	// Routes in the ENI's own table: the subnet on-link, the default via the
	// subnet's first host (the VPC router).
	add := func(r Route) {
		r.LinkIndex, r.Dev = link.Index, link.Name
		lp.Routes = append(lp.Routes, r)
	}
	if len(v4s) > 0 {
		gw := subnet4[0].Masked().Addr().Next()
		add(Route{Table: lp.Table, Dst: subnet4[0].Masked()})
		add(Route{Table: lp.Table, Dst: netip.PrefixFrom(netip.IPv4Unspecified(), 0), Gw: gw})
		if lp.Primary && cfg.StaticPrimary {
			add(Route{Table: tableMain, Dst: netip.PrefixFrom(netip.IPv4Unspecified(), 0), Gw: gw, Metric: metricBase})
		}
	}
	if len(subnet6) > 0 {
		for _, b := range subnet6 {
			add(Route{Table: lp.Table, Dst: b.Masked()})
		}
		gw := subnet6[0].Masked().Addr().Next()
		add(Route{Table: lp.Table, Dst: netip.PrefixFrom(netip.IPv6Unspecified(), 0), Gw: gw})
		if lp.Primary && cfg.StaticPrimary {
			add(Route{Table: tableMain, Dst: netip.PrefixFrom(netip.IPv6Unspecified(), 0), Gw: gw, Metric: metricBase})
		}
	}
	pfxs := append(append([]netip.Prefix{}, pfx4...), pfx6...)
	if !cfg.NoPrefixRoutes {
		for _, p := range pfxs {
			add(Route{Table: tableLocal, Dst: p.Masked(), Local: true})
		}
	}

	// Rules only for secondary ENIs: a rule for the primary's addresses
	// would send replies to local containers out of the ENI
	// (amazon-ec2-net-utils issue 97).
	if !lp.Primary {
		for _, a := range append(append([]netip.Addr{}, v4s...), v6s...) {
			lp.Rules = append(lp.Rules, Rule{Priority: lp.Table, Table: lp.Table, Src: netip.PrefixFrom(a, a.BitLen())})
		}
		for _, p := range pfxs {
			lp.Rules = append(lp.Rules, Rule{Priority: lp.Table, Table: lp.Table, Src: p.Masked()})
		}
	}

	switch mtu := cfg.mtu(); {
	case mtu < 0:
	case cfg.MTUFloor && link.MTU >= mtu:
	default:
		lp.MTU = mtu
	}
	return lp, nil
}

func parseIndex(key, s string) (int, error) {
	s = strings.TrimSpace(s)
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 99 {
		return 0, fmt.Errorf("%s: %q is not a number from 0 to 99", key, s)
	}
	return n, nil
}

func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

func parseAddrs(key, s string, v4 bool) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, l := range lines(s) {
		a, err := netip.ParseAddr(l)
		if err != nil || a.Is4() != v4 || a.Zone() != "" {
			return nil, fmt.Errorf("%s: %q is not an %s address", key, l, family(v4))
		}
		out = append(out, a)
	}
	return out, nil
}

func parsePrefixes(key, s string, v4 bool) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, l := range lines(s) {
		p, err := netip.ParsePrefix(l)
		if err != nil || p.Addr().Is4() != v4 {
			return nil, fmt.Errorf("%s: %q is not an %s CIDR block", key, l, family(v4))
		}
		out = append(out, p)
	}
	return out, nil
}

func family(v4 bool) string {
	if v4 {
		return "IPv4"
	}
	return "IPv6"
}

func containing(ps []netip.Prefix, a netip.Addr) (netip.Prefix, bool) {
	for _, p := range ps {
		if p.Contains(a) {
			return p, true
		}
	}
	return netip.Prefix{}, false
}
