package builtin

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/flint-dev/flint/disks"
	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/internal/state"
)

// diskSetupHandler is cloud-init's disk_setup then fs_setup, once per
// instance, before mounts: partition tables on attached volumes, then
// filesystems. Devices are named as cloud-init names them (/dev paths,
// ephemeral0, ebs1, swap through meta-data/block-device-mapping and the
// NVMe instance stores, device_aliases first). A device it cannot
// identify, or one holding data that overwrite: false keeps, is one line
// in the result with nothing changed on it; the other entries go on.
// What is redone safely when the handler runs again (a failure, a disk
// that cannot record it) is redone; an entry with overwrite (or an
// fs_setup cmd), which would wipe the data written since, is done at
// most once per instance (step.begin).
var diskSetupHandler = handlers.Builtin{Name: "disk-setup", Frequency: state.PerInstance, Run: runDiskSetup}

func runDiskSetup(ctx context.Context, b *handlers.Boot) error {
	cfg, err := diskConfig(ctx, b, "disk_setup", "fs_setup", "device_aliases")
	if err != nil {
		return err
	}
	if len(cfg.DiskSetup) == 0 && len(cfg.FsSetup) == 0 {
		return nil
	}
	bdm, err := blockDeviceMapping(ctx, b)
	if err != nil {
		return err
	}
	names := disks.DeviceNames{BlockDeviceMapping: bdm, InstanceStores: disks.FindInstanceStores("/sys"),
		Aliases: cfg.DeviceAliases, Devices: disks.HostDevices{}}
	live, notLive := liveDisks(b, "disk-setup")
	runner := disks.ExecRunner{}
	var failed []string
	fail := func(err error) { failed = append(failed, err.Error()) }

	keys := make([]string, 0, len(cfg.DiskSetup))
	for k := range cfg.DiskSetup {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, name := range keys {
		spec := cfg.DiskSetup[name]
		dev, err := names.Resolve(name)
		if err != nil {
			fail(fmt.Errorf("disk_setup: %w; nothing changed", err))
			continue
		}
		if !live {
			b.Note("would partition %s (%s) as disk_setup.%s asks, if it holds nothing or overwrite is set", dev, tableType(spec), name)
			continue
		}
		st, err := disks.ReadDiskState("/sys", dev)
		if err != nil {
			fail(fmt.Errorf("disk_setup %s: %w; nothing changed", dev, err))
			continue
		}
		plan, err := disks.PlanDiskSetup(spec, st)
		if err != nil {
			fail(err)
			continue
		}
		if plan.Script == "" {
			b.Note("disk_setup %s: %s", dev, plan.Note)
			continue
		}
		if spec.Overwrite && !(step{key: "disk_setup." + name, what: "disk_setup " + dev + " (overwrite)"}).beginOrWait(b) {
			continue
		}
		if err := disks.ApplyDiskSetup(ctx, runner, plan); err != nil {
			fail(err)
			continue
		}
		b.Note("disk_setup %s: partitioned (%s)", dev, tableType(spec))
	}

	for i, spec := range cfg.FsSetup {
		dev, part, err := disks.SplitFsDevice(names, spec)
		if err != nil {
			fail(fmt.Errorf("fs_setup: %w", err))
			continue
		}
		spec.Partition = part
		if !live {
			b.Note("would make filesystem %s labelled %q on %s (partition %s), unless one is there", fsName(spec), spec.Label, dev, partName(part))
			continue
		}
		st, err := disks.ReadDiskState("/sys", dev)
		if err != nil {
			fail(fmt.Errorf("fs_setup %s: %w; nothing changed", dev, err))
			continue
		}
		plan, err := disks.PlanFsSetup(spec, st)
		if err != nil {
			fail(err)
			continue
		}
		if len(plan.Cmd) == 0 {
			b.Note("fs_setup %s: %s", plan.Device, plan.Note)
			continue
		}
		once := step{key: fmt.Sprintf("fs_setup.%d", i), what: "fs_setup " + plan.Device + " (overwrite or cmd)"}
		if (spec.Overwrite || len(spec.Cmd) > 0) && !once.beginOrWait(b) {
			continue
		}
		if err := disks.ApplyFsSetup(ctx, runner, plan); err != nil {
			fail(err)
			continue
		}
		b.Note("fs_setup %s: %s filesystem labelled %q made", plan.Device, fsName(spec), spec.Label)
	}
	if len(failed) > 0 {
		return errors.New(strings.Join(failed, "; "))
	}
	if !live {
		return notLive
	}
	return nil
}

func tableType(spec disks.DiskSpec) string {
	if spec.TableType == "" {
		return "mbr"
	}
	return spec.TableType
}

func fsName(spec disks.FsSpec) string {
	if spec.Filesystem == "" {
		return "cmd-made"
	}
	return spec.Filesystem
}

func partName(p string) string {
	if p == "" {
		return "any"
	}
	return p
}
