package network

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
)

// Current is the state read from the kernel that Diff compares against.
type Current struct {
	Links []Link
	// Addrs are every address of every link, by link index.
	Addrs map[int][]CurrentAddr
	// Routes and Rules are only those carrying Protocol, from every table.
	Routes []Route
	Rules  []Rule
}

// CurrentAddr is an address present on a link. Permanent is false for
// addresses with a lifetime (DHCP, SLAAC), which flint never removes.
type CurrentAddr struct {
	Prefix    netip.Prefix
	Permanent bool
	Global    bool
}

// Op is what a Change does.
type Op int

// The operations, in the order Diff emits them.
const (
	OpDel Op = iota
	OpSet
	OpAdd
)

// Change is one step of a reconciliation. Exactly one of Addr, Route, Rule
// is set for OpAdd/OpDel; OpSet changes MTU (when non-zero) and/or brings
// the link up.
type Change struct {
	Op    Op
	Link  Link
	Addr  *Addr
	Route *Route
	Rule  *Rule
	MTU   int
	Up    bool
}

func (c Change) String() string {
	op := map[Op]string{OpAdd: "add", OpDel: "del", OpSet: "set"}[c.Op]
	switch {
	case c.Addr != nil:
		s := fmt.Sprintf("%s address %s dev %s", op, c.Addr.Prefix, c.Link.Name)
		if c.Addr.NoPrefixRoute {
			s += " noprefixroute"
		}
		return s
	case c.Route != nil:
		return op + " route " + c.Route.String()
	case c.Rule != nil:
		return op + " rule " + c.Rule.String()
	}
	var parts []string
	if c.MTU != 0 {
		parts = append(parts, fmt.Sprintf("set mtu %d dev %s (was %d)", c.MTU, c.Link.Name, c.Link.MTU))
	}
	if c.Up {
		parts = append(parts, "set link "+c.Link.Name+" up")
	}
	return strings.Join(parts, "; ")
}

// String renders the route the way "ip route" would.
func (r Route) String() string {
	var b strings.Builder
	if r.Local {
		b.WriteString("local ")
	}
	if r.Dst.Bits() == 0 {
		b.WriteString("default")
	} else {
		b.WriteString(r.Dst.String())
	}
	if r.Gw.IsValid() {
		b.WriteString(" via " + r.Gw.String())
	}
	b.WriteString(" dev " + r.Dev)
	switch r.Table {
	case tableMain, 0:
	case tableLocal:
		b.WriteString(" table local")
	default:
		fmt.Fprintf(&b, " table %d", r.Table)
	}
	if r.Metric != 0 {
		fmt.Fprintf(&b, " metric %d", r.Metric)
	}
	return b.String()
}

// String renders the rule the way "ip rule" would.
func (r Rule) String() string {
	src := r.Src.String()
	if r.Src.Bits() == r.Src.Addr().BitLen() {
		src = r.Src.Addr().String()
	}
	return fmt.Sprintf("priority %d from %s lookup %d", r.Priority, src, r.Table)
}

type routeKey struct {
	table, metric, link int
	dst                 netip.Prefix
	gw                  netip.Addr
	local               bool
}

func (r Route) key() routeKey {
	m := r.Metric
	if m == 0 && r.Dst.Addr().Is6() {
		m = 1024 // the kernel's default IPv6 metric
	}
	t := r.Table
	if t == 0 {
		t = tableMain
	}
	return routeKey{t, m, r.LinkIndex, r.Dst.Masked(), r.Gw, r.Local}
}

// Diff returns the changes that take cur to d, deletions first. It is pure.
// Links with a planning error and links metadata does not know are not in
// d.Links and are left alone; a flint rule is removed only when its table
// belongs to a planned link or no flint route uses the table any more (its
// link is gone: the kernel dropped the routes with it).
func Diff(d Desired, cur Current) []Change {
	var dels, sets, addAddrs, addRoutes, addRules []Change
	planned := map[int]LinkPlan{}
	plannedTables := map[int]bool{}
	wantRoutes := map[routeKey]bool{}
	wantRules := map[Rule]bool{}
	for _, lp := range d.Links {
		planned[lp.Link.Index] = lp
		plannedTables[lp.Table] = true
		for _, r := range lp.Routes {
			wantRoutes[r.key()] = true
		}
		for _, r := range lp.Rules {
			wantRules[r] = true
		}

		have := map[netip.Addr]bool{}
		for _, ca := range cur.Addrs[lp.Link.Index] {
			have[ca.Prefix.Addr()] = true
		}
		want := map[netip.Addr]bool{}
		for _, a := range lp.Owned {
			want[a] = true
		}
		for _, a := range lp.Addrs {
			want[a.Prefix.Addr()] = true
			if !have[a.Prefix.Addr()] {
				addAddrs = append(addAddrs, Change{Op: OpAdd, Link: lp.Link, Addr: &a})
			}
		}
		for _, ca := range cur.Addrs[lp.Link.Index] {
			if want[ca.Prefix.Addr()] || !ca.Permanent || !ca.Global {
				continue
			}
			if _, in := containing(lp.Subnets, ca.Prefix.Addr()); in {
				addr := Addr{Prefix: ca.Prefix}
				dels = append(dels, Change{Op: OpDel, Link: lp.Link, Addr: &addr})
			}
		}

		set := Change{Op: OpSet, Link: lp.Link, Up: !lp.Link.Up}
		if lp.MTU != 0 && lp.MTU != lp.Link.MTU {
			set.MTU = lp.MTU
		}
		if set.Up || set.MTU != 0 {
			sets = append(sets, set)
		}
	}

	haveRoutes := map[routeKey]bool{}
	routeTables := map[int]bool{}
	for _, r := range cur.Routes {
		haveRoutes[r.key()] = true
		routeTables[r.Table] = true
		if lp, ok := planned[r.LinkIndex]; ok && !wantRoutes[r.key()] {
			r := r
			dels = append(dels, Change{Op: OpDel, Link: lp.Link, Route: &r})
		}
	}
	for _, lp := range d.Links {
		for _, r := range lp.Routes {
			if !haveRoutes[r.key()] {
				addRoutes = append(addRoutes, Change{Op: OpAdd, Link: lp.Link, Route: &r})
			}
		}
	}
	// On-link routes first: a gateway must be reachable when its route is added.
	sort.SliceStable(addRoutes, func(i, j int) bool {
		return !addRoutes[i].Route.Gw.IsValid() && addRoutes[j].Route.Gw.IsValid()
	})

	haveRules := map[Rule]bool{}
	for _, r := range cur.Rules {
		haveRules[r] = true
		if wantRules[r] {
			continue
		}
		if plannedTables[r.Table] || !routeTables[r.Table] {
			r := r
			dels = append(dels, Change{Op: OpDel, Rule: &r})
		}
	}
	for _, lp := range d.Links {
		for _, r := range lp.Rules {
			if !haveRules[r] {
				addRules = append(addRules, Change{Op: OpAdd, Link: lp.Link, Rule: &r})
			}
		}
	}

	// Rules go before routes before addresses when removing, the reverse
	// when adding, so no packet is steered into a half-built table.
	sort.SliceStable(dels, func(i, j int) bool { return delRank(dels[i]) < delRank(dels[j]) })
	out := append(dels, sets...)
	out = append(out, addAddrs...)
	out = append(out, addRoutes...)
	return append(out, addRules...)
}

func delRank(c Change) int {
	switch {
	case c.Rule != nil:
		return 0
	case c.Route != nil:
		return 1
	}
	return 2
}
