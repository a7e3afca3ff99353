package builtin

import (
	"context"
	"fmt"
	"strings"

	"github.com/flint-dev/flint/disks"
	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/internal/state"
)

// resizeRootfsHandler is cloud-init's resize_rootfs, every boot, right
// after growpart: the root filesystem grows online into its partition with
// the image's own resize2fs, xfs_growfs or btrfs. No user-data means
// resize_rootfs: true. A root that is no filesystem on a device (tmpfs,
// overlay, an initramfs) is a note, as cloud-init only warns about it; a
// device it cannot identify or a resizer that fails is one line in the
// failed result, and nothing changed.
var resizeRootfsHandler = handlers.Builtin{Name: "resize-rootfs", Frequency: state.PerBoot, Run: runResizeRootfs}

func runResizeRootfs(ctx context.Context, b *handlers.Boot) error {
	cfg, err := diskConfig(ctx, b, "resize_rootfs")
	if err != nil {
		return err
	}
	mode := disks.ResizeOn
	if cfg.ResizeRootfs != nil {
		mode = *cfg.ResizeRootfs
	}
	if mode == disks.ResizeOff {
		b.Note("resize_rootfs disabled")
		return nil
	}
	live, notLive := liveDisks(b, "resize-rootfs")
	if !live {
		b.Note("would resize the root filesystem to its partition (resize_rootfs: %s)", mode)
		return notLive
	}
	env := disks.HostEnv()
	if why := rootNotResizable(env); why != "" {
		// cloud-init warns and goes on here too: a root on tmpfs, overlay
		// or an initramfs has nothing to grow, every boot.
		b.Note("not resizing /: %s; nothing changed", why)
		return nil
	}
	msg, err := disks.ResizeRootFS(ctx, env, &mode, "/")
	if err != nil {
		return err
	}
	b.Note("%s", msg)
	return nil
}

// rootNotResizable says why "/" is not a filesystem resize_rootfs can grow
// ("" when it may be): no mount there, or a type with no resizer (tmpfs,
// overlay, rootfs) whose source is no device.
func rootNotResizable(env disks.Env) string {
	m, err := disks.FindMount(env.MountInfo, "/")
	if err != nil {
		return err.Error()
	}
	if _, ok := disks.ResizeCommand(m.FSType, m.Source, "/"); !ok && !strings.HasPrefix(m.Source, "/dev/") {
		return fmt.Sprintf("it is a %s filesystem, not on a block device", m.FSType)
	}
	return ""
}
