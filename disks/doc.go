// Package disks owns what cloud-init's growpart, resize_rootfs, mounts,
// swap, disk_setup and fs_setup modules do on an EC2-like instance: growing
// the root partition and its filesystem online, the fstab lines for the
// instance store and the user's mounts, a swap file, and partitions and
// filesystems on attached volumes.
//
// It is split the way it is tested. The decisions are pure: PlanGrowPart
// reads a partition table (GPT or MBR) from an io.ReaderAt and says which
// sectors the partition may take; PlanMounts turns cloud-config, the
// block-device-mapping metadata and the devices present into fstab content;
// PlanSwap, PlanDiskSetup and PlanFsSetup say what would be created and why
// not. The edges are thin: ApplyGrowPart writes the table and tells the
// kernel with BLKPG_RESIZE_PARTITION, ResizeRootFS grows a mounted ext
// filesystem with the kernel's online resize (the ioctl resize2fs makes)
// and calls the image's own resize2fs, xfs_growfs or btrfs as cloud-init
// does where that cannot be used, and the rest run
// mkswap, sfdisk and mkfs through a Runner. Every refusal is an error of one
// line that names the device and says nothing was changed.
//
// Reading metadata (block-device-mapping) belongs to package imds, decoding
// the user-data document to package userdata, and when each step runs
// (growpart and resize_rootfs every boot, the rest once per instance) to the
// handler that calls this package.
package disks
