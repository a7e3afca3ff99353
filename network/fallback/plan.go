// Package fallback brings an image's primary interface up when the image
// has no network configuration for it, as cloud-init's local stage does:
// it writes the fallback DHCP configuration (IPv4 DHCP, and router
// advertisements accepted so that IPv6, and DHCPv6 where the router asks
// for it, come up where the subnet has IPv6) for the network stack the
// image uses: netplan, NetworkManager, ifupdown or systemd-networkd.
//
// Decide is pure: from the image's files (an fs.FS rooted at the image)
// and the links present it returns the files to write. An image that
// already configures the interface is left alone. The edge (reading
// /sys/class/net, writing atomically, running netplan generate) is in
// cmd/flint's local command.
package fallback

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
)

// Link is a network interface as /sys/class/net shows it.
type Link struct {
	Index int
	Name  string
	MAC   string // lower case, colon separated
	// Ether: ARPHRD_ETHER (type 1) backed by a device (not a bridge,
	// bond, VLAN, veth or other virtual link) and not wireless.
	Ether bool
	// Device is the sysfs path of the link's device (for a PCI NIC
	// /sys/devices/pci0000:00/0000:00:05.0/...), or empty.
	Device string
}

// Primary returns the fallback interface: the physical Ethernet link whose
// device comes first on its bus (the lowest PCI address: on EC2 the ENI of
// device index 0), and among links with no device path the one the kernel
// registered first (the lowest ifindex). The kernel's registration order
// alone is not stable: drivers probe devices concurrently, and on one boot
// in several the second NIC of a virtio guest took the lower ifindex.
// cloud-init's net.find_fallback_nic picks among the same candidates (no
// loopback, no virtual or wireless devices) but prefers eth0 and then a
// link with carrier in name order; names are udev's to change and carrier
// is unknown before a link is up, so the bus order is the rule here.
func Primary(links []Link) (Link, bool) {
	var best Link
	found := false
	for _, l := range links {
		if l.Ether && l.MAC != "" && (!found || before(l, best)) {
			best, found = l, true
		}
	}
	return best, found
}

// before orders links by device path, then by ifindex.
func before(a, b Link) bool {
	if a.Device != b.Device && a.Device != "" && b.Device != "" {
		return a.Device < b.Device
	}
	return a.Index < b.Index
}

// Stack is a network configuration stack an image may use.
type Stack string

// The stacks, in the order Detect prefers them when several are in use.
const (
	Netplan        Stack = "netplan"
	NetworkManager Stack = "NetworkManager"
	Ifupdown       Stack = "ifupdown"
	Networkd       Stack = "systemd-networkd"
)

// ErrNoStack is returned when the image has none of the known stacks
// installed and enabled.
var ErrNoStack = errors.New("no network stack (netplan, NetworkManager, ifupdown, systemd-networkd) is installed and enabled")

// File is a file to write, its path relative to the image's root.
type File struct {
	Path string
	Data []byte
	Mode fs.FileMode
}

// Plan is what to do for the primary interface.
type Plan struct {
	Link  Link
	Stack Stack
	// Configured names the image's configuration for the link (a file),
	// when it has one: then nothing is written.
	Configured string
	Files      []File
	// Commands run, in the image, after the files are written (netplan's
	// generator ran before they existed).
	Commands [][]string
}

// Detect names the stack the image uses: netplan when installed (it
// renders for the others), else the first of NetworkManager, ifupdown and
// systemd-networkd whose service is enabled.
func Detect(root fs.FS) (Stack, error) {
	if exists(root, "usr/sbin/netplan") || exists(root, "sbin/netplan") {
		return Netplan, nil
	}
	for _, c := range []struct {
		s       Stack
		unit    string
		binPath []string
	}{
		{NetworkManager, "NetworkManager.service", []string{"usr/sbin/NetworkManager"}},
		{Ifupdown, "networking.service", []string{"usr/sbin/ifup", "sbin/ifup"}},
		{Networkd, "systemd-networkd.service", []string{"usr/lib/systemd/systemd-networkd", "lib/systemd/systemd-networkd"}},
	} {
		if slices.ContainsFunc(c.binPath, func(p string) bool { return exists(root, p) }) && enabled(root, c.unit) {
			return c.s, nil
		}
	}
	return "", ErrNoStack
}

// Decide plans the fallback configuration of the primary interface. Where
// flint's own file from an earlier boot configures a link that is still
// present, that link stays the primary: the choice is made once.
func Decide(root fs.FS, links []Link) (Plan, error) {
	l, ok := Primary(links)
	if !ok {
		return Plan{}, errors.New("no physical Ethernet interface")
	}
	s, err := Detect(root)
	if err != nil {
		return Plan{Link: l}, err
	}
	for _, e := range links {
		if e.Ether && e.MAC != "" && planFor(root, s, e).Configured == "/"+ownFiles[s] {
			l = e
			break
		}
	}
	p := planFor(root, s, l)
	if p.Configured != "" {
		p.Files, p.Commands = nil, nil
	}
	return p, nil
}

// ownFiles are the files flint writes for each stack (for ifupdown where
// /etc/network/interfaces sources interfaces.d; otherwise flint appends
// to the image's file and an earlier choice is not told apart from the
// image's own).
var ownFiles = map[Stack]string{
	Netplan:        "etc/netplan/50-flint-primary.yaml",
	NetworkManager: "etc/NetworkManager/system-connections/flint-primary.nmconnection",
	Ifupdown:       "etc/network/interfaces.d/50-flint-primary",
	Networkd:       "etc/systemd/network/10-flint-primary.network",
}

// planFor is the plan for l with stack s: what configures l, and the
// files that would.
func planFor(root fs.FS, s Stack, l Link) Plan {
	p := Plan{Link: l, Stack: s}
	switch s {
	case Netplan:
		p.Configured = netplanConfigures(root, l)
		p.Files = []File{{ownFiles[s], netplanFile(l), 0o600}}
		p.Commands = [][]string{{"netplan", "generate"}}
	case NetworkManager:
		p.Configured = nmConfigures(root, l)
		p.Files = []File{{ownFiles[s], nmFile(l), 0o600}}
	case Ifupdown:
		var f File
		p.Configured, f = ifupdownPlan(root, l)
		p.Files = []File{f}
	case Networkd:
		p.Configured = networkdConfigures(root, l)
		p.Files = []File{{ownFiles[s], networkdFile(l), 0o644}}
	}
	return p
}

const header = "# Written by flint local: the image had no network configuration for the\n# primary interface. Delete this file to stop using it; flint writes it again\n# only while nothing else configures the interface.\n"

func networkdFile(l Link) []byte {
	return []byte(header + fmt.Sprintf(`[Match]
MACAddress=%s

[Network]
DHCP=ipv4
IPv6AcceptRA=yes
`, l.MAC))
}

func nmFile(l Link) []byte {
	sum := sha256.Sum256([]byte("flint-primary " + l.MAC))
	// A name-based (version 5 style) UUID: the same MAC, the same connection.
	u := sum[:16]
	u[6] = u[6]&0x0f | 0x50
	u[8] = u[8]&0x3f | 0x80
	uuid := fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
	return []byte(header + fmt.Sprintf(`[connection]
id=flint-primary
uuid=%s
type=ethernet
autoconnect=true

[ethernet]
mac-address=%s

[ipv4]
method=auto

[ipv6]
method=auto
may-fail=true
`, uuid, strings.ToUpper(l.MAC)))
}

func netplanFile(l Link) []byte {
	return []byte(header + fmt.Sprintf(`network:
  version: 2
  ethernets:
    flint-primary:
      match:
        macaddress: "%s"
      dhcp4: true
      accept-ra: true
`, l.MAC))
}

func ifupdownStanza(l Link) string {
	return fmt.Sprintf("auto %[1]s\nallow-hotplug %[1]s\niface %[1]s inet dhcp\niface %[1]s inet6 auto\n", l.Name)
}

// exists reports whether p exists in root, without following a final
// symlink (an enablement link's target lies in the image, not the host).
func exists(root fs.FS, p string) bool {
	_, err := fs.Lstat(root, p)
	return err == nil
}

// enabled reports whether a unit is wanted by one of the usual targets in
// /etc/systemd/system (systemctl enable's symlinks) or by the vendor's
// preset directories under lib.
func enabled(root fs.FS, unit string) bool {
	for _, dir := range []string{"etc/systemd/system", "usr/lib/systemd/system", "lib/systemd/system"} {
		for _, t := range []string{"multi-user.target.wants", "network-online.target.wants", "sysinit.target.wants", "network.target.wants"} {
			if exists(root, path.Join(dir, t, unit)) {
				return true
			}
		}
	}
	return false
}

// masked reports a file symlinked to /dev/null or empty: the systemd way
// to switch a vendor file off.
func masked(root fs.FS, p string) bool {
	if t, err := fs.ReadLink(root, p); err == nil && t == "/dev/null" {
		return true
	}
	fi, err := fs.Stat(root, p)
	return err == nil && fi.Size() == 0
}

// configFiles lists the files in dirs with the suffix, a name in an
// earlier directory hiding the same name in a later one, in name order.
func configFiles(root fs.FS, dirs []string, suffix string) []string {
	seen := map[string]string{}
	for _, d := range dirs {
		ents, err := fs.ReadDir(root, d)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if !strings.HasSuffix(e.Name(), suffix) || e.IsDir() {
				continue
			}
			if _, ok := seen[e.Name()]; !ok {
				seen[e.Name()] = path.Join(d, e.Name())
			}
		}
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	slices.Sort(names)
	var out []string
	for _, n := range names {
		if !masked(root, seen[n]) {
			out = append(out, seen[n])
		}
	}
	return out
}
