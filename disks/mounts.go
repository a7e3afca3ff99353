package disks

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// MountComment marks the fstab lines this package writes. It is
// cloud-init's own marker, so lines cloud-init wrote on an image are
// recognised and replaced, never doubled.
const MountComment = "comment=cloudconfig"

// Devices answers what PlanMounts asks about the machine: whether a path
// exists (device nodes and /sys/block entries) and where a symlink leads.
type Devices interface {
	Exists(path string) bool
	Realpath(path string) string
}

// HostDevices looks at the running system.
type HostDevices struct{}

// Exists reports whether path exists.
func (HostDevices) Exists(path string) bool { _, err := os.Stat(path); return err == nil }

// Realpath resolves symlinks; a path that does not resolve is kept.
func (HostDevices) Realpath(path string) string {
	if r, err := filepath.EvalSymlinks(path); err == nil {
		return r
	}
	return path
}

// MountsInput is what PlanMounts decides from.
type MountsInput struct {
	// Config supplies mounts, mount_default_fields and device_aliases.
	Config Config
	// BlockDeviceMapping is meta-data block-device-mapping/: name
	// (ami, root, ephemeral0, ebs1, swap) to device (sdb, /dev/sda1).
	BlockDeviceMapping map[string]string
	// InstanceStores are the NVMe instance-store disks, in order
	// (FindInstanceStores); ephemeralN falls back to the Nth.
	InstanceStores []string
	// Fstab is the current /etc/fstab.
	Fstab   string
	Devices Devices
	// SwapFile is the swap file set up for this boot (PlanSwap), if any.
	SwapFile string
	// MountPoints are the mount points mounted now (to decide on mount -a).
	MountPoints []string
	// Systemd selects the systemd default options; Unit names the unit a
	// mount waits for (flint.service).
	Systemd bool
	Unit    string
}

// MountsPlan is the fstab PlanMounts wants and what it takes to get there.
type MountsPlan struct {
	// Write is false when there is nothing to write (Fstab then empty).
	Write bool
	Fstab string
	// Added and Removed are this package's lines, with runs of blanks
	// folded, that the write adds and drops.
	Added, Removed []string
	// Dirs are mount points to create.
	Dirs []string
	// Swapon and MountAll say which activation commands to run.
	Swapon, MountAll bool
	// Notes are one-line reasons for entries left out.
	Notes []string
}

var (
	deviceNameRE  = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^([x]{0,1}[shv]d[a-z][0-9]*|sr[0-9]+)$`) })
	networkNameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^.+:.*`) })
	wsRE          = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`[ \t\n\r\v\f]+`) })
	ephemeralRE   = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^ephemeral([0-9]+)$`) })
)

// DefaultMountOptions is the fourth fstab field when neither the entry nor
// mount_default_fields gives one: cloud-init's, with the unit a mount
// waits for being flint's.
func DefaultMountOptions(systemd bool, unit string) string {
	if !systemd {
		return "defaults,nobootwait"
	}
	return "defaults,nofail,x-systemd.requires=" + unit + ",_netdev"
}

func isMetaDeviceName(name string) bool {
	switch name {
	case "ami", "root", "swap":
		return true
	}
	for _, p := range []string{"ephemeral", "ebs"} {
		if strings.HasPrefix(name, p) && !strings.Contains(name, ":") {
			return true
		}
	}
	return false
}

type mountPlanner struct {
	in    MountsInput
	notes []string
}

// deviceFor is the EC2 datasource's device_name_to_device: a metadata name
// to a device through block-device-mapping, sdX remapped to the names the
// kernel uses (vdX, xvdX), and, beyond cloud-init, ephemeralN to the Nth
// NVMe instance store when the mapped name does not exist (Nitro
// instances name the instance store nvmeXn1, not sdb).
func (p *mountPlanner) deviceFor(name string) string {
	if p.in.BlockDeviceMapping == nil {
		return ""
	}
	found, ok := p.in.BlockDeviceMapping[name]
	if !ok && name == "ephemeral0" {
		found, ok = p.in.BlockDeviceMapping["ephemeral"]
	}
	if !ok || found == "" {
		return p.instanceStore(name)
	}
	ofound := found
	if !strings.HasPrefix(found, "/") {
		found = "/dev/" + found
	}
	if p.in.Devices.Exists(found) {
		return found
	}
	short := filepath.Base(found)
	if strings.HasPrefix(short, "sd") {
		for _, to := range []string{"vd", "xvd", "vtb"} {
			if cand := "/dev/" + to + short[2:]; p.in.Devices.Exists(cand) {
				return cand
			}
		}
	}
	if nv := p.instanceStore(name); nv != "" {
		return nv
	}
	if name == "ephemeral0" {
		return ""
	}
	return ofound
}

func (p *mountPlanner) instanceStore(name string) string {
	m := ephemeralRE().FindStringSubmatch(name)
	if m == nil {
		return ""
	}
	n, _ := strconv.Atoi(m[1])
	if n < len(p.in.InstanceStores) {
		return p.in.InstanceStores[n]
	}
	return ""
}

func (p *mountPlanner) nthPartition(dev, n string) string {
	for _, suffix := range []string{n, "p" + n, "-part" + n} {
		if p.in.Devices.Exists(dev + suffix) {
			return dev + suffix
		}
	}
	return ""
}

func (p *mountPlanner) isBlockDevice(dev, part string) bool {
	sys := filepath.Join("/sys/block", filepath.Base(p.in.Devices.Realpath(dev)))
	if part != "" {
		sys = filepath.Join(sys, filepath.Base(p.in.Devices.Realpath(part)))
	}
	return p.in.Devices.Exists(sys)
}

// sanitize is cc_mounts' sanitize_devname: the device an fstab entry names,
// or "" when it does not exist.
func (p *mountPlanner) sanitize(start string) string {
	devname := start
	if devname == "ephemeral" {
		devname = "ephemeral0"
	}
	if networkNameRE().MatchString(start) {
		return start
	}
	devicePath, partNum, dotted := devname, "", false
	if i := strings.LastIndexByte(devname, '.'); i >= 0 {
		devicePath, partNum, dotted = devname[:i], devname[i+1:], true
	}
	if a, ok := p.in.Config.DeviceAliases[devicePath]; ok {
		devicePath = a
	}
	if isMetaDeviceName(devicePath) {
		devicePath = p.deviceFor(devicePath)
		if devicePath == "" {
			return ""
		}
		if !strings.HasPrefix(devicePath, "/") {
			devicePath = "/dev/" + devicePath
		}
	} else if deviceNameRE().MatchString(start) {
		devicePath = "/dev/" + devicePath
	}
	var part string
	if !dotted {
		part = p.nthPartition(devicePath, "1")
	} else if part = p.nthPartition(devicePath, partNum); part == "" {
		return ""
	}
	if p.isBlockDevice(devicePath, part) {
		if part != "" {
			return part
		}
		return devicePath
	}
	return ""
}

// PlanMounts is cc_mounts: the user's mounts entries completed with the
// default fields, the default ephemeral0 (/mnt) and swap entries where
// their devices exist, and the swap file, replacing the lines this package
// (or cloud-init) wrote before and keeping every other line. Entries whose
// device is missing or already in fstab are left out with a note (cloud-init
// 22.4 writes them anyway under their raw name; see docs/cloud-config.md).
func PlanMounts(in MountsInput) MountsPlan {
	p := &mountPlanner{in: in}
	def := DefaultMountOptions(in.Systemd, in.Unit)
	defvals := []*string{nil, nil, strPtr("auto"), &def, strPtr("0"), strPtr("2")}
	if in.Config.MountDefaultFields != nil {
		defvals = in.Config.MountDefaultFields
	}
	defOpts := def
	if len(defvals) > 3 && defvals[3] != nil {
		defOpts = *defvals[3]
	}

	var kept, removed []string
	fstabDevs := map[string]bool{}
	if in.Fstab != "" {
		for _, line := range strings.Split(strings.TrimSuffix(in.Fstab, "\n"), "\n") {
			if strings.Contains(line, MountComment) {
				removed = append(removed, line)
				continue
			}
			fstabDevs[wsRE().Split(line, -1)[0]] = true
			kept = append(kept, line)
		}
	}

	var entries [][]*string
	for i, m := range in.Config.Mounts {
		if m.Invalid != "" {
			p.notes = append(p.notes, fmt.Sprintf("mounts entry %d skipped: %s", i+1, m.Invalid))
			continue
		}
		if len(m.Fields) == 0 || m.Fields[0] == nil {
			p.notes = append(p.notes, fmt.Sprintf("mounts entry %d skipped: it names no device", i+1))
			continue
		}
		start := *m.Fields[0]
		dev := p.sanitize(start)
		if dev == "" {
			p.notes = append(p.notes, fmt.Sprintf("mounts entry %d skipped: device %q does not exist; fstab keeps no line for it", i+1, start))
			continue
		}
		if fstabDevs[dev] {
			p.notes = append(p.notes, fmt.Sprintf("mounts entry %d skipped: %s is already in fstab; that line is kept", i+1, dev))
			continue
		}
		e := append([]*string{&dev}, m.Fields[1:]...)
		entries = append(entries, e)
	}
	for i := range entries {
		for j := range defvals {
			if len(entries[i]) <= j {
				entries[i] = append(entries[i], defvals[j])
			} else if entries[i][j] == nil {
				entries[i][j] = defvals[j]
			}
		}
		// A null mount point clears the earlier entries of that device.
		if len(entries[i]) > 1 && entries[i][1] == nil {
			for j := 0; j < i; j++ {
				if *entries[j][0] == *entries[i][0] {
					entries[j][1] = nil
				}
			}
		}
	}
	defmnts := [][]string{
		{"ephemeral0", "/mnt", "auto", defOpts, "0", "2"},
		{"swap", "none", "swap", "sw", "0", "0"},
	}
	for _, d := range defmnts {
		dev := p.sanitize(d[0])
		if dev == "" || fstabDevs[dev] {
			continue
		}
		has := false
		for _, e := range entries {
			if *e[0] == dev {
				has = true
			}
		}
		if has {
			continue
		}
		e := []*string{&dev}
		for _, f := range d[1:] {
			e = append(e, strPtr(f))
		}
		entries = append(entries, e)
	}
	var act [][]string
	for _, e := range entries {
		if len(e) < 2 || e[1] == nil {
			continue
		}
		line := make([]string, len(e))
		for k, f := range e {
			if f == nil {
				line[k] = "None" // as Python's join would fail; never written by sane input
				continue
			}
			line[k] = *f
		}
		act = append(act, line)
	}
	if in.SwapFile != "" {
		act = append(act, []string{in.SwapFile, "none", "swap", "sw", "0", "0"})
	}
	plan := MountsPlan{Notes: p.notes}
	if len(act) == 0 {
		return plan
	}
	var cc []string
	mounted := map[string]bool{}
	for _, m := range in.MountPoints {
		mounted[m] = true
	}
	for _, line := range act {
		if len(line) > 3 {
			line[3] += "," + MountComment
		}
		if len(line) > 2 && line[2] == "swap" {
			plan.Swapon = true
		}
		if strings.HasPrefix(line[1], "/") {
			plan.Dirs = append(plan.Dirs, line[1])
			if !mounted[line[1]] {
				plan.MountAll = true
			}
		}
		cc = append(cc, strings.Join(line, "\t"))
	}
	adds := foldAll(cc)
	drops := foldAll(removed)
	plan.Added = minus(adds, drops)
	plan.Removed = minus(drops, adds)
	if len(plan.Added)+len(plan.Removed) > 0 {
		plan.MountAll = true
	}
	plan.Write = true
	plan.Fstab = strings.Join(append(kept, cc...), "\n") + "\n"
	return plan
}

func strPtr(s string) *string { return &s }

func foldAll(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = wsRE().ReplaceAllString(l, " ")
	}
	return out
}

func minus(a, b []string) []string {
	in := map[string]bool{}
	for _, x := range b {
		in[x] = true
	}
	var out []string
	for _, x := range a {
		if !in[x] {
			out = append(out, x)
		}
	}
	return out
}

// InstanceStoreModel is the model string of an EC2 NVMe instance-store
// disk in /sys/block/nvme*/device/model.
const InstanceStoreModel = "Amazon EC2 NVMe Instance Storage"

// FindInstanceStores lists the NVMe instance-store disks (/dev/nvmeXn1)
// under sysfs root sys, in name order, so ephemeral0 is the first.
func FindInstanceStores(sys string) []string {
	ents, _ := filepath.Glob(filepath.Join(sys, "block", "nvme*"))
	var out []string
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(e, "device", "model"))
		if err != nil || strings.TrimSpace(string(b)) != InstanceStoreModel {
			continue
		}
		out = append(out, "/dev/"+filepath.Base(e))
	}
	sort.Slice(out, func(i, j int) bool { return nvmeLess(out[i], out[j]) })
	return out
}

// nvmeLess orders nvme2n1 before nvme10n1.
func nvmeLess(a, b string) bool {
	na, nb := digits(a), digits(b)
	if na != nb {
		return na < nb
	}
	return a < b
}

func digits(s string) int {
	s = strings.TrimPrefix(filepath.Base(s), "nvme")
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	n, _ := strconv.Atoi(s[:i])
	return n
}

// ApplyMounts writes the planned fstab atomically (keeping the file's
// mode), creates the mount points and runs swapon -a, mount -a and, under
// systemd, systemctl daemon-reload, as cc_mounts does. root prefixes
// /etc/fstab and the mount points (a test's temporary root; "/" on an
// instance).
func ApplyMounts(ctx context.Context, runner Runner, root string, plan MountsPlan, systemd bool) error {
	if !plan.Write {
		return nil
	}
	fstab := filepath.Join(root, "etc/fstab")
	if err := writeFileAtomic(fstab, []byte(plan.Fstab), 0o644); err != nil {
		return fmt.Errorf("mounts: %w; fstab unchanged", err)
	}
	var errs []string
	for _, d := range plan.Dirs {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			errs = append(errs, fmt.Sprintf("mount point %s: %v", d, err))
		}
	}
	var cmds [][]string
	if plan.Swapon {
		cmds = append(cmds, []string{"swapon", "-a"})
	}
	if plan.MountAll {
		cmds = append(cmds, []string{"mount", "-a"})
		if systemd {
			cmds = append(cmds, []string{"systemctl", "daemon-reload"})
		}
	}
	for _, c := range cmds {
		if _, err := runner.Run(ctx, c[0], c[1:]...); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("mounts: fstab written, but %s", strings.Join(errs, "; "))
	}
	return nil
}

// writeFileAtomic replaces path with data through a temporary file in the
// same directory, keeping an existing file's mode.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	if st, err := os.Stat(path); err == nil {
		mode = st.Mode().Perm()
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
