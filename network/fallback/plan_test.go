package fallback

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
)

var (
	primary   = Link{Index: 2, Name: "ens5", MAC: "0e:49:61:0f:c3:11", Ether: true}
	secondary = Link{Index: 3, Name: "ens6", MAC: "0e:49:61:0f:c3:22", Ether: true}
	links     = []Link{{Index: 1, Name: "lo"}, secondary, primary, {Index: 4, Name: "br0", MAC: "02:00:00:00:00:01"}}
)

func link(target string) *fstest.MapFile {
	return &fstest.MapFile{Mode: fs.ModeSymlink | 0o777, Data: []byte(target)}
}

func file(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s), Mode: 0o644} }

// images with one stack each, installed and enabled.
func networkdImage() fstest.MapFS {
	return fstest.MapFS{
		"usr/lib/systemd/systemd-networkd":                                    file("elf"),
		"etc/systemd/system/multi-user.target.wants/systemd-networkd.service": link("/lib/systemd/system/systemd-networkd.service"),
		"usr/lib/systemd/network/80-container-host0.network":                  file("[Match]\nVirtualization=container\nName=host0\n\n[Network]\nDHCP=yes\n"),
		"usr/lib/systemd/network/80-wifi-adhoc.network":                       file("[Match]\nType=wlan\nWLANInterfaceType=ad-hoc\n"),
	}
}

func ifupdownImage(interfaces string) fstest.MapFS {
	m := fstest.MapFS{
		"usr/sbin/ifup": file("elf"),
		"etc/systemd/system/multi-user.target.wants/networking.service": link("/lib/systemd/system/networking.service"),
	}
	if interfaces != "" {
		m["etc/network/interfaces"] = file(interfaces)
	}
	return m
}

func nmImage() fstest.MapFS {
	return fstest.MapFS{
		"usr/sbin/NetworkManager": file("elf"),
		"etc/systemd/system/multi-user.target.wants/NetworkManager.service": link("/usr/lib/systemd/system/NetworkManager.service"),
		"etc/NetworkManager/system-connections/wifi.nmconnection":           file("[connection]\ntype=wifi\ninterface-name=wlan0\n"),
	}
}

func netplanImage() fstest.MapFS {
	m := networkdImage()
	m["usr/sbin/netplan"] = file("py")
	return m
}

func with(m fstest.MapFS, path, content string) fstest.MapFS {
	m[path] = file(content)
	return m
}

func TestPrimaryIsThePhysicalEthernetTheKernelRegisteredFirst(t *testing.T) {
	got, ok := Primary(links)
	if !ok || got != primary {
		t.Fatalf("Primary = %+v, %v; want %+v", got, ok, primary)
	}
	if _, ok := Primary([]Link{{Index: 1, Name: "lo"}, {Index: 5, Name: "br0", MAC: "02:00:00:00:00:01"}}); ok {
		t.Error("a bridge was taken for the primary interface")
	}
}

func TestPrimaryFollowsTheBusNotTheRegistrationOrder(t *testing.T) {
	// The second virtio NIC registered first (ifindex 2): its PCI slot is
	// still the later one.
	first := Link{Index: 3, Name: "enp0s2", MAC: "0e:49:61:0f:c3:11", Ether: true, Device: "/sys/devices/pci0000:00/0000:00:02.0/virtio0"}
	second := Link{Index: 2, Name: "enp0s3", MAC: "0e:7c:1a:44:aa:02", Ether: true, Device: "/sys/devices/pci0000:00/0000:00:03.0/virtio1"}
	for _, ls := range [][]Link{{first, second}, {second, first}} {
		if got, _ := Primary(ls); got != first {
			t.Errorf("Primary(%v) = %s, want enp0s2 (the lower PCI address)", ls, got.Name)
		}
	}
}

// An earlier boot wrote the fallback for one link; on this boot the
// other link comes first (a new instance of the image, devices probed in
// another order): the earlier choice stays, and nothing is written.
func TestDecideKeepsTheLinkItChoseOnAnEarlierBoot(t *testing.T) {
	ls := []Link{{Index: 1, Name: "lo"}, secondary, primary}
	for _, img := range []struct {
		name string
		root fstest.MapFS
	}{
		{"systemd-networkd", networkdImage()},
		{"NetworkManager", nmImage()},
		{"netplan", netplanImage()},
		{"ifupdown", ifupdownImage("auto lo\niface lo inet loopback\nsource /etc/network/interfaces.d/*\n")},
	} {
		t.Run(img.name, func(t *testing.T) {
			before, err := Decide(img.root, ls)
			if err != nil || before.Link != primary || len(before.Files) != 1 {
				t.Fatalf("first boot: %+v %v", before, err)
			}
			img.root[before.Files[0].Path] = &fstest.MapFile{Data: before.Files[0].Data, Mode: before.Files[0].Mode}

			swapped := []Link{{Index: 1, Name: "lo"}, primary, secondary}
			swapped[1].Index, swapped[2].Index = 3, 2 // the secondary registered first this time
			after, err := Decide(img.root, swapped)
			if err != nil {
				t.Fatal(err)
			}
			if after.Link.MAC != primary.MAC || after.Configured != "/"+before.Files[0].Path || after.Files != nil {
				t.Errorf("second boot chose %s (configured by %q, files %d), want %s left alone", after.Link.Name, after.Configured, len(after.Files), primary.Name)
			}
		})
	}
}

func TestDecideWritesTheFallbackForTheImagesStack(t *testing.T) {
	tests := []struct {
		name     string
		root     fstest.MapFS
		stack    Stack
		path     string
		mode     fs.FileMode
		contains []string
		commands int
	}{
		{"systemd-networkd matches the MAC", networkdImage(), Networkd, "etc/systemd/network/10-flint-primary.network", 0o644,
			[]string{"MACAddress=0e:49:61:0f:c3:11", "DHCP=ipv4", "IPv6AcceptRA=yes"}, 0},
		{"ifupdown goes to interfaces.d when it is sourced", ifupdownImage("auto lo\niface lo inet loopback\nsource /etc/network/interfaces.d/*\n"), Ifupdown,
			"etc/network/interfaces.d/50-flint-primary", 0o644,
			[]string{"allow-hotplug ens5", "iface ens5 inet dhcp", "iface ens5 inet6 auto"}, 0},
		{"ifupdown appends to interfaces when interfaces.d is not sourced", ifupdownImage("auto lo\niface lo inet loopback"), Ifupdown,
			"etc/network/interfaces", 0o644,
			[]string{"auto lo\niface lo inet loopback\n\n# Written by flint", "iface ens5 inet dhcp"}, 0},
		{"NetworkManager gets a root-only keyfile bound to the MAC", nmImage(), NetworkManager,
			"etc/NetworkManager/system-connections/flint-primary.nmconnection", 0o600,
			[]string{"mac-address=0E:49:61:0F:C3:11", "[ipv4]\nmethod=auto", "[ipv6]\nmethod=auto\nmay-fail=true"}, 0},
		{"netplan wins over the backend it renders for, and is regenerated", netplanImage(), Netplan,
			"etc/netplan/50-flint-primary.yaml", 0o600,
			[]string{`macaddress: "0e:49:61:0f:c3:11"`, "dhcp4: true", "accept-ra: true"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Decide(tt.root, links)
			if err != nil {
				t.Fatal(err)
			}
			if p.Stack != tt.stack || p.Configured != "" || len(p.Files) != 1 || len(p.Commands) != tt.commands {
				t.Fatalf("plan %+v", p)
			}
			f := p.Files[0]
			if f.Path != tt.path || f.Mode != tt.mode {
				t.Errorf("writes %s (%v), want %s (%v)", f.Path, f.Mode, tt.path, tt.mode)
			}
			for _, c := range tt.contains {
				if !strings.Contains(string(f.Data), c) {
					t.Errorf("%s has no %q:\n%s", f.Path, c, f.Data)
				}
			}
			if strings.Contains(string(f.Data), secondary.MAC) || strings.Contains(string(f.Data), secondary.Name) {
				t.Errorf("the secondary interface is configured too:\n%s", f.Data)
			}
		})
	}
}

func TestDecideLeavesAConfiguredInterfaceAlone(t *testing.T) {
	tests := []struct {
		name, by string
		root     fstest.MapFS
	}{
		{"a .network matching the name by glob", "/etc/systemd/network/20-wired.network",
			with(networkdImage(), "etc/systemd/network/20-wired.network", "[Match]\nName=en*\n[Network]\nDHCP=yes\n")},
		{"a .network matching the MAC", "/run/systemd/network/10-netplan-eth0.network",
			with(networkdImage(), "run/systemd/network/10-netplan-eth0.network", "[Match]\nMACAddress=0E:49:61:0F:C3:11\n")},
		{"a .network with no [Match]", "/etc/systemd/network/all.network",
			with(networkdImage(), "etc/systemd/network/all.network", "[Network]\nDHCP=yes\n")},
		{"a .network matching on a key flint does not evaluate", "/etc/systemd/network/by-path.network",
			with(networkdImage(), "etc/systemd/network/by-path.network", "[Match]\nPath=pci-0000:00:05.0\n")},
		{"an iface stanza in a sourced file", "/etc/network/interfaces.d/ens5",
			with(ifupdownImage("source-directory interfaces.d\n"), "etc/network/interfaces.d/ens5", "allow-hotplug ens5\niface ens5 inet dhcp\n")},
		{"an auto line in interfaces", "/etc/network/interfaces",
			ifupdownImage("auto lo ens5\niface lo inet loopback\n")},
		{"a keyfile bound to the name", "/etc/NetworkManager/system-connections/cloud-init-ens5.nmconnection",
			with(nmImage(), "etc/NetworkManager/system-connections/cloud-init-ens5.nmconnection", "[connection]\ntype=ethernet\ninterface-name=ens5\n")},
		{"a keyfile for any ethernet", "/usr/lib/NetworkManager/system-connections/wired.nmconnection",
			with(nmImage(), "usr/lib/NetworkManager/system-connections/wired.nmconnection", "[connection]\ntype=ethernet\n")},
		{"netplan naming the interface by id", "/etc/netplan/50-cloud-init.yaml",
			with(netplanImage(), "etc/netplan/50-cloud-init.yaml", "network:\n  version: 2\n  ethernets:\n    ens5:\n      dhcp4: true\n")},
		{"netplan matching the MAC", "/etc/netplan/01.yaml",
			with(netplanImage(), "etc/netplan/01.yaml", "network:\n  ethernets:\n    x:\n      match: {macaddress: \"0e:49:61:0f:c3:11\"}\n")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Decide(tt.root, links)
			if err != nil {
				t.Fatal(err)
			}
			if p.Configured != tt.by || len(p.Files) != 0 || len(p.Commands) != 0 {
				t.Fatalf("plan %+v, want configured by %s and nothing written", p, tt.by)
			}
		})
	}
}

func TestDecideWritesWhereOtherFilesConfigureOtherInterfaces(t *testing.T) {
	tests := []struct {
		name string
		root fstest.MapFS
	}{
		{"a .network for another MAC", with(networkdImage(), "etc/systemd/network/eth1.network", "[Match]\nMACAddress=0e:49:61:0f:c3:22\n")},
		{"a .network excluding the name", with(networkdImage(), "etc/systemd/network/not.network", "[Match]\nName=!en*\n")},
		{"a masked vendor .network", func() fstest.MapFS {
			m := with(networkdImage(), "usr/lib/systemd/network/90-dhcp.network", "[Network]\nDHCP=yes\n")
			m["etc/systemd/network/90-dhcp.network"] = link("/dev/null")
			return m
		}()},
		{"an iface stanza for another interface", ifupdownImage("iface ens6 inet dhcp\n")},
		{"netplan for another name", with(netplanImage(), "etc/netplan/1.yaml", "network:\n  ethernets:\n    eth9: {dhcp4: true}\n")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Decide(tt.root, links)
			if err != nil {
				t.Fatal(err)
			}
			if p.Configured != "" || len(p.Files) != 1 {
				t.Fatalf("plan %+v, want one file written", p)
			}
		})
	}
}

func TestDecideNeedsAStackAndAnInterface(t *testing.T) {
	installedNotEnabled := fstest.MapFS{"usr/lib/systemd/systemd-networkd": file("elf")}
	if _, err := Decide(installedNotEnabled, links); !errors.Is(err, ErrNoStack) {
		t.Errorf("an image with networkd installed but not enabled: %v", err)
	}
	if _, err := Decide(networkdImage(), []Link{{Index: 1, Name: "lo"}}); err == nil || !strings.Contains(err.Error(), "no physical Ethernet") {
		t.Errorf("no interface: %v", err)
	}
}
