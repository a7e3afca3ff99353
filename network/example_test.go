package network_test

import (
	"fmt"

	"github.com/flint-dev/flint/network"
)

// A secondary ENI with two addresses gets its own table, a default route
// via the subnet's first host and one rule per address.
func ExampleDiff() {
	in := network.Inputs{
		PrimaryMAC: "0e:00:00:00:00:01",
		ENIs: []network.ENIMetadata{{
			MAC: "0e:00:00:00:00:02",
			Values: map[string]string{
				"device-number":          "1",
				"local-ipv4s":            "10.0.2.20\n10.0.2.21",
				"subnet-ipv4-cidr-block": "10.0.2.0/24",
			},
		}},
	}
	links := []network.Link{{Index: 3, Name: "eth1", MAC: "0e:00:00:00:00:02", MTU: 9001, Up: true}}
	d := network.Plan(in, links, network.Config{})
	for _, c := range network.Diff(d, network.Current{}) {
		fmt.Println(c)
	}
	// Output:
	// add address 10.0.2.20/24 dev eth1
	// add address 10.0.2.21/32 dev eth1 noprefixroute
	// add route 10.0.2.0/24 dev eth1 table 10001
	// add route default via 10.0.2.1 dev eth1 table 10001
	// add rule priority 10001 from 10.0.2.20 lookup 10001
	// add rule priority 10001 from 10.0.2.21 lookup 10001
}
