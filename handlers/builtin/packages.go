package builtin

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/internal/config"
	"github.com/flint-dev/flint/internal/rootfs"
	"github.com/flint-dev/flint/internal/state"
	"github.com/flint-dev/flint/userdata"
)

// packagesHandler applies cloud-config `package_update`, `package_upgrade` and
// `packages` once per instance with the image's own package manager
// (apt-get, dnf or yum, looked up in the root), non-interactively. Like
// cloud-init, installing packages refreshes the package lists first.
// Running a package manager is a live change: with a root other than "/"
// it needs --live, and then runs chrooted into the root.
var packagesHandler = handlers.Builtin{
	Name: "packages", Frequency: state.PerInstance,
	Section: "packages", Config: func() any { return new(packagesConfig) },
	Run: runPackages,
}

// packagesConfig is the `packages:` section of flint.yaml.
type packagesConfig struct {
	// Timeout bounds each package manager command.
	Timeout config.Duration `yaml:"timeout"`
}

const defaultPackagesTimeout = 30 * time.Minute

// packageManager is a package manager found in a root.
type packageManager struct {
	// Name is "apt-get", "dnf" or "yum".
	Name string
	// Path is the tool's path inside the root ("/usr/bin/apt-get").
	Path string
}

// packageManagers are probed in this order: dnf before yum, since on
// systems with both yum is a compatibility shim.
var packageManagers = []packageManager{
	{"apt-get", "/usr/bin/apt-get"},
	{"dnf", "/usr/bin/dnf"},
	{"yum", "/usr/bin/yum"},
}

// findPackageManager returns the root's package manager.
func findPackageManager(root *rootfs.Root) (packageManager, error) {
	for _, pm := range packageManagers {
		if fi, err := root.Stat(pm.Path, rootfs.InRoot); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return pm, nil
		}
	}
	return packageManager{}, fmt.Errorf("no package manager in %s (looked for /usr/bin/apt-get, dnf and yum)", root.Dir())
}

// packageCommand is one package manager invocation.
type packageCommand struct {
	// Step is "update", "upgrade" or "install".
	Step string
	// Argv runs inside the root.
	Argv []string
}

// packageCommands is the decision: the commands that apply
// update/upgrade/install with pm, in order, and the environment they need.
func packageCommands(pm packageManager, update, upgrade bool, pkgs []userdata.Package) (cmds []packageCommand, env []string) {
	if len(pkgs) > 0 {
		update = true
	}
	var names []string
	for _, p := range pkgs {
		switch {
		case p.Version == "":
			names = append(names, p.Name)
		case pm.Name == "apt-get":
			names = append(names, p.Name+"="+p.Version)
		default:
			names = append(names, p.Name+"-"+p.Version)
		}
	}
	with := func(base []string, args ...string) []string {
		return append(append([]string{}, base...), args...)
	}
	var base []string
	var updateArgv []string
	upgradeVerb := "upgrade"
	if pm.Name == "apt-get" {
		// cloud-init's flags: keep locally changed config files, never ask.
		base = []string{pm.Path, "--option=Dpkg::Options::=--force-confold", "--option=Dpkg::options::=--force-unsafe-io", "--assume-yes", "--quiet"}
		env = []string{"DEBIAN_FRONTEND=noninteractive", "APT_LISTCHANGES_FRONTEND=none"}
		updateArgv = []string{pm.Path, "--quiet", "update"}
		upgradeVerb = "dist-upgrade"
	} else {
		base = []string{pm.Path, "-y", "--quiet"}
		updateArgv = with(base, "makecache")
	}
	if update {
		cmds = append(cmds, packageCommand{"update", updateArgv})
	}
	if upgrade {
		cmds = append(cmds, packageCommand{"upgrade", with(base, upgradeVerb)})
	}
	if len(names) > 0 {
		cmds = append(cmds, packageCommand{"install", with(with(base, "install"), names...)})
	}
	return cmds, env
}

func runPackages(ctx context.Context, b *handlers.Boot) error {
	cc, err := b.CloudConfig(ctx)
	if err != nil {
		return err
	}
	if !cc.PackageUpdate && !cc.PackageUpgrade && len(cc.Packages) == 0 {
		return nil
	}
	var cfg packagesConfig
	if err := b.Settings(&cfg); err != nil {
		return err
	}
	timeout := time.Duration(cfg.Timeout)
	if timeout <= 0 {
		timeout = defaultPackagesTimeout
	}
	if err := installPackages(ctx, b, "packages", cc.PackageUpdate, cc.PackageUpgrade, cc.Packages, timeout); err != nil {
		return err
	}
	if len(cc.Packages) > 0 {
		var names []string
		for _, p := range cc.Packages {
			names = append(names, p.Name)
		}
		b.Note("installed %s", strings.Join(names, ", "))
	}
	return nil
}

// installPackages runs the root's package manager for update, upgrade and
// pkgs (what `packages` asks, and the clients other modules install as
// cloud-init's distro.install_packages does), chrooted in a root other
// than "/"; without --live, and in a dry run, it notes the commands it
// would run. who names the asking module in messages.
func installPackages(ctx context.Context, b *handlers.Boot, who string, update, upgrade bool, pkgs []userdata.Package, timeout time.Duration) error {
	pm, err := findPackageManager(b.Root)
	if err != nil {
		return fmt.Errorf("%s: %w", who, err)
	}
	cmds, env := packageCommands(pm, update, upgrade, pkgs)
	// With a root other than "/", RunProcess runs them chrooted in it.
	in := ""
	if !b.Root.IsHost() {
		in = " in " + b.Root.Dir()
	}
	if b.DryRun || !b.Live {
		for _, c := range cmds {
			b.Note("would run %s%s", strings.Join(c.Argv, " "), in)
		}
		if b.DryRun {
			return nil
		}
		return fmt.Errorf("%s: %w", who, handlers.ErrNotLive)
	}
	for i, c := range cmds {
		label := who + ": " + pm.Name + " " + c.Step
		err := b.RunProcess(ctx, handlers.Process{Name: label, Argv: c.Argv, Env: env, Timeout: timeout})
		if err != nil {
			if i < len(cmds)-1 {
				b.Note("%d later package commands not run", len(cmds)-1-i)
			}
			return err
		}
		b.Note("%s: ok", label)
	}
	return nil
}
