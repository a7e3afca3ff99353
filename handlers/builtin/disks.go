package builtin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/flint-dev/flint/disks"
	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/imds"
)

// What the disk handlers (growpart, resize-rootfs, disk-setup, mounts)
// share: their cloud-config keys, the block-device-mapping, and the rule
// that block devices are changed only on the running system.

// diskConfig decodes the named keys of the merged cloud-config with
// package disks' cloud-init semantics. Only the handler's own keys are
// decoded, so a bad `swap` fails mounts and nothing else. Keys absent stay
// nil: cloud-init's defaults (growpart and resize_rootfs run with no
// user-data at all).
func diskConfig(ctx context.Context, b *handlers.Boot, keys ...string) (disks.Config, error) {
	ud, err := b.UserData(ctx)
	if err != nil {
		return disks.Config{}, err
	}
	doc := map[string]any{}
	for _, k := range keys {
		if v, ok := ud.Config[k]; ok {
			doc[k] = v
		}
	}
	if len(doc) == 0 {
		return disks.Config{}, nil
	}
	y, err := yaml.Marshal(doc)
	if err != nil {
		return disks.Config{}, fmt.Errorf("cloud-config %s: %w", strings.Join(keys, ", "), err)
	}
	return disks.DecodeConfig(y)
}

// liveDisks says whether the handler may change block devices: only on
// the running system (root "/") and not in a dry run. For another root the
// disks are not that root's (an image being prepared, a test's directory),
// even with --live: the work is planned, reported and left for the root's
// own boot. The returned error is what the handler returns when it may
// not (nil in a dry run, ErrNotLive otherwise).
// disksHere says whether the root's disks are this system's: the running
// system's root only.
var disksHere = func(b *handlers.Boot) bool { return b.Root.IsHost() }

func liveDisks(b *handlers.Boot, what string) (bool, error) {
	switch {
	case b.DryRun:
		return false, nil
	case !disksHere(b):
		return false, fmt.Errorf("%s: %s is not the running system's root, its disks are changed on its own boot: %w", what, b.Root.Dir(), handlers.ErrNotLive)
	}
	return true, nil
}

// blockDeviceMapping reads meta-data/block-device-mapping/ as name →
// device (ami → /dev/xvda, ephemeral0 → sdb). An instance without one
// (404) has an empty mapping.
func blockDeviceMapping(ctx context.Context, b *handlers.Boot) (map[string]string, error) {
	const dir = "meta-data/block-device-mapping"
	names, err := b.Metadata.List(ctx, dir+"/")
	if errors.Is(err, imds.ErrNotFound) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", dir, err)
	}
	bdm := map[string]string{}
	for _, n := range names {
		if strings.HasSuffix(n, "/") {
			continue
		}
		v, err := b.Metadata.Get(ctx, dir+"/"+n)
		if errors.Is(err, imds.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s/%s: %w", dir, n, err)
		}
		bdm[n] = strings.TrimSpace(string(v))
	}
	return bdm, nil
}

// underSystemd reports whether systemd runs the host, as cloud-init's
// uses_systemd does: it selects fstab's default options and the
// daemon-reload after writing fstab.
func underSystemd() bool {
	fi, err := os.Stat("/run/systemd/system")
	return err == nil && fi.IsDir()
}
