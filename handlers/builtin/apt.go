package builtin

import (
	"context"
	"fmt"
	"runtime"
	"strings"

	"github.com/flint-dev/flint/cloudconfig"
	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/internal/rootfs"
	"github.com/flint-dev/flint/internal/state"
	"github.com/flint-dev/flint/userdata"
)

// aptHandler is cloud-init's apt_configure, once per instance, in the
// config stage after ssh_pwauth and before ntp: cloudconfig.Apt decides
// sources.list (from cloud-init's template and the primary and security
// mirrors), the proxy and conf files, and each source with its key. Keys
// given by keyid are fetched from their keyserver with the user-data
// fetcher before anything is written; a key that cannot be fetched or
// read fails the handler with one line naming the source, and nothing of
// the apt configuration is written. Unlike cloud-init on images whose
// cloud.cfg does not preserve sources.list, nothing is done without an
// apt key: the image's sources stay as they are.
var aptHandler = handlers.Builtin{Name: "apt", Frequency: state.PerInstance, Run: runApt}

// aptDefaultMirrors are cloud-init's package_mirrors for Debian and Ubuntu.
var aptDefaultMirrors = map[string][2]string{
	"debian": {"http://deb.debian.org/debian", "http://deb.debian.org/debian-security"},
	"ubuntu": {"http://archive.ubuntu.com/ubuntu", "http://security.ubuntu.com/ubuntu"},
}

func runApt(ctx context.Context, b *handlers.Boot) error {
	ud, err := b.UserData(ctx)
	if err != nil {
		return err
	}
	v, present := ud.Config["apt"]
	if !present {
		return nil
	}
	cfg, ok := v.(map[string]any)
	if !ok && v != nil {
		return fmt.Errorf("apt: is %T, not a mapping; apt configuration left as it is", v)
	}
	osr, err := readOptional(b, "/etc/os-release")
	if err != nil {
		return err
	}
	id, release := osReleaseVar(osr, "ID"), osReleaseVar(osr, "VERSION_CODENAME")
	mirrors, ok := aptDefaultMirrors[id]
	if !ok {
		return fmt.Errorf("apt: the image is %q, not Debian or Ubuntu; apt configuration left as it is", id)
	}
	in := cloudconfig.AptInput{Config: cfg, Release: release, Arch: dpkgArch(), DefaultPrimary: mirrors[0], DefaultSecurity: mirrors[1]}
	plan, err := cloudconfig.Apt(in)
	if err != nil {
		return fmt.Errorf("%w; apt configuration left as it is", err)
	}
	if len(plan.KeyFetches) > 0 {
		in.KeyFetched = map[string]string{}
		for _, kf := range plan.KeyFetches {
			if b.DryRun {
				b.Note("would fetch key %s from %s", kf.KeyID, kf.Keyserver)
				in.KeyFetched[kf.KeyID] = ""
				continue
			}
			key, err := aptFetcher(b).Fetch(ctx, kf.URL)
			if err != nil {
				return fmt.Errorf("apt: key %s from %s could not be fetched (%v); apt configuration left as it is", kf.KeyID, kf.Keyserver, err)
			}
			in.KeyFetched[kf.KeyID] = string(key)
		}
		if b.DryRun {
			return nil
		}
		if plan, err = cloudconfig.Apt(in); err != nil {
			return fmt.Errorf("%w; apt configuration left as it is", err)
		}
	}
	if err := writePlanFiles(b, plan.Files); err != nil {
		return fmt.Errorf("apt: %w", err)
	}
	for _, p := range plan.Remove {
		if b.DryRun {
			b.Note("would remove %s", p)
			continue
		}
		if err := b.Root.Remove(strings.TrimPrefix(p, "/"), rootfs.InRoot); err != nil {
			return fmt.Errorf("apt: %w", err)
		}
	}
	if err := writePlanFiles(b, plan.Keys); err != nil {
		return fmt.Errorf("apt: %w", err)
	}
	if err := writeAptSources(b, plan.Sources); err != nil {
		return fmt.Errorf("apt: %w", err)
	}
	return runPlanCommands(ctx, b, plan.Commands)
}

// writeAptSources appends each source line to its file (or replaces the
// file with it), one atomic write per file.
func writeAptSources(b *handlers.Boot, sources []cloudconfig.AptSourceFile) error {
	files := map[string][]byte{}
	var order []string
	for _, s := range sources {
		cur, seen := files[s.Path]
		if !seen {
			order = append(order, s.Path)
			var err error
			if cur, err = readOptional(b, s.Path); err != nil {
				return err
			}
		}
		if s.Replace {
			cur = nil
		}
		files[s.Path] = append(cur, s.Line...)
	}
	out := make([]cloudconfig.File, 0, len(order))
	for _, p := range order {
		out = append(out, cloudconfig.File{Path: p, Mode: 0o644, Content: files[p]})
	}
	return writePlanFiles(b, out)
}

// aptFetcher fetches keys as user-data's includes are fetched.
func aptFetcher(b *handlers.Boot) userdata.Fetcher {
	if f := b.UserDataOptions.Fetcher; f != nil {
		return f
	}
	return &userdata.HTTPFetcher{}
}

// osReleaseVar is one variable of os-release(5), unquoted.
func osReleaseVar(osr []byte, name string) string {
	v := ""
	for _, l := range strings.Split(string(osr), "\n") {
		if k, val, ok := strings.Cut(strings.TrimSpace(l), "="); ok && k == name {
			v = strings.Trim(val, `"'`)
		}
	}
	return v
}

// dpkgArch is dpkg's name for the architecture flint runs on, which is
// the image's.
func dpkgArch() string {
	switch runtime.GOARCH {
	case "386":
		return "i386"
	case "arm":
		return "armhf"
	}
	return runtime.GOARCH
}
