package builtin

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/flint-dev/flint/disks"
	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/internal/rootfs"
	"github.com/flint-dev/flint/internal/state"
)

// mountsHandler is cloud-init's mounts, once per instance: the swap file
// (`swap`), then /etc/fstab with the user's `mounts` completed by
// `mount_default_fields`, the default instance-store entry (ephemeral0 on
// /mnt, from meta-data/block-device-mapping or the NVMe instance stores)
// and the swap line, replacing the lines written before (marked
// comment=cloudconfig, as cloud-init marks them) and keeping every other
// line; then swapon -a, mount -a and systemd's daemon-reload. An entry
// naming a device that does not exist is left out of fstab and fails the
// handler with one line; the other entries are written.
var mountsHandler = handlers.Builtin{Name: "mounts", Frequency: state.PerInstance, Run: runMounts}

// mountsUnit is the unit fstab's default options make mounts wait for.
const mountsUnit = "flint.service"

func runMounts(ctx context.Context, b *handlers.Boot) error {
	cfg, err := diskConfig(ctx, b, "mounts", "mount_default_fields", "swap", "device_aliases")
	if err != nil {
		return err
	}
	bdm, err := blockDeviceMapping(ctx, b)
	if err != nil {
		return err
	}
	fstab, err := b.Root.ReadFile("etc/fstab", rootfs.InRoot)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("mounts: %w; fstab unchanged", err)
	}
	systemd := underSystemd()
	in := disks.MountsInput{
		Config: cfg, BlockDeviceMapping: bdm, InstanceStores: disks.FindInstanceStores("/sys"),
		Fstab: string(fstab), Devices: disks.HostDevices{}, Systemd: systemd, Unit: mountsUnit,
	}
	live, notLive := liveDisks(b, "mounts")
	if !live {
		if s := cfg.Swap; s != nil && s.Filename != "" && (s.Size > 0 || s.SizeAuto) {
			in.SwapFile = s.Filename
			b.Note("would make swap file %s unless it exists", s.Filename)
		}
		plan := disks.PlanMounts(in)
		noteMountsPlan(b, plan, "would ")
		if !plan.Write {
			return nil
		}
		return notLive
	}
	runner := disks.ExecRunner{}
	var failed []string
	file, note, err := disks.SetupSwap(ctx, runner, "/", cfg.Swap)
	if err != nil {
		failed = append(failed, err.Error())
	} else if cfg.Swap != nil {
		b.Note("%s", note)
	}
	in.SwapFile = file
	in.MountPoints = mountPoints()
	plan := disks.PlanMounts(in)
	noteMountsPlan(b, plan, "")
	failed = append(failed, refusedMounts(plan)...)
	if err := disks.ApplyMounts(ctx, runner, "/", plan, systemd); err != nil {
		failed = append(failed, err.Error())
	}
	if len(failed) > 0 {
		return errors.New(strings.Join(failed, "; "))
	}
	return nil
}

// refusedMounts are the plan's entries left out for a reason that fails
// the handler: a device that does not exist, an entry that is no list or
// names no device. An entry whose device fstab already mounts on a line
// of its own is the image's choice, kept without a failure.
func refusedMounts(plan disks.MountsPlan) []string {
	var out []string
	for _, n := range plan.Notes {
		if !strings.Contains(n, "already in fstab") {
			out = append(out, n)
		}
	}
	return out
}

// noteMountsPlan records the fstab lines a plan adds and drops, and why
// entries were left out.
func noteMountsPlan(b *handlers.Boot, plan disks.MountsPlan, would string) {
	for _, n := range plan.Notes {
		b.Note("%s", n)
	}
	for _, l := range plan.Removed {
		b.Note("%sdrop fstab line %q", would, l)
	}
	for _, l := range plan.Added {
		b.Note("%sadd fstab line %q", would, l)
	}
	if plan.Write && len(plan.Added)+len(plan.Removed) == 0 {
		b.Note("fstab already as configured")
	}
}

// mountPoints lists the mount points of the running system, from which
// the plan decides whether mount -a is needed. They stay escaped as
// mountinfo writes them (\040 for a space): a point that does not match
// costs one mount -a, which mounts nothing twice.
func mountPoints() []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 {
			out = append(out, f[4])
		}
	}
	return out
}
