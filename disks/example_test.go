package disks_test

import (
	"context"
	"fmt"
	"os"

	"github.com/flint-dev/flint/disks"
)

// A growpart and resize_rootfs handler, every boot: cfg comes from the
// merged cloud-config (nil keys mean cloud-init's defaults).
func ExampleGrowPart() {
	ctx := context.Background()
	cfg, _ := disks.DecodeConfig([]byte("#cloud-config\n"))
	env := disks.HostEnv()
	for _, r := range disks.GrowPart(ctx, env, cfg.Growpart) {
		fmt.Println(r) // "growpart /: changed: ..." or a skip with its reason
	}
	if msg, err := disks.ResizeRootFS(ctx, env, cfg.ResizeRootfs, "/"); err != nil {
		fmt.Println(err)
	} else {
		fmt.Println(msg)
	}
}

// A mounts handler, once per instance: swap first, then fstab.
func ExamplePlanMounts() {
	ctx := context.Background()
	cfg, _ := disks.DecodeConfig([]byte("#cloud-config\nmounts:\n - [ xvdh, /data ]\n"))
	bdm := map[string]string{"ami": "sda1", "ephemeral0": "sdb", "root": "/dev/sda1"} // meta-data block-device-mapping/*
	swapFile, note, err := disks.SetupSwap(ctx, disks.ExecRunner{}, "/", cfg.Swap)
	fmt.Println(note, err)
	fstab, _ := os.ReadFile("/etc/fstab")
	plan := disks.PlanMounts(disks.MountsInput{
		Config: cfg, BlockDeviceMapping: bdm, InstanceStores: disks.FindInstanceStores("/sys"),
		Fstab: string(fstab), Devices: disks.HostDevices{}, SwapFile: swapFile,
		Systemd: true, Unit: "flint.service",
	})
	for _, n := range plan.Notes {
		fmt.Println(n)
	}
	if err := disks.ApplyMounts(ctx, disks.ExecRunner{}, "/", plan, true); err != nil {
		fmt.Println(err)
	}
}

// A disk_setup and fs_setup handler, once per instance.
func ExamplePlanFsSetup() {
	ctx := context.Background()
	cfg, _ := disks.DecodeConfig([]byte("#cloud-config\nfs_setup:\n - {label: data, filesystem: ext4, device: ephemeral0, partition: auto}\n"))
	names := disks.DeviceNames{BlockDeviceMapping: map[string]string{"ephemeral0": "sdb"},
		InstanceStores: disks.FindInstanceStores("/sys"), Aliases: cfg.DeviceAliases, Devices: disks.HostDevices{}}
	for name, spec := range cfg.DiskSetup {
		dev, err := names.Resolve(name)
		if err != nil {
			fmt.Println("disk_setup:", err)
			continue
		}
		st, err := disks.ReadDiskState("/sys", dev)
		if err != nil {
			fmt.Println(err)
			continue
		}
		plan, err := disks.PlanDiskSetup(spec, st)
		if err == nil {
			err = disks.ApplyDiskSetup(ctx, disks.ExecRunner{}, plan)
		}
		if err != nil {
			fmt.Println(err)
		}
	}
	for _, spec := range cfg.FsSetup {
		dev, part, err := disks.SplitFsDevice(names, spec)
		if err != nil {
			fmt.Println("fs_setup:", err)
			continue
		}
		spec.Partition = part
		st, err := disks.ReadDiskState("/sys", dev)
		if err != nil {
			fmt.Println(err)
			continue
		}
		plan, err := disks.PlanFsSetup(spec, st)
		if err == nil {
			err = disks.ApplyFsSetup(ctx, disks.ExecRunner{}, plan)
		}
		if err != nil {
			fmt.Println(err)
		}
	}
}
