package disks

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Env says where the edges look: the mount table, sysfs, /dev and the root
// holding /etc/growroot-disabled. The zero value is not useful; use
// HostEnv on an instance.
type Env struct {
	MountInfo string // /proc/self/mountinfo
	Sys       string // /sys
	Dev       string // /dev
	Root      string // /
	Runner    Runner
}

// HostEnv is the running system.
func HostEnv() Env {
	return Env{MountInfo: "/proc/self/mountinfo", Sys: "/sys", Dev: "/dev", Root: "/", Runner: ExecRunner{}}
}

// Mount is one line of mountinfo.
type Mount struct {
	Major, Minor int
	Mountpoint   string
	FSType       string
	Source       string
	ReadOnly     bool
}

// FindMount returns the mount at mountpoint (the last one, when mounts are
// stacked), read from a mountinfo file.
func FindMount(mountinfo, mountpoint string) (Mount, error) {
	b, err := os.ReadFile(mountinfo)
	if err != nil {
		return Mount{}, fmt.Errorf("read mount table: %w", err)
	}
	var found *Mount
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		sep := -1
		for i, x := range f {
			if x == "-" {
				sep = i
				break
			}
		}
		if sep < 6 || len(f) < sep+3 || unescapeMount(f[4]) != mountpoint {
			continue
		}
		maj, min, ok := strings.Cut(f[2], ":")
		if !ok {
			continue
		}
		m := Mount{Mountpoint: mountpoint, FSType: f[sep+1], Source: unescapeMount(f[sep+2])}
		m.Major, _ = strconv.Atoi(maj)
		m.Minor, _ = strconv.Atoi(min)
		m.ReadOnly = strings.HasPrefix(f[5], "ro")
		found = &m
	}
	if found == nil {
		return Mount{}, fmt.Errorf("%s is not a mount point", mountpoint)
	}
	return *found, nil
}

// mountDevice is the block device number behind a mount. btrfs reports an
// anonymous device (major 0) per subvolume in mountinfo, so there the
// mount's source device is used, as cloud-init does through /proc/mounts.
func mountDevice(m Mount) (major, minor int) {
	if m.Major != 0 || !strings.HasPrefix(m.Source, "/dev/") {
		return m.Major, m.Minor
	}
	var st unix.Stat_t
	if err := unix.Stat(m.Source, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return m.Major, m.Minor
	}
	return int(unix.Major(st.Rdev)), int(unix.Minor(st.Rdev))
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Partition names a partition and the disk holding it.
type Partition struct {
	Disk     string // /dev/nvme0n1, /dev/xvda, /dev/loop0
	Device   string // /dev/nvme0n1p1, /dev/xvda1
	Number   int
	DiskName string
	PartName string
	// LVM is set when the device asked about was an LVM logical volume
	// and this partition is its one physical volume.
	LVM bool
}

// PartitionOf finds, through sysfs, the partition with the given device
// number and its disk. For an LVM logical volume on a single physical
// volume that is a partition, it returns that partition with LVM set:
// growing it and pvresize give the volume group the new space. Other
// device-mapper devices (encrypted, several physical volumes) and whole
// disks are refused.
func PartitionOf(env Env, major, minor int) (Partition, error) {
	link := filepath.Join(env.Sys, "dev/block", fmt.Sprintf("%d:%d", major, minor))
	real, err := filepath.EvalSymlinks(link)
	if err != nil {
		return Partition{}, fmt.Errorf("device %d:%d has no sysfs entry: %w", major, minor, err)
	}
	name := filepath.Base(real)
	if _, err := os.Stat(filepath.Join(real, "dm")); err == nil {
		return lvmPartition(env, real, name)
	}
	return partitionAt(env, real)
}

func partitionAt(env Env, real string) (Partition, error) {
	name := filepath.Base(real)
	pb, err := os.ReadFile(filepath.Join(real, "partition"))
	if err != nil {
		return Partition{}, fmt.Errorf("%s is not a partition (a whole disk or an unknown device type)", name)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(pb)))
	if err != nil || n < 1 {
		return Partition{}, fmt.Errorf("%s: partition number %q is invalid", name, strings.TrimSpace(string(pb)))
	}
	disk := filepath.Base(filepath.Dir(real))
	return Partition{Disk: filepath.Join(env.Dev, disk), Device: filepath.Join(env.Dev, name),
		Number: n, DiskName: disk, PartName: name}, nil
}

func lvmPartition(env Env, real, name string) (Partition, error) {
	uuid, _ := os.ReadFile(filepath.Join(real, "dm/uuid"))
	if !strings.HasPrefix(string(uuid), "LVM-") {
		return Partition{}, fmt.Errorf("%s is a device-mapper device that is not an LVM logical volume (encrypted?); growing it is not supported", name)
	}
	slaves, _ := filepath.Glob(filepath.Join(real, "slaves", "*"))
	if len(slaves) != 1 {
		return Partition{}, fmt.Errorf("%s is an LVM logical volume on %d physical volumes; only one is grown", name, len(slaves))
	}
	pv, err := filepath.EvalSymlinks(slaves[0])
	if err != nil {
		return Partition{}, fmt.Errorf("%s: physical volume %s: %w", name, filepath.Base(slaves[0]), err)
	}
	p, err := partitionAt(env, pv)
	if err != nil {
		return Partition{}, fmt.Errorf("%s is an LVM logical volume whose physical volume %w", name, err)
	}
	p.LVM = true
	return p, nil
}

// GrowPartition grows partition number partnum of the disk at path into
// the free space after it, writes the table and tells the kernel the
// partition's new size with BLKPG_RESIZE_PARTITION, which works while the
// partition is mounted. When the plan is refused nothing is written.
func GrowPartition(disk string, partnum int) (GrowPlan, error) {
	f, err := os.OpenFile(disk, os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return GrowPlan{}, fmt.Errorf("open disk %s: %w", disk, err)
	}
	defer f.Close()
	size, ss, err := diskGeometry(f)
	if err != nil {
		return GrowPlan{}, fmt.Errorf("disk %s: %w", disk, err)
	}
	plan, err := PlanGrowPart(f, size, ss, partnum)
	if err != nil {
		return GrowPlan{}, fmt.Errorf("%s partition %d: %w", disk, partnum, err)
	}
	for _, w := range plan.Writes {
		if _, err := f.WriteAt(w.Data, w.Offset); err != nil {
			return plan, fmt.Errorf("write partition table of %s at byte %d: %w", disk, w.Offset, err)
		}
	}
	if err := f.Sync(); err != nil {
		return plan, fmt.Errorf("sync partition table of %s: %w", disk, err)
	}
	if err := blkpgResize(f, plan); err != nil {
		return plan, fmt.Errorf("table of %s written, but the kernel keeps the old size of partition %d until reboot: %w", disk, partnum, err)
	}
	return plan, nil
}

func diskGeometry(f *os.File) (size, sectorSize int64, err error) {
	st, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	if st.Mode().IsRegular() {
		return st.Size(), 512, nil
	}
	if st.Mode()&os.ModeDevice == 0 {
		return 0, 0, errors.New("not a block device")
	}
	var sz uint64
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.BLKGETSIZE64, uintptr(unsafe.Pointer(&sz))); e != 0 {
		return 0, 0, fmt.Errorf("BLKGETSIZE64: %w", e)
	}
	ss, err := unix.IoctlGetInt(int(f.Fd()), unix.BLKSSZGET)
	if err != nil {
		return 0, 0, fmt.Errorf("BLKSSZGET: %w", err)
	}
	return int64(sz), int64(ss), nil
}

// blkpgIoctl is BLKPG, _IO(0x12, 105), which x/sys/unix does not name.
const blkpgIoctl = 0x1269

func blkpgResize(f *os.File, p GrowPlan) error {
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		return nil // an image file has no kernel partitions to update
	}
	part := unix.BlkpgPartition{
		Start:  p.StartSector * p.SectorSize,
		Length: p.NewSectors * p.SectorSize,
		Pno:    int32(p.Partition),
	}
	arg := unix.BlkpgIoctlArg{
		Op:      unix.BLKPG_RESIZE_PARTITION,
		Datalen: int32(unsafe.Sizeof(part)),
		Data:    (*byte)(unsafe.Pointer(&part)),
	}
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, f.Fd(), blkpgIoctl, uintptr(unsafe.Pointer(&arg))); e != 0 {
		return fmt.Errorf("BLKPG_RESIZE_PARTITION: %w", e)
	}
	return nil
}

// GrowResult is what happened to one growpart device.
type GrowResult struct {
	Entry   string // as given in growpart.devices
	Action  string // "changed", "nochange", "skipped", "failed"
	Message string
}

func (r GrowResult) String() string {
	return fmt.Sprintf("growpart %s: %s: %s", r.Entry, r.Action, r.Message)
}

// GrowPart does the growpart module: for each device (a mount point or a
// /dev path) it finds the partition and grows it. Disabled by mode off, or
// by /etc/growroot-disabled unless ignore_growroot_disabled. cfg nil means
// cloud-init's default (auto, ["/"]), as on EC2 with no user-data.
func GrowPart(ctx context.Context, env Env, cfg *Growpart) []GrowResult {
	g := DefaultGrowpart()
	if cfg != nil {
		g = *cfg
	}
	switch g.Mode {
	case "off":
		return []GrowResult{{Entry: "*", Action: "skipped", Message: "growpart disabled: mode=off"}}
	case "auto", "growpart":
	default:
		return []GrowResult{{Entry: "*", Action: "failed", Message: fmt.Sprintf("growpart mode %q is not supported (want auto, growpart or off); nothing changed", g.Mode)}}
	}
	if !g.IgnoreGrowrootDisabled {
		if _, err := os.Stat(filepath.Join(env.Root, "etc/growroot-disabled")); err == nil {
			return []GrowResult{{Entry: "*", Action: "skipped", Message: "growpart disabled: /etc/growroot-disabled exists (set ignore_growroot_disabled to grow anyway)"}}
		}
	}
	var out []GrowResult
	for _, dev := range g.Devices {
		if ctx.Err() != nil {
			break
		}
		out = append(out, growOne(env, dev))
	}
	return out
}

func growOne(env Env, entry string) GrowResult {
	res := GrowResult{Entry: entry}
	var major, minor int
	if strings.HasPrefix(entry, "/dev/") {
		var st unix.Stat_t
		if err := unix.Stat(entry, &st); err != nil {
			res.Action, res.Message = "skipped", fmt.Sprintf("stat of %s failed: %v; nothing changed", entry, err)
			return res
		}
		if st.Mode&unix.S_IFMT != unix.S_IFBLK {
			res.Action, res.Message = "skipped", fmt.Sprintf("%s is not a block device; nothing changed", entry)
			return res
		}
		major, minor = int(unix.Major(st.Rdev)), int(unix.Minor(st.Rdev))
	} else {
		m, err := FindMount(env.MountInfo, entry)
		if err != nil {
			res.Action, res.Message = "skipped", fmt.Sprintf("unable to convert to device: %v; nothing changed", err)
			return res
		}
		major, minor = mountDevice(m)
	}
	p, err := PartitionOf(env, major, minor)
	if err != nil {
		res.Action, res.Message = "skipped", err.Error()+"; nothing changed"
		return res
	}
	plan, err := GrowPartition(p.Disk, p.Number)
	switch {
	case errors.Is(err, ErrNoChange):
		res.Action, res.Message = "nochange", fmt.Sprintf("no change necessary (%s, %d)", p.Disk, p.Number)
	case err != nil && plan.Table == "":
		res.Action, res.Message = "skipped", err.Error()+"; nothing changed"
	case err != nil:
		res.Action, res.Message = "failed", err.Error()
	default:
		res.Action, res.Message = "changed", fmt.Sprintf("%s: %s", p.Disk, plan)
		if p.LVM {
			// The logical volume keeps its size: how the volume group's
			// new space is shared out is the image's choice.
			if _, err := env.Runner.Run(context.Background(), "pvresize", p.Device); err != nil {
				res.Action, res.Message = "failed", fmt.Sprintf("%s: %s, but %v", p.Disk, plan, err)
			} else {
				res.Message += "; physical volume " + p.Device + " resized"
			}
		}
	}
	return res
}

// ResizeCommand is cloud-init's resizer for a filesystem type: resize2fs on
// the device for ext*, xfs_growfs and btrfs on the mount point. ok is false
// for a type it cannot grow.
func ResizeCommand(fstype, device, mountpoint string) (cmd []string, ok bool) {
	switch {
	case strings.HasPrefix(fstype, "btrfs"):
		return []string{"btrfs", "filesystem", "resize", "max", mountpoint}, true
	case strings.HasPrefix(fstype, "ext"):
		return []string{"resize2fs", device}, true
	case strings.HasPrefix(fstype, "xfs"):
		return []string{"xfs_growfs", mountpoint}, true
	}
	return nil, false
}

// ResizeRootFS does the resize_rootfs module for the filesystem mounted at
// mountpoint ("/" on an instance): nil mode means cloud-init's default
// (true). With noblock the resizer is started and left running; its
// outcome is not waited for, as cloud-init's fork does.
func ResizeRootFS(ctx context.Context, env Env, mode *ResizeRootfs, mountpoint string) (string, error) {
	m := ResizeOn
	if mode != nil {
		m = *mode
	}
	if m == ResizeOff {
		return "resize_rootfs disabled", nil
	}
	mt, err := FindMount(env.MountInfo, mountpoint)
	if err != nil {
		return "", fmt.Errorf("resize_rootfs: %w; nothing changed", err)
	}
	major, minor := mountDevice(mt)
	dev, err := filepath.EvalSymlinks(filepath.Join(env.Sys, "dev/block", fmt.Sprintf("%d:%d", major, minor)))
	if err != nil {
		return "", fmt.Errorf("resize_rootfs: %s (%s) is not on a block device; nothing changed", mountpoint, mt.Source)
	}
	devpath := filepath.Join(env.Dev, filepath.Base(dev))
	cmd, ok := ResizeCommand(mt.FSType, devpath, mountpoint)
	if !ok {
		return "", fmt.Errorf("resize_rootfs: not resizing unknown filesystem type %s on %s; nothing changed", mt.FSType, mountpoint)
	}
	blocks, want, extOK := extSizes(mt.FSType, devpath)
	if extOK && blocks == want {
		return fmt.Sprintf("%s (%s) already fills %s: nothing to resize", mountpoint, mt.FSType, devpath), nil
	}
	if extOK && blocks < want {
		// Milliseconds, so also with resize_rootfs: noblock.
		if err := growExtOnline(mountpoint, want); err == nil {
			return fmt.Sprintf("resized %s (%s) on %s online from %d to %d blocks (the kernel's online resize, as resize2fs does it)",
				mountpoint, mt.FSType, devpath, blocks, want), nil
		}
	}
	if m == ResizeNoblock {
		c := exec.Command(cmd[0], cmd[1:]...)
		if err := c.Start(); err != nil {
			return "", fmt.Errorf("resize_rootfs: start %s: %w", strings.Join(cmd, " "), err)
		}
		go c.Wait() // reap it if this process outlives it
		return "resizing " + mountpoint + " in the background: " + strings.Join(cmd, " "), nil
	}
	if _, err := env.Runner.Run(ctx, cmd[0], cmd[1:]...); err != nil {
		return "", fmt.Errorf("resize_rootfs: %w", err)
	}
	return fmt.Sprintf("resized %s (%s) with %s", mountpoint, mt.FSType, strings.Join(cmd, " ")), nil
}
