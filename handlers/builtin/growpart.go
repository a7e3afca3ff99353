package builtin

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/flint-dev/flint/disks"
	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/internal/rootfs"
	"github.com/flint-dev/flint/internal/state"
)

// growpartHandler is cloud-init's growpart, every boot: the partition
// holding each of growpart.devices (default the root filesystem) grows
// into the free space after it. With no user-data at all it grows "/", as
// cloud-init does on every EC2 image, so an image launched on a larger
// volume uses all of it. It runs where cloud-init's init stage does: after
// bootcmd and write_files (which may write /etc/growroot-disabled), before
// the host is named and users are made. A device it cannot identify is
// skipped with a note when it is the default "/" (a root on a whole disk
// or in memory has nothing to grow, every boot) and fails the handler
// when user-data named it in growpart.devices.
var growpartHandler = handlers.Builtin{Name: "growpart", Frequency: state.PerBoot, Run: runGrowpart}

func runGrowpart(ctx context.Context, b *handlers.Boot) error {
	cfg, err := diskConfig(ctx, b, "growpart")
	if err != nil {
		return err
	}
	g := disks.DefaultGrowpart()
	if cfg.Growpart != nil {
		g = *cfg.Growpart
	}
	live, notLive := liveDisks(b, "growpart")
	if !live {
		switch {
		case g.Mode == "off":
			b.Note("growpart disabled: mode=off")
			return nil
		case g.Mode != "auto" && g.Mode != "growpart":
			return fmt.Errorf("growpart mode %q is not supported (want auto, growpart or off); nothing changed", g.Mode)
		}
		if !g.IgnoreGrowrootDisabled {
			if _, err := b.Root.Stat("etc/growroot-disabled", rootfs.InRoot); err == nil {
				b.Note("growpart disabled: /etc/growroot-disabled exists")
				return nil
			}
		}
		b.Note("would grow the partitions holding %s (mode %s)", strings.Join(g.Devices, ", "), g.Mode)
		return notLive
	}
	named, err := growpartDevicesNamed(ctx, b)
	if err != nil {
		return err
	}
	results := disks.GrowPart(ctx, disks.HostEnv(), &g)
	for _, r := range results {
		b.Note("%s", r)
	}
	if failed := growpartFailures(results, named); len(failed) > 0 {
		return errors.New(strings.Join(failed, "; "))
	}
	return nil
}

// growpartFailures are the results that fail the handler: a failed grow,
// and a device skipped as unidentifiable when user-data named the devices
// (named). A skip of the whole module ("*": mode off, growroot-disabled)
// is the user's or the image's choice.
func growpartFailures(results []disks.GrowResult, named bool) []string {
	var out []string
	for _, r := range results {
		if r.Action == "failed" || r.Action == "skipped" && named && r.Entry != "*" {
			out = append(out, r.String())
		}
	}
	return out
}

// growpartDevicesNamed reports whether user-data lists growpart.devices
// itself rather than leaving cloud-init's default.
func growpartDevicesNamed(ctx context.Context, b *handlers.Boot) (bool, error) {
	ud, err := b.UserData(ctx)
	if err != nil {
		return false, err
	}
	m, _ := ud.Config["growpart"].(map[string]any)
	_, ok := m["devices"]
	return ok, nil
}
