package builtin

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/flint-dev/flint/cloudconfig"
	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/internal/distro"
	"github.com/flint-dev/flint/internal/rootfs"
	"github.com/flint-dev/flint/internal/state"
	"github.com/flint-dev/flint/userdata"
)

// ntpHandler is cloud-init's ntp, once per instance, in cloud-init's
// config stage before timezone: cloudconfig.NTP picks the client the
// image has (chrony, systemd-timesyncd, ntp, whichever is installed, in
// cloud-init's preference order, or the one ntp_client names) and renders
// its configuration from cloud-init's templates; a configuration already
// at that path is kept aside as <path>.dist, then the service is enabled
// and reloaded when live. A client that is not installed is installed
// with the image's package manager first, as cloud-init does.
var ntpHandler = handlers.Builtin{Name: "ntp", Frequency: state.PerInstance, Run: runNTP}

func runNTP(ctx context.Context, b *handlers.Boot) error {
	ud, err := b.UserData(ctx)
	if err != nil {
		return err
	}
	v, present := ud.Config["ntp"]
	if !present {
		return nil
	}
	osr, _ := readOptional(b, "/etc/os-release")
	dist := "debian"
	if distro.ParseOSRelease(osr).ID == "ubuntu" {
		dist = "ubuntu"
	}
	exists := func(p string) bool {
		_, err := b.Root.Stat(strings.TrimPrefix(p, "/"), rootfs.InRoot)
		return err == nil
	}
	plan, err := cloudconfig.NTP(cloudconfig.NTPInput{
		Config: v, Present: true, Distro: dist, Exists: exists,
		Installed: func(exe string) bool {
			if strings.HasPrefix(exe, "/") {
				return exists(exe)
			}
			for _, dir := range strings.Split(handlers.ProcessPath, ":") {
				if exists(path.Join(dir, exe)) {
					return true
				}
			}
			return false
		},
	})
	if err != nil {
		return fmt.Errorf("%w; time sync left as it is", err)
	}
	if plan == nil {
		b.Note("ntp disabled: left as it is")
		return nil
	}
	b.Note("ntp client %s", plan.Client.Name)
	if plan.RenamedConf != "" && !exists(plan.RenamedConf) {
		if b.DryRun {
			b.Note("would keep %s aside as %s", plan.File.Path, plan.RenamedConf)
		} else if err := b.Root.Rename(strings.TrimPrefix(plan.File.Path, "/"), path.Base(plan.RenamedConf)); err != nil {
			return fmt.Errorf("ntp: keeping %s aside: %w", plan.File.Path, err)
		}
	}
	if err := writePlanFiles(b, []cloudconfig.File{plan.File}); err != nil {
		return fmt.Errorf("ntp: %w", err)
	}
	if plan.Install {
		// As cloud-init's ntp module does: the client is installed.
		var pkgs []userdata.Package
		for _, n := range plan.Client.Packages {
			pkgs = append(pkgs, userdata.Package{Name: n})
		}
		if err := installPackages(ctx, b, "ntp", true, false, pkgs, defaultPackagesTimeout); err != nil {
			return fmt.Errorf("%w; the %s configuration is written", err, plan.Client.Name)
		}
	}
	return runPlanCommands(ctx, b, [][]string{
		{"systemctl", "enable", plan.Service + ".service"},
		{"systemctl", "reload-or-restart", plan.Service + ".service"},
	})
}
