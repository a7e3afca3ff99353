package builtin

import (
	"context"
	"fmt"
	"strings"

	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/internal/state"
	"github.com/flint-dev/flint/modules"
)

// kernelModulesHandler makes sure /lib/modules/<release> exists for the running
// kernel: a tree the image ships, or one installed earlier, is left alone;
// a missing one is fetched from the configured bundle, verified, unpacked
// and depmod'ed, and the configured modules are loaded. It runs every boot
// because a kernel can change between boots; a present tree costs a stat.
var kernelModulesHandler = handlers.Builtin{
	Name: "kernel-modules", Frequency: state.PerBoot,
	Section: "modules", Config: func() any { return new(modules.Config) },
	// A bundle's download and unpacking overlap the users and keys.
	Beside: true,
	Run:    runKernelModules,
}

// logLines adapts the handler's logger to the fetcher's progress writer:
// one log record per line (the fetcher writes a line per 10% off a TTY).
type logLines struct{ b *handlers.Boot }

func (l logLines) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimSpace(string(p)), "\n") {
		if line != "" {
			l.b.Log.Info(line)
		}
	}
	return len(p), nil
}

func runKernelModules(ctx context.Context, b *handlers.Boot) error {
	var cfg modules.Config
	if err := b.Settings(&cfg); err != nil {
		return err
	}
	if b.DryRun {
		k, err := modules.Detect(ctx, nil) // the release is enough to tell
		if err != nil {
			return err
		}
		st, err := modules.ReadStatus(b.Root.Dir(), k.Release)
		if err != nil {
			return err
		}
		if st.Indexed {
			b.Note("lib/modules/%s is complete: nothing to do", k.Release)
		} else {
			b.Note("lib/modules/%s is missing or incomplete: would fetch its bundle", k.Release)
		}
		return nil
	}
	// Loading changes the running kernel: only on a live run.
	load := b.Live && len(cfg.Load) > 0
	out, err := modules.Ensure(ctx, modules.Options{
		Root:        b.Root.Dir(),
		Config:      cfg,
		Metadata:    b.Metadata,
		Credentials: modules.RoleCredentials(b.Metadata),
		Load:        load,
		Progress:    logLines{b},
	})
	switch {
	case out.Action == modules.ActionNotConfigured:
		// No tree and nothing configured to fetch: the image decided to do
		// without; say so, do not fail every boot over it.
		b.Note("lib/modules/%s is missing and no bundle is configured (modules: url or manifest)", out.Kernel.Release)
		b.Log.Warn("no module tree for the running kernel", "release", out.Kernel.Release)
		return nil
	case err != nil:
		return err
	case out.Action == modules.ActionInstalled:
		b.Note("installed lib/modules/%s from %s (sha256 %s)", out.Kernel.Release, out.Record.URL, short(out.Record.SHA256))
		if out.Record.IndexNote != "" {
			b.Note("%s; depmod rebuilt it", out.Record.IndexNote)
		}
	default:
		b.Note("lib/modules/%s is complete", out.Kernel.Release)
	}
	if len(out.Loaded) > 0 {
		b.Note("loaded %s", strings.Join(out.Loaded, ", "))
	}
	if len(cfg.Load) > 0 && !load {
		b.Note("would load %s", strings.Join(cfg.Load, ", "))
		return fmt.Errorf("loading %d modules: %w", len(cfg.Load), handlers.ErrNotLive)
	}
	return nil
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}
