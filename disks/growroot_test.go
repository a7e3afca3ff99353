package disks

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeSys builds the sysfs entries PartitionOf reads: /sys/dev/block/M:m
// links to the device's directory, partitions inside their disk's.
func fakeSys(t *testing.T, devs map[string]string) string {
	t.Helper()
	sys := t.TempDir()
	for majmin, path := range devs {
		dir := filepath.Join(sys, "devices", path)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(sys, "dev/block"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(dir, filepath.Join(sys, "dev/block", majmin)); err != nil {
			t.Fatal(err)
		}
	}
	return sys
}

// fakeDM adds a device-mapper device's dm/uuid and slaves links.
func fakeDM(t *testing.T, sys, name, uuid string, slaves ...string) {
	t.Helper()
	dir := filepath.Join(sys, "devices/virtual/block", name)
	if err := os.MkdirAll(filepath.Join(dir, "dm"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "dm/uuid"), []byte(uuid+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "slaves"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, s := range slaves {
		disk := strings.TrimRight(s, "0123456789")
		if err := os.Symlink(filepath.Join(sys, "devices/vbd-768/block", disk, s), filepath.Join(dir, "slaves", s)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPartitionOfNamesDiskAndPartition(t *testing.T) {
	sys := fakeSys(t, map[string]string{
		"259:1":  "pci/nvme/nvme0/nvme0n1/nvme0n1p1",
		"202:1":  "vbd-768/block/xvda/xvda1",
		"8:0":    "virtual/block/sda",
		"253:0":  "virtual/block/dm-0",
		"253:1":  "virtual/block/dm-1",
		"253:2":  "virtual/block/dm-2",
		"259:99": "pci/nvme/nvme0/nvme0n1/nvme0n1p15",
		"202:3":  "vbd-768/block/xvda/xvda3",
	})
	write := func(rel, s string) {
		if err := os.WriteFile(filepath.Join(sys, "devices", rel), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("pci/nvme/nvme0/nvme0n1/nvme0n1p1/partition", "1\n")
	write("pci/nvme/nvme0/nvme0n1/nvme0n1p15/partition", "15\n")
	write("vbd-768/block/xvda/xvda1/partition", "1\n")
	write("vbd-768/block/xvda/xvda3/partition", "3\n")
	fakeDM(t, sys, "dm-0", "CRYPT-LUKS2-abc", "xvda1")
	fakeDM(t, sys, "dm-1", "LVM-abcdef", "xvda3")
	fakeDM(t, sys, "dm-2", "LVM-abcdef", "xvda1", "xvda3")
	env := Env{Sys: sys, Dev: "/dev"}
	cases := []struct {
		name         string
		major, minor int
		want         Partition
		err          string
	}{
		{"an NVMe root partition", 259, 1, Partition{Disk: "/dev/nvme0n1", Device: "/dev/nvme0n1p1", Number: 1, DiskName: "nvme0n1", PartName: "nvme0n1p1"}, ""},
		{"a two-digit NVMe partition", 259, 99, Partition{Disk: "/dev/nvme0n1", Device: "/dev/nvme0n1p15", Number: 15, DiskName: "nvme0n1", PartName: "nvme0n1p15"}, ""},
		{"a Xen xvda1", 202, 1, Partition{Disk: "/dev/xvda", Device: "/dev/xvda1", Number: 1, DiskName: "xvda", PartName: "xvda1"}, ""},
		{"a whole disk is refused", 8, 0, Partition{}, "sda is not a partition"},
		{"an encrypted root is refused", 253, 0, Partition{}, "dm-0 is a device-mapper device that is not an LVM logical volume"},
		{"an LVM root on one physical volume names that partition", 253, 1, Partition{Disk: "/dev/xvda", Device: "/dev/xvda3", Number: 3, DiskName: "xvda", PartName: "xvda3", LVM: true}, ""},
		{"an LVM root on two physical volumes is refused", 253, 2, Partition{}, "on 2 physical volumes"},
		{"an unknown device number is refused", 7, 7, Partition{}, "device 7:7 has no sysfs entry"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := PartitionOf(env, c.major, c.minor)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("PartitionOf = %+v, %v; want error %q", got, err, c.err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Errorf("PartitionOf = %+v, %v; want %+v", got, err, c.want)
			}
		})
	}
}

func TestGrowPartHonoursModeAndGrowrootDisabled(t *testing.T) {
	root := t.TempDir()
	env := Env{MountInfo: "/proc/self/mountinfo", Sys: "/sys", Dev: "/dev", Root: root}
	res := GrowPart(context.Background(), env, &Growpart{Mode: "off", Devices: []string{"/"}})
	if len(res) != 1 || res[0].Action != "skipped" || !strings.Contains(res[0].Message, "mode=off") {
		t.Errorf("mode off = %v", res)
	}
	res = GrowPart(context.Background(), env, &Growpart{Mode: "gpart", Devices: []string{"/"}})
	if len(res) != 1 || res[0].Action != "failed" || !strings.Contains(res[0].Message, `"gpart" is not supported`) {
		t.Errorf("mode gpart = %v", res)
	}
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/growroot-disabled"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	res = GrowPart(context.Background(), env, nil)
	if len(res) != 1 || res[0].Action != "skipped" || !strings.Contains(res[0].Message, "/etc/growroot-disabled") {
		t.Errorf("growroot-disabled = %v", res)
	}
	res = GrowPart(context.Background(), env, &Growpart{Mode: "auto", Devices: []string{"/no/such/mount"}, IgnoreGrowrootDisabled: true})
	if len(res) != 1 || res[0].Action != "skipped" || !strings.Contains(res[0].Message, "nothing changed") {
		t.Errorf("a path that is not a mount point = %v", res)
	}
}

func TestResizeRootFSRefusesWhatIsNotABlockDevice(t *testing.T) {
	env := HostEnv()
	env.Runner = failRunner{}
	_, err := ResizeRootFS(context.Background(), env, nil, "/proc")
	if err == nil || !strings.Contains(err.Error(), "is not on a block device; nothing changed") {
		t.Errorf("ResizeRootFS(/proc) = %v", err)
	}
	off := ResizeOff
	if msg, err := ResizeRootFS(context.Background(), env, &off, "/"); err != nil || msg != "resize_rootfs disabled" {
		t.Errorf("resize_rootfs false = %q, %v", msg, err)
	}
}

func TestFindMountReadsEscapesAndTheLastMount(t *testing.T) {
	mi := filepath.Join(t.TempDir(), "mountinfo")
	content := "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n" +
		"30 22 0:40 / /my\\040data rw - tmpfs tmpfs rw\n" +
		"31 22 259:2 / /my\\040data ro,relatime - xfs /dev/nvme1n1p1 rw\n"
	if err := os.WriteFile(mi, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := FindMount(mi, "/my data")
	if err != nil {
		t.Fatal(err)
	}
	if m.Major != 259 || m.Minor != 2 || m.FSType != "xfs" || m.Source != "/dev/nvme1n1p1" || !m.ReadOnly {
		t.Errorf("FindMount = %+v", m)
	}
}

// TestGrowPartOnAnLVMRootGrowsThePhysicalVolume: this machine's kernel
// has no device-mapper, so the LVM layout is sysfs as the kernel shows it
// and the disk is an image file; the partition table is edited for real
// and pvresize is recorded.
func TestGrowPartOnAnLVMRootGrowsThePhysicalVolume(t *testing.T) {
	sys := fakeSys(t, map[string]string{"253:0": "virtual/block/dm-0", "202:2": "vbd-768/block/xvda/xvda2"})
	if err := os.WriteFile(filepath.Join(sys, "devices/vbd-768/block/xvda/xvda2/partition"), []byte("2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fakeDM(t, sys, "dm-0", "LVM-vg0root", "xvda2")
	dev := t.TempDir()
	img := sfdiskImage(t, 32, 64, "label: gpt\n,1MiB,21686148-6449-6E6F-744E-656564454649\n,,E6D6D379-F507-44C2-A23C-238F2A3DF928\n")
	if err := os.Rename(img, filepath.Join(dev, "xvda")); err != nil {
		t.Fatal(err)
	}
	mi := filepath.Join(t.TempDir(), "mountinfo")
	if err := os.WriteFile(mi, []byte("22 1 253:0 / / rw,relatime - ext4 /dev/mapper/vg0-root rw\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var r recorder
	env := Env{MountInfo: mi, Sys: sys, Dev: dev, Root: t.TempDir(), Runner: &r}
	res := GrowPart(context.Background(), env, nil)
	if len(res) != 1 || res[0].Action != "changed" || !strings.Contains(res[0].Message, "physical volume "+filepath.Join(dev, "xvda2")+" resized") {
		t.Fatalf("GrowPart = %v", res)
	}
	if len(r.cmds) != 1 || strings.Join(r.cmds[0], " ") != "pvresize "+filepath.Join(dev, "xvda2") {
		t.Errorf("commands %v, want pvresize of the partition", r.cmds)
	}
	if p := sfdiskRead(t, filepath.Join(dev, "xvda")).PartitionTable.Partitions[1]; p.Size*512>>20 < 60 {
		t.Errorf("physical volume partition is %d MiB after growth, want about 62", p.Size*512>>20)
	}
}
