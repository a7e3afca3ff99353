package builtin

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/internal/rootfs"
	"github.com/flint-dev/flint/internal/state"
	"github.com/flint-dev/flint/userdata"
)

// scriptsHandler stores user-data script parts and runs them with the scripts in
// /var/lib/flint/scripts/per-{once,boot,instance}/, in cloud-init's order:
// per-once, per-boot, per-instance, then the instance's own scripts
// (<instance>/scripts/: the text/x-shellscript parts and runcmd), each
// directory in name order. text/x-shellscript-per-{boot,instance,once}
// parts are stored in the directory of their frequency.
//
// Every script runs at most once in its scope (ever, per boot or per
// instance): its record is made durable before the exec, so a script cut
// short by a crash is reported as interrupted and not run again. A script
// that fails or times out is recorded with its exit status and the others
// still run.
//
// Its flint.yaml section (scripts:) applies to everything user-data makes
// flint run: boothooks and bootcmd read it too.
var scriptsHandler = handlers.Builtin{
	Name: "scripts", Frequency: state.PerBoot,
	Section: scriptsSection, Config: func() any { return new(scriptsConfig) },
	Run: runScripts,
}

// scriptGroup is one directory of scripts and where their records live.
type scriptGroup struct {
	label   string
	dir     string
	records string
	perBoot bool
}

func scriptGroups(b *handlers.Boot) ([]scriptGroup, error) {
	inst, err := instancePath(b, "")
	if err != nil {
		return nil, err
	}
	return []scriptGroup{
		{"per-once", scriptsDir + "/per-once", onceRecords, false},
		{"per-boot", scriptsDir + "/per-boot", inst + "sem/scripts/per-boot", true},
		{"per-instance", scriptsDir + "/per-instance", inst + "sem/scripts/per-instance", false},
		{"user-data", inst + "scripts", inst + "sem/scripts/user-data", false},
	}, nil
}

// partScriptDir says where a script part is stored: the instance's
// scripts directory, or the directory of the frequency its type names.
func partScriptDir(p *userdata.Part, instScripts string) (string, bool) {
	switch p.Type() {
	case userdata.TypeShellScript:
		return instScripts, true
	case userdata.TypeShellPerBoot:
		return scriptsDir + "/per-boot", true
	case userdata.TypeShellPerInstance:
		return scriptsDir + "/per-instance", true
	case userdata.TypeShellPerOnce:
		return scriptsDir + "/per-once", true
	}
	return "", false
}

func runScripts(ctx context.Context, b *handlers.Boot) error {
	ud, err := b.UserData(ctx)
	if err != nil {
		return err
	}
	if b.DryRun {
		for _, p := range ud.Parts {
			if dir, ok := partScriptDir(p, "the instance's scripts"); ok {
				b.Note("would store %s in %s and run it", cleanFilename(p.Filename), dir)
			}
		}
		return nil
	}
	timeout, err := scriptTimeout(b)
	if err != nil {
		return err
	}
	groups, err := scriptGroups(b)
	if err != nil {
		return err
	}
	instScripts := groups[3].dir
	cc, err := b.CloudConfig(ctx)
	if err != nil {
		return err
	}
	f := failures{what: "scripts"}
	var waiting unstored
	for _, p := range ud.Parts {
		dir, ok := partScriptDir(p, instScripts)
		if !ok {
			continue
		}
		name := cleanFilename(p.Filename)
		if dir == instScripts && name == runcmdName && len(cc.Runcmd) > 0 {
			// cloud-init writes runcmd after the parts, so it wins.
			b.Note("script part named %s not stored: the runcmd script has that name", name)
			continue
		}
		if err := writeScript(b, dir+"/"+name, dos2unix(p.Content())); err != nil {
			waiting.add(b, "user-data part "+name, err, true)
		}
	}
	planned := 0
	for _, g := range groups {
		names, err := scriptNames(b.Root, g.dir)
		if err != nil {
			f.add(err)
			continue
		}
		for _, name := range names {
			rel := g.dir + "/" + name
			label := g.label + "/" + name
			content, err := b.Root.ReadFile(rel, rootfs.InRoot)
			if err != nil {
				f.total++
				f.add(err)
				continue
			}
			if !b.Live {
				b.Note("%s: stored in %s, not run (not live)", label, b.Root.Path(rel))
				planned++
				continue
			}
			err = runAtMostOnce(ctx, b, scriptRun{
				Label: label, Path: rel, Record: g.records + "/" + name,
				PerBoot: g.perBoot, Shell: needsShell(content),
			}, timeout)
			if err == nil || !waiting.add(b, label, err, false) {
				f.total++
				f.add(err)
			}
		}
	}
	waiting.report(b)
	if err := f.err(); err != nil {
		return err
	}
	if planned > 0 {
		return fmt.Errorf("%d scripts: %w", planned, handlers.ErrNotLive)
	}
	return nil
}

// scriptNames lists the executable regular files of dir in name order,
// as cloud-init's runparts does, leaving out flint's own temporary files
// (an atomic write cut short). A missing directory holds no scripts.
func scriptNames(root *rootfs.Root, dir string) ([]string, error) {
	ents, err := root.ReadDir(dir, rootfs.InRoot)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") && strings.Contains(e.Name(), ".flint-tmp-") {
			continue
		}
		fi, err := root.Stat(dir+"/"+e.Name(), rootfs.InRoot)
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o100 == 0 {
			continue
		}
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names, nil
}
