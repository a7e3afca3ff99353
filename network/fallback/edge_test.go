package fallback

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// sysLink makes sys/class/net/NAME as the kernel shows a PCI Ethernet
// interface; withIndex false leaves out ifindex, as when udev renames the
// interface between the listing and the read.
func sysLink(t *testing.T, sys, name, pci string, index string, withIndex bool) {
	sysLinkWithout(t, sys, name, pci, index, map[bool]string{false: "ifindex"}[withIndex])
}

// sysLinkWithout is sysLink leaving out the attribute file missing ("":
// none), as a read after udev renamed the link finds it.
func sysLinkWithout(t *testing.T, sys, name, pci, index, missing string) {
	t.Helper()
	dev := filepath.Join(sys, "devices/pci0000:00", pci)
	dir := filepath.Join(sys, "class/net", name)
	for _, d := range []string{dev, dir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{"address": "0e:00:00:00:00:" + index, "type": "1", "uevent": "INTERFACE=" + name, "ifindex": index}
	delete(files, missing)
	for f, v := range files {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(dev, filepath.Join(dir, "device")); err != nil {
		t.Fatal(err)
	}
}

func TestReadLinksSaysWhenAnInterfaceVanishedWhileListing(t *testing.T) {
	sys := t.TempDir()
	sysLink(t, sys, "eth0", "0000:00:02.0", "02", false) // being renamed
	sysLink(t, sys, "enp0s3", "0000:00:03.0", "03", true)
	links, err := ReadLinks(sys)
	if !errors.Is(err, ErrChanged) {
		t.Fatalf("ReadLinks during a rename: %v, want ErrChanged", err)
	}
	if len(links) != 1 || links[0].Name != "enp0s3" || !links[0].Ether {
		t.Errorf("links %+v, want enp0s3 alone", links)
	}
	if err := os.WriteFile(filepath.Join(sys, "class/net/eth0/ifindex"), []byte("2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	links, err = ReadLinks(sys)
	if err != nil || len(links) != 2 {
		t.Fatalf("ReadLinks: %+v, %v", links, err)
	}
	if p, _ := Primary(links); p.Name != "eth0" {
		t.Errorf("primary %s, want eth0 (the lower PCI address)", p.Name)
	}
}

// A link renamed between the reads of its attributes is half read: no
// MAC or no type. It is a listing to take again, not a link that is no
// Ethernet (which left the secondary interface the primary's place).
func TestReadLinksSaysWhenALinkWasHalfRead(t *testing.T) {
	for _, missing := range []string{"address", "type"} {
		sys := t.TempDir()
		sysLinkWithout(t, sys, "eth0", "0000:00:02.0", "02", missing)
		sysLink(t, sys, "enp0s3", "0000:00:03.0", "03", true)
		links, err := ReadLinks(sys)
		if !errors.Is(err, ErrChanged) || len(links) != 1 || links[0].Name != "enp0s3" {
			t.Errorf("eth0 without %s: %+v, %v; want enp0s3 alone and ErrChanged", missing, links, err)
		}
	}
}

func TestAllSettledWaitsForUdevOnEveryEthernetLink(t *testing.T) {
	run := t.TempDir()
	links := []Link{{Index: 1, Name: "lo"}, {Index: 2, Name: "eth0", Ether: true}, {Index: 3, Name: "enp0s3", Ether: true}}
	if !AllSettled(run, links) {
		t.Error("without udev running every link is settled")
	}
	if err := os.MkdirAll(filepath.Join(run, "udev/data"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(run, "udev/control"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(run, "udev/data/n3"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if AllSettled(run, links) {
		t.Error("eth0 has no udev entry yet: not settled")
	}
	if err := os.WriteFile(filepath.Join(run, "udev/data/n2"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if !AllSettled(run, links) {
		t.Error("both Ethernet links have udev entries (lo needs none): settled")
	}
}
