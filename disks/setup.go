package disks

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// DeviceNames turns the names disk_setup and fs_setup use into device
// paths: a /dev path as it is, a metadata name (ephemeral0, ebs1, swap)
// through block-device-mapping as PlanMounts does, with NVMe instance
// stores for ephemeralN, and device_aliases first.
type DeviceNames struct {
	BlockDeviceMapping map[string]string
	InstanceStores     []string
	Aliases            map[string]string
	Devices            Devices
}

// Resolve returns the device path for name, or an error saying it maps to
// nothing.
func (d DeviceNames) Resolve(name string) (string, error) {
	if a, ok := d.Aliases[name]; ok {
		name = a
	}
	if strings.HasPrefix(name, "/") {
		return name, nil
	}
	if !isMetaDeviceName(name) {
		return "/dev/" + name, nil
	}
	p := &mountPlanner{in: MountsInput{BlockDeviceMapping: d.BlockDeviceMapping, InstanceStores: d.InstanceStores, Devices: d.Devices}}
	dev := p.deviceFor(name)
	if dev == "" {
		return "", fmt.Errorf("%s names no device in block-device-mapping", name)
	}
	if !strings.HasPrefix(dev, "/") {
		dev = "/dev/" + dev
	}
	return dev, nil
}

// partitionPath is the path of partition n of disk: nvme0n1p1 and
// loop0p1 where the disk's name ends in a digit, xvdb1 otherwise.
// (cloud-init 22.4 always appends the number, which misnames NVMe
// partitions.)
func partitionPath(disk string, n string) string {
	if last := disk[len(disk)-1]; last >= '0' && last <= '9' {
		return disk + "p" + n
	}
	return disk + n
}

// DiskState is what a disk holds now: its own content and its partitions.
type DiskState struct {
	Device     string
	Content    Content
	Partitions []Candidate
}

// Candidate is a partition (or the disk) and what it holds.
type Candidate struct {
	Path    string
	Content Content
	IsDisk  bool
}

// ReadDiskState probes a disk and, through sysfs under sys, its partitions.
func ReadDiskState(sys, device string) (DiskState, error) {
	st := DiskState{Device: device}
	c, err := ProbeDevice(device)
	if err != nil {
		return st, err
	}
	st.Content = c
	real, err := filepath.EvalSymlinks(device)
	if err != nil {
		return st, fmt.Errorf("resolve %s: %w", device, err)
	}
	name := filepath.Base(real)
	parts, _ := filepath.Glob(filepath.Join(sys, "class/block", name, name+"*", "partition"))
	sort.Strings(parts)
	for _, p := range parts {
		pname := filepath.Base(filepath.Dir(p))
		path := filepath.Join(filepath.Dir(device), pname)
		pc, err := ProbeDevice(path)
		if err != nil {
			return st, err
		}
		st.Partitions = append(st.Partitions, Candidate{Path: path, Content: pc})
	}
	return st, nil
}

// DiskPlan is what disk_setup will do to one disk.
type DiskPlan struct {
	Device string
	// Script is sfdisk's input; empty when nothing is to be done.
	Script string
	// Note says why nothing is done (already as asked, no layout).
	Note string
}

// gptTypes maps the sgdisk type codes cloud-init's examples use to
// sfdisk's GPT aliases.
var gptTypes = map[string]string{"": "L", "83": "L", "8300": "L", "82": "S", "8200": "S",
	"ef00": "U", "8e00": "V", "fd00": "R", "ef02": "21686148-6449-6E6F-744E-656564454649"}

// PlanDiskSetup decides one disk_setup entry. A disk that holds a
// partition table or a filesystem is refused unless overwrite is set (an
// error naming what it holds; nothing is changed), except that a table of
// the asked type with as many partitions as asked is already done.
func PlanDiskSetup(spec DiskSpec, st DiskState) (DiskPlan, error) {
	plan := DiskPlan{Device: st.Device}
	if !spec.Layout.Whole && len(spec.Layout.Parts) == 0 {
		plan.Note = "no layout asked; not partitioned"
		return plan, nil
	}
	table := strings.ToLower(spec.TableType)
	if table == "" {
		table = "mbr"
	}
	label := map[string]string{"mbr": "dos", "gpt": "gpt"}[table]
	if label == "" {
		return plan, fmt.Errorf("disk_setup %s: table_type %q is not mbr or gpt; nothing changed", st.Device, spec.TableType)
	}
	want := max(1, len(spec.Layout.Parts))
	if !spec.Overwrite {
		if st.Content.PartTable == label && (len(st.Partitions) == want || spec.Layout.Whole && len(st.Partitions) >= 1) {
			plan.Note = fmt.Sprintf("%s already has a %s table with %d partitions as asked", st.Device, table, len(st.Partitions))
			return plan, nil
		}
		if !st.Content.Empty() || len(st.Partitions) > 0 {
			return plan, fmt.Errorf("disk_setup %s: the disk already holds %s; overwrite: false keeps it; nothing changed", st.Device, st.Content)
		}
	}
	parts := spec.Layout.Parts
	if spec.Layout.Whole {
		parts = []PartSpec{{Percent: 100}}
	}
	// sfdisk takes sizes, not percentages: a ",PCT%,type" line is
	// resolved against the disk's size by ApplyDiskSetup. The last
	// partition of a layout adding up to 100% takes the rest.
	var b strings.Builder
	fmt.Fprintf(&b, "label: %s\n", label)
	total := 0
	for i, p := range parts {
		total += p.Percent
		if total > 100 {
			return plan, fmt.Errorf("disk_setup %s: layout adds up to more than 100%%; nothing changed", st.Device)
		}
		typ := p.Type
		if label == "gpt" {
			t, ok := gptTypes[strings.ToLower(typ)]
			if !ok {
				return plan, fmt.Errorf("disk_setup %s: partition type %q is not one flint knows for GPT (8300, 8200, ef00, ef02, 8e00, fd00); nothing changed", st.Device, typ)
			}
			typ = t
		} else if typ == "" {
			typ = "83"
		}
		if i == len(parts)-1 && total == 100 {
			fmt.Fprintf(&b, ",,%s\n", typ)
		} else {
			fmt.Fprintf(&b, ",%d%%,%s\n", p.Percent, typ)
		}
	}
	plan.Script = b.String()
	return plan, nil
}

// ApplyDiskSetup resolves percentages against the disk's size (whole MiB)
// and runs sfdisk with the script.
func ApplyDiskSetup(ctx context.Context, runner Runner, plan DiskPlan) error {
	if plan.Script == "" {
		return nil
	}
	f, err := os.Open(plan.Device)
	if err != nil {
		return fmt.Errorf("disk_setup %s: %w; nothing changed", plan.Device, err)
	}
	size, _, err := diskGeometry(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("disk_setup %s: %w; nothing changed", plan.Device, err)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSuffix(plan.Script, "\n"), "\n") {
		var pct int
		var typ string
		if n, _ := fmt.Sscanf(l, ",%d%%,%s", &pct, &typ); n == 2 {
			l = fmt.Sprintf(",%dMiB,%s", (size*int64(pct)/100)>>20, typ)
		}
		lines = append(lines, l)
	}
	script := strings.Join(lines, "\n") + "\n"
	tmp, err := os.CreateTemp("", "flint-sfdisk-")
	if err != nil {
		return fmt.Errorf("disk_setup %s: %w; nothing changed", plan.Device, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(script); err != nil {
		tmp.Close()
		return fmt.Errorf("disk_setup %s: %w; nothing changed", plan.Device, err)
	}
	tmp.Close()
	if _, err := runner.Run(ctx, "sh", "-c", `exec sfdisk --quiet --wipe always "$1" < "$2"`, "sh", plan.Device, tmp.Name()); err != nil {
		return fmt.Errorf("disk_setup %s: %w", plan.Device, err)
	}
	return nil
}

// FsPlan is what fs_setup will do for one entry.
type FsPlan struct {
	Device string
	// Cmd is the command to run; nil when nothing is to be done.
	Cmd []string
	// Note says why nothing is done.
	Note string
}

// forceFlags are cloud-init's lookup_force_flag.
var forceFlags = map[string]string{"ext": "-F", "btrfs": "-f", "xfs": "-f", "reiserfs": "-f", "swap": "-f"}

func forceFlag(fs string) string {
	for k, v := range forceFlags {
		if strings.HasPrefix(strings.ToLower(fs), k) {
			return v
		}
	}
	return ""
}

// PlanFsSetup decides one fs_setup entry against the disk's state (the
// disk named by spec.Device, resolved). partition is cloud-init's: a
// number (that partition), "none" (the disk itself), "any" (the first
// device already holding this filesystem type, else the first empty
// partition) or "auto" (the same, the label also matching). A target that
// already holds the asked filesystem and label is left alone; one holding
// anything else is refused unless overwrite is true.
func PlanFsSetup(spec FsSpec, st DiskState) (FsPlan, error) {
	if spec.Filesystem == "" && len(spec.Cmd) == 0 {
		return FsPlan{}, fmt.Errorf("fs_setup %s: neither filesystem nor cmd given; nothing changed", st.Device)
	}
	part := strings.ToLower(spec.Partition)
	if part == "" {
		part = "any"
	}
	target := Candidate{Path: st.Device, Content: st.Content, IsDisk: true}
	switch part {
	case "none":
	case "auto", "any":
		found := false
		all := append([]Candidate{target}, st.Partitions...)
		for _, c := range all {
			if spec.ReplaceFS != "" && part == "any" && c.Content.Type == spec.ReplaceFS {
				target, found = c, true
				break
			}
			if c.Content.Type == spec.Filesystem && (part == "any" || c.Content.Label == spec.Label) {
				return FsPlan{Device: c.Path, Note: fmt.Sprintf("%s already holds %s", c.Path, c.Content)}, nil
			}
		}
		if !found {
			for _, c := range st.Partitions {
				if c.Content.Empty() {
					target, found = c, true
					break
				}
			}
		}
		if !found && (len(st.Partitions) > 0 || !st.Content.Empty()) {
			return FsPlan{}, fmt.Errorf("fs_setup %s: no empty partition for %s (partition: %s); nothing changed", st.Device, spec.Filesystem, part)
		}
	default:
		if strings.Trim(part, "0123456789") != "" {
			return FsPlan{}, fmt.Errorf("fs_setup %s: partition %q is not auto, any, none or a number; nothing changed", st.Device, spec.Partition)
		}
		path := partitionPath(st.Device, part)
		target = Candidate{Path: path}
		ok := false
		for _, c := range st.Partitions {
			if c.Path == path {
				target, ok = c, true
			}
		}
		if !ok {
			return FsPlan{}, fmt.Errorf("fs_setup %s: partition %s does not exist; nothing changed", st.Device, path)
		}
	}
	if target.Content.Type == spec.Filesystem && target.Content.Label == spec.Label && !spec.Overwrite {
		return FsPlan{Device: target.Path, Note: fmt.Sprintf("%s already holds %s", target.Path, target.Content)}, nil
	}
	if !spec.Overwrite && !target.Content.Empty() && (spec.ReplaceFS == "" || target.Content.Type != spec.ReplaceFS) {
		return FsPlan{}, fmt.Errorf("fs_setup %s: it already holds %s; overwrite: false keeps it; nothing changed", target.Path, target.Content)
	}
	if len(spec.Cmd) > 0 {
		c := strings.Join(spec.Cmd, " ")
		r := strings.NewReplacer("%(label)s", spec.Label, "%(filesystem)s", spec.Filesystem, "%(device)s", target.Path)
		return FsPlan{Device: target.Path, Cmd: []string{"sh", "-c", r.Replace(c)}}, nil
	}
	tool := "mkfs." + spec.Filesystem
	if spec.Filesystem == "swap" {
		tool = "mkswap"
	}
	cmd := []string{tool}
	if spec.Label != "" {
		cmd = append(cmd, "-L", spec.Label)
	}
	// The force flag is needed to write over a disk without partitions
	// (mke2fs asks otherwise) and when overwriting was asked for.
	if f := forceFlag(spec.Filesystem); f != "" && (spec.Overwrite || target.IsDisk || !target.Content.Empty()) {
		cmd = append(cmd, f)
	}
	cmd = append(cmd, spec.ExtraOpts...)
	cmd = append(cmd, target.Path)
	return FsPlan{Device: target.Path, Cmd: cmd}, nil
}

// ApplyFsSetup runs the planned mkfs.
func ApplyFsSetup(ctx context.Context, runner Runner, plan FsPlan) error {
	if len(plan.Cmd) == 0 {
		return nil
	}
	if _, err := runner.Run(ctx, plan.Cmd[0], plan.Cmd[1:]...); err != nil {
		return fmt.Errorf("fs_setup %s: %w", plan.Device, err)
	}
	return nil
}

// SplitFsDevice resolves an fs_setup entry's device, which may carry its
// partition after a dot (ephemeral0.1, as cloud-init allows): it returns
// the disk and the partition to use, the dotted one taking precedence.
func SplitFsDevice(names DeviceNames, spec FsSpec) (disk, partition string, err error) {
	dev, part := spec.Device, spec.Partition
	if i := strings.LastIndexByte(dev, '.'); i > 0 && strings.Trim(dev[i+1:], "0123456789") == "" && i+1 < len(dev) {
		dev, part = dev[:i], dev[i+1:]
	}
	if dev == "" {
		return "", "", fmt.Errorf("entry labelled %q names no device; nothing changed", spec.Label)
	}
	disk, err = names.Resolve(dev)
	if err != nil {
		return "", "", fmt.Errorf("%w; nothing changed", err)
	}
	return disk, part, nil
}
