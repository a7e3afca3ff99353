package builtin

import (
	"context"

	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/internal/state"
)

// runcmdHandler turns cloud-config `runcmd` into the shell script
// <instance>/scripts/runcmd (0700), once per instance, as cloud-init's
// runcmd module does. It runs nothing itself: the scripts handler runs it
// with the other user scripts, in name order, at most once.
var runcmdHandler = handlers.Builtin{Name: "runcmd", Frequency: state.PerInstance, Run: runRuncmd}

// runcmdName is the script's name in the instance's scripts directory.
const runcmdName = "runcmd"

func runRuncmd(ctx context.Context, b *handlers.Boot) error {
	cc, err := b.CloudConfig(ctx)
	if err != nil {
		return err
	}
	if len(cc.Runcmd) == 0 {
		return nil
	}
	if b.DryRun {
		b.Note("would write %d runcmd commands for the scripts handler", len(cc.Runcmd))
		return nil
	}
	rel, err := instancePath(b, "scripts/"+runcmdName)
	if err != nil {
		return err
	}
	if err := writeScript(b, rel, shellify(cc.Runcmd)); err != nil {
		// Not marked done: a boot that can store it does, and the scripts
		// handler then runs it once.
		b.Unrecorded(err)
		b.Partial("runcmd not stored (%s); a boot that can write it stores it and runs it", handlers.SeeStateWarning)
		return nil
	}
	b.Note("%d runcmd commands written to %s (run by the scripts handler)", len(cc.Runcmd), b.Root.Path(rel))
	return nil
}
