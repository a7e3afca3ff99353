package builtin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/flint-dev/flint/cloudconfig"
	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/internal/rootfs"
	"github.com/flint-dev/flint/internal/state"
	"github.com/flint-dev/flint/userdata"
)

// yumReposHandler is cloud-init's yum_add_repo, once per instance, in the
// config stage before apt and ntp (where cloud-init's RPM images have
// it): cloudconfig.YumRepos decides one <id>.repo file per repository of
// yum_repos in yum_repo_dir (default /etc/yum.repos.d), an existing file
// left as it is. cloud-init runs the module on the RPM distributions it
// lists only; flint writes the files on an image with dnf or yum, and on
// any other notes that nothing was written, as a warning of the run.
// A repository cloud-init refuses (no baseurl, metalink or mirrorlist, a
// lone % in a value) is skipped with one line and the others are written;
// the handler then fails, so the run is degraded.
var yumReposHandler = handlers.Builtin{Name: "yum-repos", Frequency: state.PerInstance, Run: runYumRepos}

func runYumRepos(ctx context.Context, b *handlers.Boot) error {
	ud, err := b.UserData(ctx)
	if err != nil {
		return err
	}
	if !userdata.Truthy(ud.Config["yum_repos"]) {
		return nil
	}
	if !hasYum(b.Root) {
		msg := "yum_repos: the image has neither dnf nor yum (/usr/bin/dnf, /usr/bin/yum); no repository written"
		b.Note("%s", msg)
		b.Warn("%s", msg)
		return nil
	}
	plan, err := cloudconfig.YumRepos(cloudconfig.YumReposInput{
		Config: ud.Config,
		Order:  cloudconfig.ReadKeyOrder(ud, "yum_repos"),
		Exists: func(p string) bool {
			_, err := b.Root.Stat(strings.TrimPrefix(p, "/"), rootfs.InRoot)
			return err == nil
		},
		Now: time.Now(),
	})
	if err != nil {
		return err
	}
	for _, n := range plan.Notes {
		b.Note("%s", n)
	}
	if err := writePlanFiles(b, plan.Files); err != nil {
		return fmt.Errorf("yum_repos: %w", err)
	}
	if len(plan.Problems) > 0 {
		kept := "nothing written"
		switch n := len(plan.Files); {
		case n == 1:
			kept = "1 other written"
		case n > 1:
			kept = fmt.Sprintf("%d others written", n)
		}
		return errors.New("yum_repos: " + strings.Join(plan.Problems, "; ") + " (" + kept + ")")
	}
	return nil
}

// hasYum reports whether the root has dnf or yum, as the packages
// handler looks for them.
func hasYum(root *rootfs.Root) bool {
	for _, pm := range packageManagers {
		if pm.Name == "apt-get" {
			continue
		}
		if fi, err := root.Stat(pm.Path, rootfs.InRoot); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return true
		}
	}
	return false
}
