package network

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/flint-dev/flint/internal/testenv"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// testNet is an "instance" namespace whose ethN links are veth pairs into a
// "VPC" namespace that plays the subnet routers (10.0.N+1.1) and a remote
// client (192.168.100.1, 2001:db8:ff::1 on its lo). Nothing touches the
// host namespace.
type testNet struct {
	ns, vpc string
	nsh     netns.NsHandle
	h       *netlink.Handle
}

var fixtureMACs = []string{mac0, mac1, mac2, "0e:00:00:00:00:04"}

func newTestNet(t testing.TB) *testNet {
	t.Helper()
	tn := &testNet{ns: testenv.Netns(t), vpc: testenv.Netns(t)}
	var err error
	if tn.nsh, err = netns.GetFromName(tn.ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tn.nsh.Close() })
	if tn.h, err = netlink.NewHandleAt(tn.nsh); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tn.h.Close)
	// EC2 images turn IPv6 duplicate address detection off
	// (amazon-ec2-net-utils' 90-ipv6-dad.conf); with it on, fresh veths
	// hold packets for a couple of seconds.
	for _, ns := range []string{tn.ns, tn.vpc} {
		for _, conf := range []string{"all", "default"} {
			out, err := exec.Command(testenv.Tool(t, "ip"), "netns", "exec", ns, "sh", "-c",
				"echo 0 > /proc/sys/net/ipv6/conf/"+conf+"/accept_dad").CombinedOutput()
			if err != nil {
				t.Fatalf("disable DAD in %s: %v: %s", ns, err, out)
			}
		}
	}
	ipCmd(t, "-n", tn.vpc, "addr", "add", "192.168.100.1/32", "dev", "lo")
	ipCmd(t, "-n", tn.vpc, "addr", "add", "2001:db8:ff::1/128", "dev", "lo")
	return tn
}

// attach creates ethI with the fixture MAC and its router end pI.
func (tn *testNet) attach(t testing.TB, i int) {
	t.Helper()
	tn.attachMAC(t, i, fixtureMACs[i])
}

func (tn *testNet) attachMAC(t testing.TB, i int, mac string) {
	t.Helper()
	eth, p := fmt.Sprintf("eth%d", i), fmt.Sprintf("p%d", i)
	ipCmd(t, "-n", tn.ns, "link", "add", eth, "address", mac, "type", "veth", "peer", "name", p, "netns", tn.vpc)
	ipCmd(t, "-n", tn.vpc, "addr", "add", fmt.Sprintf("10.0.%d.1/24", i+1), "dev", p)
	ipCmd(t, "-n", tn.vpc, "addr", "add", fmt.Sprintf("2001:db8:%d::1/64", i+1), "dev", p, "nodad")
	ipCmd(t, "-n", tn.vpc, "link", "set", p, "up")
}

func (tn *testNet) detach(t testing.TB, i int) {
	t.Helper()
	ipCmd(t, "-n", tn.ns, "link", "del", fmt.Sprintf("eth%d", i))
}

func ipCmd(t testing.TB, args ...string) []byte {
	t.Helper()
	out, err := exec.Command(testenv.Tool(t, "ip"), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return out
}

func ipJSON(t testing.TB, v any, args ...string) {
	t.Helper()
	out := ipCmd(t, append([]string{"-j"}, args...)...)
	if err := json.Unmarshal(out, v); err != nil {
		t.Fatalf("ip -j %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// ipState renders what "ip -j" shows in ns: global addresses on ethN,
// routes and rules with protocol 241, in the package's own notation.
func ipState(t testing.TB, ns string) (addrs, routes, rules []string) {
	t.Helper()
	var links []struct {
		Ifname   string `json:"ifname"`
		AddrInfo []struct {
			Local     string `json:"local"`
			Prefixlen int    `json:"prefixlen"`
			Scope     string `json:"scope"`
		} `json:"addr_info"`
	}
	ipJSON(t, &links, "-n", ns, "addr", "show")
	for _, l := range links {
		for _, a := range l.AddrInfo {
			if a.Scope == "global" && strings.HasPrefix(l.Ifname, "eth") {
				addrs = append(addrs, fmt.Sprintf("%s %s/%d", l.Ifname, a.Local, a.Prefixlen))
			}
		}
	}
	for _, fam := range []string{"-4", "-6"} {
		var rs []struct {
			Type     string `json:"type"`
			Dst      string `json:"dst"`
			Gateway  string `json:"gateway"`
			Dev      string `json:"dev"`
			Table    string `json:"table"`
			Metric   int    `json:"metric"`
			Protocol string `json:"protocol"`
		}
		ipJSON(t, &rs, "-n", ns, fam, "route", "show", "table", "all", "proto", "241")
		for _, r := range rs {
			s := r.Dst
			if r.Type == "local" {
				s = "local " + s
			}
			if r.Gateway != "" {
				s += " via " + r.Gateway
			}
			s += " dev " + r.Dev
			if r.Table != "" && r.Table != "main" {
				s += " table " + r.Table
			}
			if r.Metric != 0 && r.Metric != 1024 {
				s += fmt.Sprintf(" metric %d", r.Metric)
			}
			routes = append(routes, s)
		}
		var ru []struct {
			Priority int    `json:"priority"`
			Src      string `json:"src"`
			Srclen   int    `json:"srclen"`
			Table    string `json:"table"`
			Protocol string `json:"protocol"`
		}
		ipJSON(t, &ru, "-n", ns, fam, "rule", "show")
		for _, r := range ru {
			if r.Protocol != "241" && r.Protocol != "0xf1" {
				continue
			}
			src := r.Src
			if r.Srclen != 0 && r.Srclen != 32 && r.Srclen != 128 {
				src = fmt.Sprintf("%s/%d", r.Src, r.Srclen)
			}
			rules = append(rules, fmt.Sprintf("priority %d from %s lookup %s", r.Priority, src, r.Table))
		}
	}
	sort.Strings(addrs)
	sort.Strings(routes)
	sort.Strings(rules)
	return addrs, routes, rules
}

// netlinkState renders the same through the package's netlink reader.
func netlinkState(t testing.TB, h *netlink.Handle) (addrs, routes, rules []string) {
	t.Helper()
	links, err := ReadLinks(h)
	if err != nil {
		t.Fatal(err)
	}
	cur, err := ReadCurrent(h, links)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		for _, a := range cur.Addrs[l.Index] {
			if a.Global && strings.HasPrefix(l.Name, "eth") {
				addrs = append(addrs, l.Name+" "+a.Prefix.String())
			}
		}
	}
	for _, r := range cur.Routes {
		if r.Dst.Addr().Is6() && r.Metric == 1024 {
			r.Metric = 0
		}
		routes = append(routes, r.String())
	}
	for _, r := range cur.Rules {
		rules = append(rules, r.String())
	}
	sort.Strings(addrs)
	sort.Strings(routes)
	sort.Strings(rules)
	return addrs, routes, rules
}

func sorted(s ...string) []string { sort.Strings(s); return s }

var (
	wantAddrs = sorted(
		"eth0 10.0.1.10/24", "eth0 10.0.1.11/32",
		"eth1 10.0.2.10/24", "eth1 10.0.2.11/32", "eth1 10.0.2.12/32", "eth1 2001:db8:2::10/64",
		"eth2 10.0.3.10/24", "eth2 10.0.3.11/32")
	wantRoutes = sorted(
		"10.0.1.0/24 dev eth0 table 10000", "default via 10.0.1.1 dev eth0 table 10000",
		"default via 10.0.1.1 dev eth0 metric 512",
		"10.0.2.0/24 dev eth1 table 10001", "default via 10.0.2.1 dev eth1 table 10001",
		"local 10.0.2.64/28 dev eth1 table local",
		"2001:db8:2::/64 dev eth1 table 10001", "default via 2001:db8:2::1 dev eth1 table 10001",
		"10.0.3.0/24 dev eth2 table 10100", "default via 10.0.3.1 dev eth2 table 10100")
	wantRules = sorted(
		"priority 10001 from 10.0.2.10 lookup 10001", "priority 10001 from 10.0.2.11 lookup 10001",
		"priority 10001 from 10.0.2.12 lookup 10001", "priority 10001 from 10.0.2.64/28 lookup 10001",
		"priority 10001 from 2001:db8:2::10 lookup 10001",
		"priority 10100 from 10.0.3.10 lookup 10100", "priority 10100 from 10.0.3.11 lookup 10100")
)

func checkState(t *testing.T, tn *testNet, addrs, routes, rules []string) {
	t.Helper()
	for _, src := range []string{"ip -j", "netlink"} {
		var a, ro, ru []string
		if src == "netlink" {
			a, ro, ru = netlinkState(t, tn.h)
		} else {
			a, ro, ru = ipState(t, tn.ns)
		}
		for _, c := range []struct {
			what      string
			got, want []string
		}{{"addresses", a, addrs}, {"routes", ro, routes}, {"rules", ru, rules}} {
			if !reflect.DeepEqual(c.got, c.want) {
				t.Errorf("%s %s:\n got %s\nwant %s", src, c.what,
					strings.Join(c.got, "\n     "), strings.Join(c.want, "\n     "))
			}
		}
	}
}

var staticCfg = Config{StaticPrimary: true}

func TestReconcileInNamespace(t *testing.T) {
	tn := newTestNet(t)
	for i := range 3 {
		tn.attach(t, i)
	}
	md := fixtureMetadata()
	ctx := context.Background()

	res, err := Reconcile(ctx, tn.h, md, staticCfg, false)
	if err != nil {
		t.Fatalf("first reconcile: %v", err)
	}
	if len(res.Changes) == 0 {
		t.Fatal("first reconcile changed nothing")
	}
	checkState(t, tn, wantAddrs, wantRoutes, wantRules)
	for i := range 3 {
		l, err := tn.h.LinkByName(fmt.Sprintf("eth%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if l.Attrs().MTU != 9001 || l.Attrs().Flags&(1<<0) == 0 {
			t.Errorf("eth%d: mtu %d flags %v, want 9001 and up", i, l.Attrs().MTU, l.Attrs().Flags)
		}
	}

	t.Run("a second run changes nothing", func(t *testing.T) {
		res, err := Reconcile(ctx, tn.h, md, staticCfg, false)
		if err != nil || len(res.Changes) != 0 {
			t.Errorf("second reconcile: err %v, changes %v", err, changeLines(res.Changes))
		}
	})

	t.Run("hand-made rules, routes and addresses survive an unassigned address being removed", func(t *testing.T) {
		ipCmd(t, "-n", tn.ns, "rule", "add", "from", "10.0.2.200", "lookup", "10001", "priority", "10001")
		ipCmd(t, "-n", tn.ns, "route", "add", "10.0.9.0/24", "via", "10.0.2.1", "dev", "eth1", "table", "10001")
		ipCmd(t, "-n", tn.ns, "route", "add", "192.168.60.0/24", "via", "10.0.1.1", "dev", "eth0")
		ipCmd(t, "-n", tn.ns, "addr", "add", "192.168.50.1/24", "dev", "eth1")
		md.set(macsPath+mac1+"/local-ipv4s", "10.0.2.10\n10.0.2.11")
		res, err := Reconcile(ctx, tn.h, md, staticCfg, false)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"del rule priority 10001 from 10.0.2.12 lookup 10001", "del address 10.0.2.12/32 dev eth1"}
		if got := changeLines(res.Changes); !reflect.DeepEqual(got, want) {
			t.Errorf("changes %v, want %v", got, want)
		}
		out := string(ipCmd(t, "-n", tn.ns, "rule", "show")) + string(ipCmd(t, "-n", tn.ns, "route", "show", "table", "all")) +
			string(ipCmd(t, "-n", tn.ns, "addr", "show"))
		for _, s := range []string{"from 10.0.2.200 lookup 10001", "10.0.9.0/24 via 10.0.2.1 dev eth1 table 10001",
			"192.168.60.0/24 via 10.0.1.1 dev eth0", "192.168.50.1/24"} {
			if !strings.Contains(out, s) {
				t.Errorf("hand-made %q is gone", s)
			}
		}
		md.set(macsPath+mac1+"/local-ipv4s", "10.0.2.10\n10.0.2.11\n10.0.2.12")
		if _, err := Reconcile(ctx, tn.h, md, staticCfg, false); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("a transient metadata error removes nothing", func(t *testing.T) {
		md.fail[macsPath+mac1+"/local-ipv4s"] = &testError{"IMDS answered HTTP 500"}
		defer delete(md.fail, macsPath+mac1+"/local-ipv4s")
		res, err := Reconcile(ctx, tn.h, md, staticCfg, false)
		if err == nil || !strings.Contains(err.Error(), "HTTP 500") {
			t.Errorf("err = %v, want the 500 for eth1", err)
		}
		for _, c := range res.Changes {
			if c.Op == OpDel {
				t.Errorf("removed %s during an IMDS error", c)
			}
		}
	})
	// Leave the hand-made objects out of the final comparison.
	ipCmd(t, "-n", tn.ns, "rule", "del", "from", "10.0.2.200", "lookup", "10001", "priority", "10001")
	ipCmd(t, "-n", tn.ns, "addr", "del", "192.168.50.1/24", "dev", "eth1")
	checkState(t, tn, wantAddrs, wantRoutes, wantRules)

	t.Run("replies leave through the interface the request came in on", func(t *testing.T) {
		checkReturnPath(t, tn, map[string][]string{
			"eth0": {"10.0.1.10", "10.0.1.11"},
			"eth1": {"10.0.2.10", "10.0.2.11", "10.0.2.12", "10.0.2.70", "2001:db8:2::10"},
			"eth2": {"10.0.3.10", "10.0.3.11"},
		})
	})
}

type testError struct{ s string }

func (e *testError) Error() string { return e.s }

func TestDryRunChangesNothingAndPrintsThePlan(t *testing.T) {
	tn := newTestNet(t)
	tn.attach(t, 0)
	tn.attach(t, 1)
	md := fixtureMetadata()
	res, err := Reconcile(context.Background(), tn.h, md, staticCfg, true)
	if err != nil {
		t.Fatal(err)
	}
	lines := changeLines(res.Changes)
	for _, want := range []string{"add address 10.0.2.10/24 dev eth1", "add rule priority 10001 from 10.0.2.11 lookup 10001",
		"add route default via 10.0.2.1 dev eth1 table 10001", "set mtu 9001 dev eth0 (was 1500); set link eth0 up"} {
		if !contains(lines, want) {
			t.Errorf("plan lacks %q:\n%s", want, strings.Join(lines, "\n"))
		}
	}
	a, ro, ru := ipState(t, tn.ns)
	if len(a)+len(ro)+len(ru) != 0 {
		t.Errorf("dry run changed the namespace: %v %v %v", a, ro, ru)
	}
}

func TestDHCPAddressOnThePrimaryIsLeftAlone(t *testing.T) {
	tn := newTestNet(t)
	tn.attach(t, 0)
	// What a DHCP client leaves: the primary address with a lease lifetime.
	ipCmd(t, "-n", tn.ns, "addr", "add", "10.0.1.10/24", "dev", "eth0", "valid_lft", "3600", "preferred_lft", "3600")
	ipCmd(t, "-n", tn.ns, "link", "set", "eth0", "up")
	md := fixtureMetadata()
	if _, err := Reconcile(context.Background(), tn.h, md, Config{}, false); err != nil {
		t.Fatal(err)
	}
	out := string(ipCmd(t, "-n", tn.ns, "addr", "show", "dev", "eth0"))
	if !strings.Contains(out, "10.0.1.10/24") || !strings.Contains(out, "valid_lft 3") || !strings.Contains(out, "10.0.1.11/32") {
		t.Errorf("eth0 after reconcile:\n%s\nwant the DHCP lease untouched and 10.0.1.11/32 added", out)
	}
	if strings.Contains(string(ipCmd(t, "-n", tn.ns, "route", "show", "table", "main", "proto", "241")), "default") {
		t.Error("flint added a main-table default route next to a DHCP client")
	}
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}

// checkReturnPath pings every address from the VPC's remote client and
// checks, with interface counters, that each reply left through the link
// the address belongs to.
func checkReturnPath(t *testing.T, tn *testNet, byLink map[string][]string) {
	t.Helper()
	const count = 5
	for link, addrs := range byLink {
		for _, a := range addrs {
			dst := netip.MustParseAddr(a)
			src := netip.MustParseAddr("192.168.100.1")
			if dst.Is6() {
				src = netip.MustParseAddr("2001:db8:ff::1")
			}
			before := txPackets(t, tn.h)
			for seq := range count {
				var err error
				testenv.Do(t, tn.vpc, func() { err = echo(src, dst, uint16(seq)) })
				if err != nil {
					t.Fatalf("ping %s from %s: %v", dst, src, err)
				}
			}
			after := txPackets(t, tn.h)
			for l := range byLink {
				d := after[l] - before[l]
				if l == link && d < count {
					t.Errorf("ping %s: %s sent %d packets, want at least %d replies", dst, l, d, count)
				}
				if l != link && d >= count {
					t.Errorf("ping %s: replies left through %s (%d packets), want %s", dst, l, d, link)
				}
			}
		}
	}
}

func txPackets(t *testing.T, h *netlink.Handle) map[string]uint64 {
	t.Helper()
	links, err := h.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]uint64{}
	for _, l := range links {
		if s := l.Attrs().Statistics; s != nil {
			out[l.Attrs().Name] = s.TxPackets
		}
	}
	return out
}

// echo sends one ICMP echo request from src to dst over a raw socket and
// waits up to 2 s for the matching reply.
func echo(src, dst netip.Addr, seq uint16) error {
	fam, proto, req, rep := unix.AF_INET, unix.IPPROTO_ICMP, byte(8), byte(0)
	if dst.Is6() {
		fam, proto, req, rep = unix.AF_INET6, unix.IPPROTO_ICMPV6, 128, 129
	}
	fd, err := unix.Socket(fam, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	sa := func(a netip.Addr) unix.Sockaddr {
		if a.Is6() {
			return &unix.SockaddrInet6{Addr: a.As16()}
		}
		return &unix.SockaddrInet4{Addr: a.As4()}
	}
	if err := unix.Bind(fd, sa(src)); err != nil {
		return fmt.Errorf("bind %s: %w", src, err)
	}
	tv := unix.NsecToTimeval((2 * time.Second).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return err
	}
	const id = 0xf11
	msg := []byte{req, 0, 0, 0, id >> 8, id & 0xff, byte(seq >> 8), byte(seq), 'f', 'l', 'i', 'n', 't'}
	if !dst.Is6() { // the kernel fills the ICMPv6 checksum itself
		binary.BigEndian.PutUint16(msg[2:], icmpChecksum(msg))
	}
	if err := unix.Sendto(fd, msg, 0, sa(dst)); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	buf := make([]byte, 1500)
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		n, from, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return fmt.Errorf("no reply: %w", err)
		}
		b := buf[:n]
		if !dst.Is6() && n > 0 {
			b = b[int(b[0]&0xf)*4:] // raw IPv4 sockets include the IP header
		}
		var fromAddr netip.Addr
		switch f := from.(type) {
		case *unix.SockaddrInet4:
			fromAddr = netip.AddrFrom4(f.Addr)
		case *unix.SockaddrInet6:
			fromAddr = netip.AddrFrom16(f.Addr)
		}
		if len(b) >= 8 && b[0] == rep && binary.BigEndian.Uint16(b[4:]) == id &&
			binary.BigEndian.Uint16(b[6:]) == seq && fromAddr == dst {
			return nil
		}
	}
	return fmt.Errorf("no reply within 2s")
}

func icmpChecksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

func TestIgnoredLinksAreNeverTouched(t *testing.T) {
	tn := newTestNet(t)
	tn.attach(t, 0)
	// A bridge that happens to carry an ENI's MAC, and a link config ignores.
	ipCmd(t, "-n", tn.ns, "link", "add", "docker0", "address", mac1, "type", "bridge")
	ipCmd(t, "-n", tn.ns, "link", "add", "eth2", "address", mac2, "type", "veth", "peer", "name", "p2", "netns", tn.vpc)
	md := fixtureMetadata()
	res, err := Reconcile(context.Background(), tn.h, md, Config{StaticPrimary: true, Ignore: []string{"eth2"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range res.Changes {
		if c.Link.Name != "eth0" {
			t.Errorf("change outside eth0: %s", c)
		}
	}
	for _, name := range []string{"docker0", "eth2"} {
		out := string(ipCmd(t, "-n", tn.ns, "addr", "show", "dev", name))
		if strings.Contains(out, "inet ") || strings.Contains(out, "mtu 9001") || strings.Contains(out, ",UP") {
			t.Errorf("%s was touched:\n%s", name, out)
		}
	}
}

func TestApplyGoesOnAfterAFailedStep(t *testing.T) {
	tn := newTestNet(t)
	tn.attach(t, 1)
	eth1 := Link{Index: -1, Name: "eth1"}
	l, err := tn.h.LinkByName("eth1")
	if err != nil {
		t.Fatal(err)
	}
	eth1.Index = l.Attrs().Index
	bad := Route{Table: 10001, Dst: pfx("10.0.9.0/24"), Gw: netip.MustParseAddr("10.0.8.1"), LinkIndex: eth1.Index, Dev: "eth1"}
	good := Addr{Prefix: pfx("10.0.2.10/24")}
	err = Apply(context.Background(), tn.h, []Change{
		{Op: OpAdd, Link: eth1, Route: &bad},
		{Op: OpAdd, Link: eth1, Addr: &good},
		{Op: OpAdd, Link: eth1, Addr: &good}, // already there: not an error
	})
	if err == nil || !strings.Contains(err.Error(), "add route 10.0.9.0/24 via 10.0.8.1 dev eth1 table 10001: ") {
		t.Fatalf("err = %v, want one naming the unreachable route", err)
	}
	if strings.Count(err.Error(), "\n") != 0 {
		t.Errorf("more than one failure reported: %v", err)
	}
	if !strings.Contains(string(ipCmd(t, "-n", tn.ns, "addr", "show", "dev", "eth1")), "10.0.2.10/24") {
		t.Error("the address after the failed route was not added")
	}
}
