package builtin

import (
	"bytes"
	"context"
	"fmt"

	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/internal/state"
	"github.com/flint-dev/flint/userdata"
)

// boothooksHandler runs #cloud-boothook parts, the earliest user-data hook. Like
// cloud-init it runs them on every boot with INSTANCE_ID in the
// environment (a boothook decides itself whether to act once per
// instance), stored 0700 under <instance>/boothooks/. A boothook runs at
// most once per boot: one interrupted by a crash is reported, not re-run.
var boothooksHandler = handlers.Builtin{Name: "boothooks", Frequency: state.PerBoot, Run: runBoothooks}

var boothookPrefix = []byte("#cloud-boothook")

// boothookScript is what cloud-init stores for a boothook part: CRLF
// undone, the "#cloud-boothook" line removed, leading white space trimmed.
func boothookScript(payload []byte) []byte {
	s := bytes.ReplaceAll(payload, []byte("\r\n"), []byte("\n"))
	s = bytes.TrimLeft(s, " \t\r\n")
	s = bytes.TrimPrefix(s, boothookPrefix)
	return bytes.TrimLeft(s, " \t\r\n")
}

func runBoothooks(ctx context.Context, b *handlers.Boot) error {
	ud, err := b.UserData(ctx)
	if err != nil {
		return err
	}
	var hooks []*userdata.Part
	for _, p := range ud.Parts {
		if p.Type() == userdata.TypeBoothook {
			hooks = append(hooks, p)
		}
	}
	if len(hooks) == 0 {
		return nil
	}
	if b.DryRun {
		for _, p := range hooks {
			b.Note("would run boothook %s", cleanFilename(p.Filename))
		}
		return nil
	}
	timeout, err := scriptTimeout(b)
	if err != nil {
		return err
	}
	dir, err := instancePath(b, "boothooks")
	if err != nil {
		return err
	}
	sem, _ := instancePath(b, "sem/scripts/boothooks")
	f := failures{what: "boothooks"}
	var waiting unstored
	seen := map[string]int{}
	planned := 0
	for _, p := range hooks {
		// cloud-init writes and runs each part in turn, so two parts with
		// the same name both run: keep both.
		name := cleanFilename(p.Filename)
		if seen[name]++; seen[name] > 1 {
			name = fmt.Sprintf("%s.%d", name, seen[name])
		}
		content := boothookScript(p.Content())
		rel := dir + "/" + name
		if err := writeScript(b, rel, content); err != nil {
			waiting.add(b, "boothook "+name, err, true)
			continue
		}
		if !b.Live {
			b.Note("boothook %s: written to %s, not run (not live)", name, b.Root.Path(rel))
			planned++
			continue
		}
		err := runAtMostOnce(ctx, b, scriptRun{
			Label: "boothook " + name, Path: rel, Record: sem + "/" + name,
			PerBoot: true, Shell: needsShell(content),
		}, timeout)
		if err == nil || !waiting.add(b, "boothook "+name, err, false) {
			f.total++
			f.add(err)
		}
	}
	waiting.report(b)
	if err := f.err(); err != nil {
		return err
	}
	if planned > 0 {
		return fmt.Errorf("%d boothooks: %w", planned, handlers.ErrNotLive)
	}
	return nil
}
