package builtin

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/flint-dev/flint/cloudconfig"
	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/internal/rootfs"
)

// The thin effects of cloudconfig's plans: files written atomically
// below the root, programs run in it (chrooted for --root --live).

// writePlanFiles writes a plan's files in order (a dry run notes them).
func writePlanFiles(b *handlers.Boot, files []cloudconfig.File) error {
	for _, f := range files {
		if b.DryRun {
			b.Note("would write %s", f.Path)
			continue
		}
		if err := b.Root.WriteFile(strings.TrimPrefix(f.Path, "/"), f.Content, rootfs.WriteOptions{Perm: f.Mode, MkdirPerm: 0o755}); err != nil {
			return err
		}
		b.Note("wrote %s", f.Path)
	}
	return nil
}

// runPlanCommands runs a plan's programs in order, stopping at the first
// that fails. Without --live on a root other than "/" they are planned:
// the handler is not marked done, and the boot of the image runs them.
func runPlanCommands(ctx context.Context, b *handlers.Boot, cmds [][]string) error {
	if len(cmds) == 0 {
		return nil
	}
	if b.DryRun || !b.Live {
		for _, c := range cmds {
			b.Note("would run %s", strings.Join(c, " "))
		}
		if b.DryRun {
			return nil
		}
		return fmt.Errorf("%s: %w", strings.Join(cmds[0], " "), handlers.ErrNotLive)
	}
	for _, c := range cmds {
		name := strings.Join(c, " ")
		if err := b.RunProcess(ctx, handlers.Process{Name: name, Argv: c, Timeout: planCommandTimeout}); err != nil {
			return err
		}
		b.Note("ran %s", name)
	}
	return nil
}

// planCommandTimeout bounds one program of a plan (locale-gen building
// a locale, update-ca-certificates rehashing the store).
const planCommandTimeout = 5 * time.Minute
