package network

import (
	"fmt"
	"path"
)

// DefaultMTU is the MTU set on managed links when Config.MTU is zero; it is
// what EC2 uses inside a VPC.
const DefaultMTU = 9001

// Protocol marks the routes and rules this package adds (ip shows it as
// "proto 241"); anything without it is never removed.
const Protocol = 0xf1

// DefaultIgnore lists link name patterns (path.Match syntax) that are never
// configured: container and virtual-machine bridges, their peers, tunnels.
var DefaultIgnore = []string{
	"lo", "docker*", "veth*", "br-*", "virbr*", "cni*", "flannel*", "cali*",
	"vxlan*", "tun*", "tap*", "wg*", "kube-*", "lxc*", "lxdbr*", "podman*",
}

// Config is the network section of flint's configuration. Its zero value
// is the EC2 default.
type Config struct {
	// MTU for managed links: 0 means DefaultMTU, negative leaves MTU alone.
	MTU int `yaml:"mtu"`
	// MTUFloor raises links below MTU but never lowers one above it, for
	// clouds whose DHCP or driver picks a larger value.
	MTUFloor bool `yaml:"mtu_floor"`
	// Ignore adds link name patterns (path.Match syntax) to DefaultIgnore.
	Ignore []string `yaml:"ignore"`
	// StaticPrimary says no DHCP client runs on the primary link, so flint
	// also adds the primary's first addresses and main-table default routes.
	// By default those belong to the OS's DHCP client and are left alone.
	StaticPrimary bool `yaml:"static_primary"`
	// NoPrefixRoutes skips the local routes for delegated prefixes (keep the
	// from-rules only), for hosts where a container network plug-in routes
	// prefix addresses to pods itself.
	NoPrefixRoutes bool `yaml:"no_prefix_routes"`
}

// Validate reports a configuration error, naming the offending value.
func (c Config) Validate() error {
	for _, p := range c.Ignore {
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("network.ignore: bad pattern %q: %w", p, err)
		}
	}
	if c.MTU > 65535 {
		return fmt.Errorf("network.mtu: %d is larger than 65535", c.MTU)
	}
	return nil
}

// Ignored reports whether the link named name must never be touched.
func (c Config) Ignored(name string) bool {
	for _, list := range [][]string{DefaultIgnore, c.Ignore} {
		for _, p := range list {
			if ok, _ := path.Match(p, name); ok {
				return true
			}
		}
	}
	return false
}

func (c Config) mtu() int {
	if c.MTU == 0 {
		return DefaultMTU
	}
	return c.MTU
}
