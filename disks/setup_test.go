package disks

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/flint-dev/flint/internal/testenv"
)

func emptyImage(t *testing.T, mib int64) string {
	t.Helper()
	return sfdiskImage(t, mib, mib, "")
}

// fingerprint is a file's modification time and first MiB, where every
// filesystem and table looked at here keeps its superblock: enough to see
// that nothing was written, without reading a large image whole.
func fingerprint(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1<<20)
	n, _ := f.ReadAt(b, 0)
	return append([]byte(st.ModTime().String()), b[:n]...)
}

func mustState(t *testing.T, path string) DiskState {
	t.Helper()
	c, err := ProbeDevice(path)
	if err != nil {
		t.Fatal(err)
	}
	return DiskState{Device: path, Content: c}
}

func TestDiskSetupPartitionsAnEmptyDiskByPercent(t *testing.T) {
	testenv.Tool(t, "sfdisk")
	for _, table := range []string{"gpt", "mbr"} {
		t.Run(table, func(t *testing.T) {
			img := emptyImage(t, 100)
			cfg, err := DecodeConfig([]byte("disk_setup:\n  ephemeral0:\n    table_type: " + table + "\n    layout: [33, [67, 82]]\n    overwrite: false\n"))
			if err != nil {
				t.Fatal(err)
			}
			plan, err := PlanDiskSetup(cfg.DiskSetup["ephemeral0"], mustState(t, img))
			if err != nil {
				t.Fatal(err)
			}
			if err := ApplyDiskSetup(context.Background(), ExecRunner{}, plan); err != nil {
				t.Fatal(err)
			}
			d := sfdiskRead(t, img)
			if want := map[string]string{"gpt": "gpt", "mbr": "dos"}[table]; d.PartitionTable.Label != want {
				t.Errorf("label %q, want %q", d.PartitionTable.Label, want)
			}
			if len(d.PartitionTable.Partitions) != 2 {
				t.Fatalf("partitions %+v, want 2", d.PartitionTable.Partitions)
			}
			if mib := d.PartitionTable.Partitions[0].Size * 512 >> 20; mib != 33 {
				t.Errorf("first partition %d MiB, want 33 (33%% of 100 MiB)", mib)
			}
			if mib := d.PartitionTable.Partitions[1].Size * 512 >> 20; mib < 64 {
				t.Errorf("second partition %d MiB, want the rest (about 66)", mib)
			}
			// Done once, the same entry finds the disk as asked.
			st := mustState(t, img)
			st.Partitions = []Candidate{{Path: img + "1"}, {Path: img + "2"}}
			plan, err = PlanDiskSetup(cfg.DiskSetup["ephemeral0"], st)
			if err != nil || plan.Script != "" {
				t.Errorf("second PlanDiskSetup = %+v, %v; want nothing to do", plan, err)
			}
		})
	}
}

func TestDiskSetupRefusesADiskWithAFilesystem(t *testing.T) {
	img := emptyImage(t, 32)
	run(t, testenv.Tool(t, "mkfs.ext4"), "-q", "-L", "keep", img)
	before := fingerprint(t, img)
	_, err := PlanDiskSetup(DiskSpec{TableType: "gpt", Layout: Layout{Whole: true}}, mustState(t, img))
	if err == nil || !strings.Contains(err.Error(), `already holds a ext4 filesystem labelled "keep"; overwrite: false keeps it; nothing changed`) {
		t.Fatalf("PlanDiskSetup = %v", err)
	}
	if after := fingerprint(t, img); !bytes.Equal(before, after) {
		t.Error("disk changed")
	}
}

func TestFsSetupMakesRefusesAndOverwrites(t *testing.T) {
	testenv.Tool(t, "mkfs.ext4")
	testenv.Tool(t, "mkfs.xfs")
	img := emptyImage(t, 320)
	ctx := context.Background()
	ext4 := FsSpec{Label: "data", Filesystem: "ext4", Device: img, Partition: "none"}

	plan, err := PlanFsSetup(ext4, mustState(t, img))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"mkfs.ext4", "-L", "data", "-F", img}; !slices.Equal(plan.Cmd, want) {
		t.Errorf("cmd %v, want %v", plan.Cmd, want)
	}
	if err := ApplyFsSetup(ctx, ExecRunner{}, plan); err != nil {
		t.Fatal(err)
	}
	if c := mustState(t, img).Content; c.Type != "ext4" || c.Label != "data" {
		t.Fatalf("after fs_setup the device holds %v", c)
	}

	plan, err = PlanFsSetup(ext4, mustState(t, img))
	if err != nil || plan.Cmd != nil || !strings.Contains(plan.Note, "already holds") {
		t.Errorf("same entry again = %+v, %v; want nothing to do", plan, err)
	}

	xfs := FsSpec{Label: "logs", Filesystem: "xfs", Device: img, Partition: "none"}
	before := fingerprint(t, img)
	_, err = PlanFsSetup(xfs, mustState(t, img))
	want := "fs_setup " + img + `: it already holds a ext4 filesystem labelled "data"; overwrite: false keeps it; nothing changed`
	if err == nil || err.Error() != want {
		t.Errorf("xfs over ext4 without overwrite = %v, want %q", err, want)
	}
	if after := fingerprint(t, img); !bytes.Equal(before, after) {
		t.Error("device changed although fs_setup refused")
	}

	xfs.Overwrite = true
	plan, err = PlanFsSetup(xfs, mustState(t, img))
	if err != nil {
		t.Fatal(err)
	}
	if err := ApplyFsSetup(ctx, ExecRunner{}, plan); err != nil {
		t.Fatal(err)
	}
	if c := mustState(t, img).Content; c.Type != "xfs" || c.Label != "logs" {
		t.Errorf("after overwrite the device holds %v, want xfs logs", c)
	}
}

func TestPlanFsSetupChoosesThePartition(t *testing.T) {
	ext4 := func(label string) Content { return Content{Type: "ext4", Label: label} }
	st := DiskState{Device: "/dev/nvme1n1", Content: Content{PartTable: "gpt"}, Partitions: []Candidate{
		{Path: "/dev/nvme1n1p1", Content: ext4("old")},
		{Path: "/dev/nvme1n1p2"},
		{Path: "/dev/nvme1n1p3"},
	}}
	cases := []struct {
		name     string
		spec     FsSpec
		device   string
		nothing  bool
		errMatch string
	}{
		{"auto takes the first empty partition when no label matches",
			FsSpec{Filesystem: "ext4", Label: "new", Partition: "auto"}, "/dev/nvme1n1p2", false, ""},
		{"auto reuses a partition with the same type and label",
			FsSpec{Filesystem: "ext4", Label: "old", Partition: "auto"}, "/dev/nvme1n1p1", true, ""},
		{"any reuses the first partition with the same type",
			FsSpec{Filesystem: "ext4", Label: "new", Partition: "any"}, "/dev/nvme1n1p1", true, ""},
		{"a number names the NVMe partition with its p",
			FsSpec{Filesystem: "xfs", Partition: "3"}, "/dev/nvme1n1p3", false, ""},
		{"a number on a partition with a filesystem is refused without overwrite",
			FsSpec{Filesystem: "xfs", Partition: "1"}, "", false, `/dev/nvme1n1p1: it already holds a ext4 filesystem labelled "old"`},
		{"a partition that does not exist is refused",
			FsSpec{Filesystem: "xfs", Partition: "7"}, "", false, "partition /dev/nvme1n1p7 does not exist"},
		{"none on a disk with a table is refused",
			FsSpec{Filesystem: "xfs", Partition: "none"}, "", false, "/dev/nvme1n1: it already holds a gpt partition table"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := PlanFsSetup(c.spec, st)
			if c.errMatch != "" {
				if err == nil || !strings.Contains(err.Error(), c.errMatch) || !strings.HasSuffix(err.Error(), "nothing changed") {
					t.Fatalf("PlanFsSetup = %+v, %v; want an error with %q", p, err, c.errMatch)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Device != c.device || (p.Cmd == nil) != c.nothing {
				t.Errorf("PlanFsSetup = %+v, want device %s, nothing to do %v", p, c.device, c.nothing)
			}
		})
	}
}

// TestDiskAndFsSetupOnALoopDevice partitions an attached volume and puts
// filesystems on its partitions found through sysfs, as a first boot does.
func TestDiskAndFsSetupOnALoopDevice(t *testing.T) {
	testenv.Root(t)
	testenv.Tool(t, "losetup")
	testenv.Tool(t, "mkfs.ext4")
	img := emptyImage(t, 64)
	dev := loopDisk(t, img)
	names := DeviceNames{BlockDeviceMapping: map[string]string{"ephemeral0": dev}, Devices: HostDevices{}}
	cfg, err := DecodeConfig([]byte("disk_setup:\n  ephemeral0: {table_type: gpt, layout: [50, 50]}\n" +
		"fs_setup:\n - {label: one, filesystem: ext4, device: ephemeral0, partition: auto}\n" +
		" - {label: two, filesystem: ext4, device: ephemeral0, partition: auto}\n"))
	if err != nil {
		t.Fatal(err)
	}
	disk, err := names.Resolve("ephemeral0")
	if err != nil || disk != dev {
		t.Fatalf("Resolve(ephemeral0) = %q, %v; want %s", disk, err, dev)
	}
	st, err := ReadDiskState("/sys", disk)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := PlanDiskSetup(cfg.DiskSetup["ephemeral0"], st)
	if err != nil {
		t.Fatal(err)
	}
	if err := ApplyDiskSetup(context.Background(), ExecRunner{}, plan); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dev + "p2"); err != nil {
		// This kernel parses no partition tables; add them as udev would.
		exec.Command("partx", "-a", dev).Run()
	}
	for i, spec := range cfg.FsSetup {
		st, err := ReadDiskState("/sys", disk)
		if err != nil {
			t.Fatal(err)
		}
		p, err := PlanFsSetup(spec, st)
		if err != nil {
			t.Fatalf("fs_setup entry %d: %v", i+1, err)
		}
		if err := ApplyFsSetup(context.Background(), ExecRunner{}, p); err != nil {
			t.Fatal(err)
		}
	}
	for part, label := range map[string]string{dev + "p1": "one", dev + "p2": "two"} {
		if got := blkidExport(t, part); got["TYPE"] != "ext4" || got["LABEL"] != label {
			t.Errorf("%s holds %v, want ext4 %s", part, got, label)
		}
	}
}

func TestSplitFsDeviceTakesTheDottedPartition(t *testing.T) {
	names := DeviceNames{BlockDeviceMapping: map[string]string{"ephemeral0": "sdb"},
		InstanceStores: []string{"/dev/nvme1n1"}, Devices: fakeDevices{"/dev/nvme1n1": true}}
	cases := []struct{ device, partition, disk, part, err string }{
		{"ephemeral0.1", "auto", "/dev/nvme1n1", "1", ""},
		{"ephemeral0", "none", "/dev/nvme1n1", "none", ""},
		{"/dev/xvdf", "", "/dev/xvdf", "", ""},
		{"ephemeral3", "any", "", "", "ephemeral3 names no device in block-device-mapping; nothing changed"},
		{"", "any", "", "", `entry labelled "x" names no device; nothing changed`},
	}
	for _, c := range cases {
		disk, part, err := SplitFsDevice(names, FsSpec{Label: "x", Device: c.device, Partition: c.partition})
		if c.err != "" {
			if err == nil || err.Error() != c.err {
				t.Errorf("SplitFsDevice(%q) error = %v, want %q", c.device, err, c.err)
			}
			continue
		}
		if err != nil || disk != c.disk || part != c.part {
			t.Errorf("SplitFsDevice(%q) = %q, %q, %v; want %q, %q", c.device, disk, part, err, c.disk, c.part)
		}
	}
}
