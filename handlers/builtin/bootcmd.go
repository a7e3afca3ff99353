package builtin

import (
	"context"
	"fmt"

	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/internal/state"
)

// bootcmdHandler runs cloud-config `bootcmd` early on every boot, as cloud-init
// does: the commands become one shell script (strings as written, lists as
// quoted words) run by /bin/sh with INSTANCE_ID set.
var bootcmdHandler = handlers.Builtin{Name: "bootcmd", Frequency: state.PerBoot, Run: runBootcmd}

func runBootcmd(ctx context.Context, b *handlers.Boot) error {
	cc, err := b.CloudConfig(ctx)
	if err != nil {
		return err
	}
	if len(cc.Bootcmd) == 0 {
		return nil
	}
	if b.DryRun {
		b.Note("would run %d bootcmd commands", len(cc.Bootcmd))
		return nil
	}
	timeout, err := scriptTimeout(b)
	if err != nil {
		return err
	}
	rel, err := instancePath(b, "bootcmd")
	if err != nil {
		return err
	}
	if err := writeScript(b, rel, shellify(cc.Bootcmd)); err != nil {
		b.Unrecorded(err)
		b.Partial("bootcmd not run: its script cannot be stored (%s)", handlers.SeeStateWarning)
		return nil
	}
	if !b.Live {
		b.Note("%d bootcmd commands written to %s, not run", len(cc.Bootcmd), b.Root.Path(rel))
		return fmt.Errorf("bootcmd: %w", handlers.ErrNotLive)
	}
	err = b.RunProcess(ctx, handlers.Process{
		Name:    "bootcmd",
		Argv:    []string{"/bin/sh", b.Root.Path(rel)},
		Env:     []string{"INSTANCE_ID=" + b.InstanceID},
		Timeout: timeout,
	})
	if err != nil {
		return err
	}
	b.Note("%d bootcmd commands: ok (exit status 0)", len(cc.Bootcmd))
	return nil
}
