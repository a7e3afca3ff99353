package network

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func changeLines(cs []Change) []string {
	out := []string{}
	for _, c := range cs {
		out = append(out, c.String())
	}
	return out
}

func twoENIPlan(t *testing.T) Desired {
	t.Helper()
	in := Inputs{PrimaryMAC: mac0, ENIs: []ENIMetadata{
		primaryENI("local-ipv4s", "10.0.1.10\n10.0.1.11"),
		secondaryENI(mac1, 0, 1, 2, "local-ipv4s", "10.0.2.10\n10.0.2.11"),
		secondaryENI(mac2, 1, 0, 3, "local-ipv4s", "banana"),
	}}
	d := Plan(in, fixtureLinks, Config{})
	if len(d.Links) != 2 || len(d.Errors) != 1 {
		t.Fatalf("fixture plan: %v", summary(d))
	}
	return d
}

func TestDiffFromNothingAddsEverythingInOrder(t *testing.T) {
	got := changeLines(Diff(twoENIPlan(t), Current{}))
	want := []string{
		"set mtu 9001 dev eth0 (was 1500)",
		"set mtu 9001 dev eth1 (was 1500); set link eth1 up",
		"add address 10.0.1.11/32 dev eth0 noprefixroute",
		"add address 10.0.2.10/24 dev eth1",
		"add address 10.0.2.11/32 dev eth1 noprefixroute",
		"add route 10.0.1.0/24 dev eth0 table 10000",
		"add route 10.0.2.0/24 dev eth1 table 10001",
		"add route default via 10.0.1.1 dev eth0 table 10000",
		"add route default via 10.0.2.1 dev eth1 table 10001",
		"add rule priority 10001 from 10.0.2.10 lookup 10001",
		"add rule priority 10001 from 10.0.2.11 lookup 10001",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("diff:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
}

// converged builds the kernel state that applying d would leave.
func converged(d Desired) Current {
	cur := Current{Addrs: map[int][]CurrentAddr{}}
	for _, lp := range d.Links {
		for _, a := range lp.Addrs {
			cur.Addrs[lp.Link.Index] = append(cur.Addrs[lp.Link.Index], CurrentAddr{Prefix: a.Prefix, Permanent: true, Global: true})
		}
		cur.Routes = append(cur.Routes, lp.Routes...)
		cur.Rules = append(cur.Rules, lp.Rules...)
	}
	return cur
}

func TestDiffOfConvergedStateIsEmptyButForLinkSettings(t *testing.T) {
	d := twoENIPlan(t)
	for i := range d.Links {
		d.Links[i].Link.MTU, d.Links[i].Link.Up = 9001, true
	}
	if got := Diff(d, converged(d)); len(got) != 0 {
		t.Errorf("converged state still has changes: %v", changeLines(got))
	}
}

func TestDiffRemovesOnlyWhatItOwns(t *testing.T) {
	d := twoENIPlan(t)
	for i := range d.Links {
		d.Links[i].Link.MTU, d.Links[i].Link.Up = 9001, true
	}
	cur := converged(d)
	eth1, eth2 := 3, 4
	cur.Addrs[eth1] = append(cur.Addrs[eth1],
		CurrentAddr{Prefix: pfx("10.0.2.99/32"), Permanent: true, Global: true},   // unassigned secondary: removed
		CurrentAddr{Prefix: pfx("10.0.2.98/24"), Permanent: false, Global: true},  // DHCP lease: kept
		CurrentAddr{Prefix: pfx("192.168.7.1/24"), Permanent: true, Global: true}, // someone else's subnet: kept
		CurrentAddr{Prefix: pfx("fe80::1/64"), Permanent: true, Global: false},    // link-local: kept
	)
	cur.Addrs[eth2] = []CurrentAddr{{Prefix: pfx("10.0.3.77/32"), Permanent: true, Global: true}} // ENI with junk metadata: kept
	cur.Addrs[2] = append(cur.Addrs[2], CurrentAddr{Prefix: pfx("10.0.1.10/24"), Global: true})   // the DHCP address: kept
	cur.Routes = append(cur.Routes,
		Route{Table: 10001, Dst: pfx("10.0.9.0/24"), LinkIndex: eth1, Dev: "eth1"}, // stale flint route on a planned link: removed
		Route{Table: 10100, Dst: pfx("10.0.3.0/24"), LinkIndex: eth2, Dev: "eth2"}, // route of the junk ENI: kept
	)
	cur.Rules = append(cur.Rules,
		Rule{Priority: 10001, Table: 10001, Src: pfx("10.0.2.99/32")}, // unassigned address: removed
		Rule{Priority: 10100, Table: 10100, Src: pfx("10.0.3.77/32")}, // junk ENI still has routes: kept
		Rule{Priority: 10002, Table: 10002, Src: pfx("10.0.4.10/32")}, // detached ENI, no routes left: removed
	)
	got := changeLines(Diff(d, cur))
	want := []string{
		"del rule priority 10001 from 10.0.2.99 lookup 10001",
		"del rule priority 10002 from 10.0.4.10 lookup 10002",
		"del route 10.0.9.0/24 dev eth1 table 10001",
		"del address 10.0.2.99/32 dev eth1",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("diff:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
}

func TestDiffKeepsEverythingWhenMetadataIsUnknown(t *testing.T) {
	d := twoENIPlan(t)
	cur := converged(d)
	unknown := Plan(Inputs{PrimaryMAC: mac0, ENIs: []ENIMetadata{
		primaryENI(), {MAC: mac1, Err: errTest}}}, fixtureLinks, Config{MTU: -1})
	for _, c := range Diff(unknown, cur) {
		if c.Op == OpDel && c.Link.Name != "eth0" {
			t.Errorf("unknown eth1 lost state: %s", c)
		}
	}
}

var errTest = errors.New("read meta-data/network/interfaces/macs/x/local-ipv4s: IMDS answered HTTP 500")

func TestDiffTreatsKernelIPv6MetricAsDefault(t *testing.T) {
	r := Route{Table: 10001, Dst: pfx("2001:db8:2::/64"), LinkIndex: 3}
	k := r
	k.Metric = 1024
	if r.key() != k.key() {
		t.Error("an IPv6 route read back with metric 1024 does not match the planned metric 0")
	}
}
