package builtin

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/flint-dev/flint/cloudconfig"
	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/internal/rootfs"
	"github.com/flint-dev/flint/internal/state"
)

// caCertsHandler is cloud-init's ca_certs, once per instance, after the
// host is named and before the users (where cloud-init's init stage has
// it): cloudconfig.CACerts decides it; remove_defaults empties the
// certificate directories and tells debconf not to trust new defaults,
// the trusted certificates go to cloud-init-ca-certs.crt listed in
// /etc/ca-certificates.conf, then update-ca-certificates rebuilds the
// store. Emptying the store and the programs are live changes; the files
// are written below any root.
var caCertsHandler = handlers.Builtin{Name: "ca-certs", Frequency: state.PerInstance, Run: runCACerts}

func runCACerts(ctx context.Context, b *handlers.Boot) error {
	ud, err := b.UserData(ctx)
	if err != nil {
		return err
	}
	in := cloudconfig.CACertsInput{}
	in.Config, in.Present = ud.Config["ca_certs"]
	in.Deprecated, in.DeprecatedPresent = ud.Config["ca-certs"]
	if !in.Present && !in.DeprecatedPresent {
		return nil
	}
	if in.CurrentConfig, err = readOptional(b, cloudconfig.CACertConfig); err != nil {
		return err
	}
	plan, err := cloudconfig.CACerts(in)
	if err != nil {
		return fmt.Errorf("%w; certificates left as they are", err)
	}
	for _, n := range plan.Notes {
		b.Note("%s", n)
	}
	if len(plan.EmptyDirs) > 0 || plan.DebconfSelections != "" {
		if b.DryRun || !b.Live {
			b.Note("would empty %s and stop trusting new default certificates", strings.Join(plan.EmptyDirs, " and "))
			if !b.DryRun {
				// The trusted certificates are not written either: a
				// later live boot does both in cloud-init's order.
				return fmt.Errorf("remove_defaults: %w", handlers.ErrNotLive)
			}
		} else {
			for _, d := range plan.EmptyDirs {
				if err := emptyDir(b, d); err != nil {
					return fmt.Errorf("ca_certs remove_defaults: %w", err)
				}
				b.Note("emptied %s", d)
			}
			if err := b.RunProcess(ctx, handlers.Process{Name: "debconf-set-selections", Argv: []string{"debconf-set-selections"},
				Stdin: []byte(plan.DebconfSelections + "\n"), Timeout: planCommandTimeout}); err != nil {
				return fmt.Errorf("ca_certs remove_defaults: %w", err)
			}
		}
	}
	if err := writePlanFiles(b, plan.Files); err != nil {
		return fmt.Errorf("ca_certs: %w", err)
	}
	return runPlanCommands(ctx, b, plan.Commands)
}

// emptyDir removes what a directory below the root holds, keeping the
// directory (cloud-init's delete_dir_contents); a missing one is empty.
// Links in it are removed, never followed.
func emptyDir(b *handlers.Boot, dir string) error {
	rel := strings.Trim(dir, "/")
	entries, err := b.Root.ReadDir(rel, rootfs.InRoot)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		child := rel + "/" + e.Name()
		if e.IsDir() {
			if err := emptyDir(b, child); err != nil {
				return err
			}
		}
		if err := b.Root.Remove(child, rootfs.InRoot); err != nil {
			return err
		}
	}
	return nil
}
