package network

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

const (
	mac0 = "0e:00:00:00:00:01"
	mac1 = "0e:00:00:00:00:02"
	mac2 = "0e:00:00:00:00:03"
)

var fixtureLinks = []Link{
	{Index: 1, Name: "lo", MTU: 65536, Up: true},
	{Index: 2, Name: "eth0", MAC: mac0, MTU: 1500, Up: true},
	{Index: 3, Name: "eth1", MAC: mac1, MTU: 1500},
	{Index: 4, Name: "eth2", MAC: mac2, MTU: 1500},
	{Index: 5, Name: "docker0", MAC: "02:42:00:00:00:01", MTU: 1500, Up: true},
}

func eni(mac string, kv ...string) ENIMetadata {
	e := ENIMetadata{MAC: mac, Values: map[string]string{}}
	for i := 0; i+1 < len(kv); i += 2 {
		e.Values[kv[i]] = kv[i+1]
	}
	return e
}

func primaryENI(extra ...string) ENIMetadata {
	return eni(mac0, append([]string{"device-number", "0", "network-card", "0",
		"local-ipv4s", "10.0.1.10", "subnet-ipv4-cidr-block", "10.0.1.0/24"}, extra...)...)
}

func secondaryENI(mac string, card, dev int, third int, extra ...string) ENIMetadata {
	return eni(mac, append([]string{"device-number", fmt.Sprint(dev), "network-card", fmt.Sprint(card),
		"local-ipv4s", fmt.Sprintf("10.0.%d.10", third), "subnet-ipv4-cidr-block", fmt.Sprintf("10.0.%d.0/24", third)}, extra...)...)
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// summary flattens a plan into the lines a reader checks.
func summary(d Desired) []string {
	var out []string
	for _, lp := range d.Links {
		out = append(out, fmt.Sprintf("%s table %d primary=%v mtu=%d", lp.Link.Name, lp.Table, lp.Primary, lp.MTU))
		for _, a := range lp.Addrs {
			c := Change{Op: OpAdd, Link: lp.Link, Addr: &a}
			out = append(out, c.String())
		}
		for _, a := range lp.Owned {
			out = append(out, "dhcp "+a.String()+" dev "+lp.Link.Name)
		}
		for _, r := range lp.Routes {
			out = append(out, "route "+r.String())
		}
		for _, r := range lp.Rules {
			out = append(out, "rule "+r.String())
		}
	}
	for _, e := range d.Errors {
		out = append(out, fmt.Sprintf("error pending=%v: %v", e.Pending, e))
	}
	return out
}

func TestPlan(t *testing.T) {
	tests := []struct {
		name string
		in   Inputs
		cfg  Config
		want []string
	}{
		{
			name: "one ENI leaves the DHCP address alone and only sets routes in table 10000",
			in:   Inputs{PrimaryMAC: mac0, ENIs: []ENIMetadata{primaryENI()}},
			want: []string{
				"eth0 table 10000 primary=true mtu=9001",
				"dhcp 10.0.1.10 dev eth0",
				"route 10.0.1.0/24 dev eth0 table 10000",
				"route default via 10.0.1.1 dev eth0 table 10000",
			},
		},
		{
			name: "a static primary also gets its address and a main-table default route",
			in:   Inputs{PrimaryMAC: mac0, ENIs: []ENIMetadata{primaryENI()}},
			cfg:  Config{StaticPrimary: true, MTU: -1},
			want: []string{
				"eth0 table 10000 primary=true mtu=0",
				"add address 10.0.1.10/24 dev eth0",
				"route 10.0.1.0/24 dev eth0 table 10000",
				"route default via 10.0.1.1 dev eth0 table 10000",
				"route default via 10.0.1.1 dev eth0 metric 512",
			},
		},
		{
			name: "two ENIs on one card get tables 10000 and 10001 and rules only for the secondary",
			in: Inputs{PrimaryMAC: mac0, ENIs: []ENIMetadata{
				primaryENI(), secondaryENI(mac1, 0, 1, 2)}},
			want: []string{
				"eth0 table 10000 primary=true mtu=9001",
				"dhcp 10.0.1.10 dev eth0",
				"route 10.0.1.0/24 dev eth0 table 10000",
				"route default via 10.0.1.1 dev eth0 table 10000",
				"eth1 table 10001 primary=false mtu=9001",
				"add address 10.0.2.10/24 dev eth1",
				"route 10.0.2.0/24 dev eth1 table 10001",
				"route default via 10.0.2.1 dev eth1 table 10001",
				"rule priority 10001 from 10.0.2.10 lookup 10001",
			},
		},
		{
			name: "a second network card adds 100 to the table and a device-number 0 there is trusted",
			in: Inputs{PrimaryMAC: mac0, ENIs: []ENIMetadata{
				primaryENI(), secondaryENI(mac2, 1, 0, 3)}},
			cfg: Config{MTU: -1},
			want: []string{
				"eth0 table 10000 primary=true mtu=0",
				"dhcp 10.0.1.10 dev eth0",
				"route 10.0.1.0/24 dev eth0 table 10000",
				"route default via 10.0.1.1 dev eth0 table 10000",
				"eth2 table 10100 primary=false mtu=0",
				"add address 10.0.3.10/24 dev eth2",
				"route 10.0.3.0/24 dev eth2 table 10100",
				"route default via 10.0.3.1 dev eth2 table 10100",
				"rule priority 10100 from 10.0.3.10 lookup 10100",
			},
		},
		{
			name: "secondary IPv4s are /32 aliases without prefix route, each with a rule on a secondary ENI",
			in: Inputs{PrimaryMAC: mac0, ENIs: []ENIMetadata{
				primaryENI("local-ipv4s", "10.0.1.10\n10.0.1.11\n"),
				secondaryENI(mac1, 0, 1, 2, "local-ipv4s", "10.0.2.10\n10.0.2.11\n10.0.2.12")}},
			cfg: Config{MTU: 1500},
			want: []string{
				"eth0 table 10000 primary=true mtu=1500",
				"add address 10.0.1.11/32 dev eth0 noprefixroute",
				"dhcp 10.0.1.10 dev eth0",
				"route 10.0.1.0/24 dev eth0 table 10000",
				"route default via 10.0.1.1 dev eth0 table 10000",
				"eth1 table 10001 primary=false mtu=1500",
				"add address 10.0.2.10/24 dev eth1",
				"add address 10.0.2.11/32 dev eth1 noprefixroute",
				"add address 10.0.2.12/32 dev eth1 noprefixroute",
				"route 10.0.2.0/24 dev eth1 table 10001",
				"route default via 10.0.2.1 dev eth1 table 10001",
				"rule priority 10001 from 10.0.2.10 lookup 10001",
				"rule priority 10001 from 10.0.2.11 lookup 10001",
				"rule priority 10001 from 10.0.2.12 lookup 10001",
			},
		},
		{
			name: "an IPv6-only secondary gets IPv6 addresses, the block route, a default via ::1 and rules",
			in: Inputs{PrimaryMAC: mac0, ENIs: []ENIMetadata{
				primaryENI(),
				eni(mac1, "device-number", "1", "ipv6s", "2001:db8:2::10\n2001:db8:2::11",
					"subnet-ipv6-cidr-blocks", "2001:db8:2::/64")}},
			cfg: Config{MTU: -1},
			want: []string{
				"eth0 table 10000 primary=true mtu=0",
				"dhcp 10.0.1.10 dev eth0",
				"route 10.0.1.0/24 dev eth0 table 10000",
				"route default via 10.0.1.1 dev eth0 table 10000",
				"eth1 table 10001 primary=false mtu=0",
				"add address 2001:db8:2::10/64 dev eth1",
				"add address 2001:db8:2::11/64 dev eth1",
				"route 2001:db8:2::/64 dev eth1 table 10001",
				"route default via 2001:db8:2::1 dev eth1 table 10001",
				"rule priority 10001 from 2001:db8:2::10 lookup 10001",
				"rule priority 10001 from 2001:db8:2::11 lookup 10001",
			},
		},
		{
			name: "delegated prefixes become local routes and rules, never addresses",
			in: Inputs{PrimaryMAC: mac0, ENIs: []ENIMetadata{
				primaryENI("ipv4-prefix", "10.0.1.48/28"),
				secondaryENI(mac1, 0, 1, 2, "ipv4-prefix", "10.0.2.64/28\n10.0.2.80/28",
					"ipv6s", "2001:db8:2::10", "subnet-ipv6-cidr-blocks", "2001:db8:2::/64",
					"ipv6-prefix", "2001:db8:2:0:1::/80")}},
			cfg: Config{MTU: -1},
			want: []string{
				"eth0 table 10000 primary=true mtu=0",
				"dhcp 10.0.1.10 dev eth0",
				"route 10.0.1.0/24 dev eth0 table 10000",
				"route default via 10.0.1.1 dev eth0 table 10000",
				"route local 10.0.1.48/28 dev eth0 table local",
				"eth1 table 10001 primary=false mtu=0",
				"add address 10.0.2.10/24 dev eth1",
				"add address 2001:db8:2::10/64 dev eth1",
				"route 10.0.2.0/24 dev eth1 table 10001",
				"route default via 10.0.2.1 dev eth1 table 10001",
				"route 2001:db8:2::/64 dev eth1 table 10001",
				"route default via 2001:db8:2::1 dev eth1 table 10001",
				"route local 10.0.2.64/28 dev eth1 table local",
				"route local 10.0.2.80/28 dev eth1 table local",
				"route local 2001:db8:2:0:1::/80 dev eth1 table local",
				"rule priority 10001 from 10.0.2.10 lookup 10001",
				"rule priority 10001 from 2001:db8:2::10 lookup 10001",
				"rule priority 10001 from 10.0.2.64/28 lookup 10001",
				"rule priority 10001 from 10.0.2.80/28 lookup 10001",
				"rule priority 10001 from 2001:db8:2:0:1::/80 lookup 10001",
			},
		},
		{
			name: "a hot-plugged ENI still reporting device-number 0 is pending, not the primary",
			in: Inputs{PrimaryMAC: mac0, ENIs: []ENIMetadata{
				primaryENI(), secondaryENI(mac1, 0, 0, 2)}},
			cfg: Config{MTU: -1},
			want: []string{
				"eth0 table 10000 primary=true mtu=0",
				"dhcp 10.0.1.10 dev eth0",
				"route 10.0.1.0/24 dev eth0 table 10000",
				"route default via 10.0.1.1 dev eth0 table 10000",
				"error pending=true: network interface eth1 (0e:00:00:00:00:02): device-number 0 on a secondary interface: metadata still propagating",
			},
		},
		{
			name: "the primary's device-number is 0 whatever metadata says",
			in: Inputs{PrimaryMAC: mac0, ENIs: []ENIMetadata{
				eni(mac0, "device-number", "3", "local-ipv4s", "10.0.1.10", "subnet-ipv4-cidr-block", "10.0.1.0/24")}},
			cfg: Config{MTU: -1},
			want: []string{
				"eth0 table 10000 primary=true mtu=0",
				"dhcp 10.0.1.10 dev eth0",
				"route 10.0.1.0/24 dev eth0 table 10000",
				"route default via 10.0.1.1 dev eth0 table 10000",
			},
		},
		{
			name: "junk and missing keys give one clear error per ENI and the others are still planned",
			in: Inputs{PrimaryMAC: mac0, ENIs: []ENIMetadata{
				primaryENI(),
				secondaryENI(mac1, 0, 1, 2, "local-ipv4s", "10.0.2.10\nbanana"),
				eni(mac2, "network-card", "1", "local-ipv4s", "10.0.3.10", "subnet-ipv4-cidr-block", "10.0.3.0/24")}},
			cfg: Config{MTU: -1},
			want: []string{
				"eth0 table 10000 primary=true mtu=0",
				"dhcp 10.0.1.10 dev eth0",
				"route 10.0.1.0/24 dev eth0 table 10000",
				"route default via 10.0.1.1 dev eth0 table 10000",
				`error pending=false: network interface eth1 (0e:00:00:00:00:02): local-ipv4s: "banana" is not an IPv4 address`,
				"error pending=true: network interface eth2 (0e:00:00:00:00:03): device-number missing from metadata",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := summary(Plan(tt.in, fixtureLinks, tt.cfg))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("plan:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(tt.want, "\n     "))
			}
		})
	}
}

func TestPlanRejectsJunk(t *testing.T) {
	tests := []struct {
		name    string
		eni     ENIMetadata
		wantErr string
	}{
		{"device-number that is not a number", secondaryENI(mac1, 0, 1, 2, "device-number", "one"), `device-number: "one" is not a number`},
		{"negative network-card", secondaryENI(mac1, 0, 1, 2, "network-card", "-1"), `network-card: "-1" is not a number`},
		{"an IPv6 address in local-ipv4s", secondaryENI(mac1, 0, 1, 2, "local-ipv4s", "2001:db8::1"), `local-ipv4s: "2001:db8::1" is not an IPv4 address`},
		{"an address outside its subnet", secondaryENI(mac1, 0, 1, 2, "local-ipv4s", "10.9.9.9"), "local-ipv4s: 10.9.9.9 is outside subnet 10.0.2.0/24"},
		{"local-ipv4s without a subnet", eni(mac1, "device-number", "1", "local-ipv4s", "10.0.2.10"), "subnet-ipv4-cidr-block: want one IPv4 CIDR"},
		{"a junk subnet", secondaryENI(mac1, 0, 1, 2, "subnet-ipv4-cidr-block", "10.0.2.0/33"), `subnet-ipv4-cidr-block: "10.0.2.0/33" is not an IPv4 CIDR block`},
		{"ipv6s without blocks", secondaryENI(mac1, 0, 1, 2, "ipv6s", "2001:db8::5"), "subnet-ipv6-cidr-blocks missing for ipv6s"},
		{"a junk IPv6 prefix", secondaryENI(mac1, 0, 1, 2, "ipv6-prefix", "2001:db8::/129"), `ipv6-prefix: "2001:db8::/129" is not an IPv6 CIDR block`},
		{"no addresses at all", eni(mac1, "device-number", "1"), "no local-ipv4s or ipv6s"},
		{"a transient read error", ENIMetadata{MAC: mac1, Err: errors.New("read x: IMDS answered HTTP 500")}, "HTTP 500"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Plan(Inputs{PrimaryMAC: mac0, ENIs: []ENIMetadata{primaryENI(), tt.eni}}, fixtureLinks, Config{})
			if len(d.Links) != 1 || d.Links[0].Link.Name != "eth0" {
				t.Errorf("planned links %v, want eth0 only", summary(d))
			}
			if len(d.Errors) != 1 || !strings.Contains(d.Errors[0].Error(), tt.wantErr) || !strings.Contains(d.Errors[0].Error(), "eth1") {
				t.Fatalf("errors %v, want one about eth1 containing %q", d.Errors, tt.wantErr)
			}
		})
	}
}

func TestPlanSkipsIgnoredAndUnknownLinks(t *testing.T) {
	in := Inputs{PrimaryMAC: mac0, ENIs: []ENIMetadata{primaryENI(), secondaryENI(mac1, 0, 1, 2)}}
	d := Plan(in, fixtureLinks, Config{Ignore: []string{"eth1"}})
	if len(d.Links) != 1 || d.Links[0].Link.Name != "eth0" {
		t.Errorf("planned %v, want eth0 only (eth1 ignored by config)", summary(d))
	}
	var unlisted []string
	for _, l := range d.Unlisted {
		unlisted = append(unlisted, l.Name)
	}
	if want := []string{"eth2"}; !reflect.DeepEqual(unlisted, want) {
		t.Errorf("unlisted links %v, want %v (docker0 and lo ignored, eth1 ignored by config)", unlisted, want)
	}
}

func TestPlanMTUFloorNeverLowers(t *testing.T) {
	links := []Link{{Index: 2, Name: "eth0", MAC: mac0, MTU: 9216}}
	in := Inputs{PrimaryMAC: mac0, ENIs: []ENIMetadata{primaryENI()}}
	if got := Plan(in, links, Config{MTU: 9001, MTUFloor: true}).Links[0].MTU; got != 0 {
		t.Errorf("floor 9001 on a 9216 link planned MTU %d, want 0 (leave)", got)
	}
	links[0].MTU = 1500
	if got := Plan(in, links, Config{MTU: 9001, MTUFloor: true}).Links[0].MTU; got != 9001 {
		t.Errorf("floor 9001 on a 1500 link planned MTU %d, want 9001", got)
	}
}

func TestPlanRejectsTableClash(t *testing.T) {
	in := Inputs{PrimaryMAC: mac0, ENIs: []ENIMetadata{primaryENI(), secondaryENI(mac1, 0, 1, 2), secondaryENI(mac2, 0, 1, 3)}}
	d := Plan(in, fixtureLinks, Config{})
	if len(d.Links) != 2 || len(d.Errors) != 1 || !strings.Contains(d.Errors[0].Error(), "table 10001 already used by eth1") {
		t.Errorf("got %v, want eth0+eth1 planned and a clash error for eth2", summary(d))
	}
}
