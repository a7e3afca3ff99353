package builtin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	"github.com/flint-dev/flint/cloudconfig"
	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/internal/accounts"
	"github.com/flint-dev/flint/internal/rootfs"
	"github.com/flint-dev/flint/internal/state"
	"github.com/flint-dev/flint/userdata"
)

// sshImportIDHandler is cloud-init's ssh_import_id, once per instance,
// after the users exist and first in cloud-init's config stage: for the
// default user (top-level ssh_import_id) and each user with its own
// ssh_import_id, cloudconfig.SSHImportIDs decides the ids, and the
// image's ssh-import-id runs as that user exactly as cloud-init runs it,
// `sudo --preserve-env=https_proxy -Hu USER ssh-import-id ID...`
// (chrooted in a root other than "/"), so the keys land in the user's
// own authorized_keys. An image without ssh-import-id gets a note and a
// warning of the run, nothing else, as cloud-init skips the module. A
// user whose ids cannot be imported (no such account, the tool failed,
// ids cloud-init would drop) fails the handler with one line after the
// others are imported. The tool fetches keys from the network: it is a
// live change, planned without --live.
var sshImportIDHandler = handlers.Builtin{
	Name: "ssh-import-id", Frequency: state.PerInstance, Needs: []string{"users"},
	Run: runSSHImportID,
}

// sshImportTool is the program cloud-init runs.
const sshImportTool = "ssh-import-id"

func runSSHImportID(ctx context.Context, b *handlers.Boot) error {
	ud, err := b.UserData(ctx)
	if err != nil {
		return err
	}
	if _, topSet := ud.Config["ssh_import_id"]; !topSet && !anyImportID(rawUserEntries(ud.Config["users"])) {
		return nil
	}
	cc, specs, err := decidedUsers(ctx, b)
	if err != nil {
		return err
	}
	runs, problems := sshImportPlan(ud.Config, cc, specs)
	if len(runs) > 0 && !onProcessPath(b.Root, sshImportTool) {
		msg := "ssh_import_id: " + sshImportTool + " is not installed in the image; no ids imported"
		b.Note("%s", msg)
		b.Warn("%s", msg)
		runs = nil
	}
	if len(runs) > 0 && (b.DryRun || !b.Live) {
		for _, r := range runs {
			b.Note("would run %s", strings.Join(sshImportArgv(r), " "))
		}
		if !b.DryRun && len(problems) == 0 {
			return fmt.Errorf("%s: %w", sshImportTool, handlers.ErrNotLive)
		}
		runs = nil
	}
	var db *accounts.DB
	if len(runs) > 0 {
		if db, err = accounts.Read(b.Root); err != nil {
			return fmt.Errorf("ssh_import_id: %w; no ids imported", err)
		}
	}
	var env []string
	if v, ok := os.LookupEnv("https_proxy"); ok {
		env = append(env, "https_proxy="+v)
	}
	for _, r := range runs {
		if _, err := db.User(r.User); err != nil {
			problems = append(problems, "ssh_import_id: no user "+r.User+"; its ids not imported")
			continue
		}
		err := b.RunProcess(ctx, handlers.Process{Name: sshImportTool + " " + r.User, Argv: sshImportArgv(r),
			Env: env, Timeout: planCommandTimeout, Explain: true})
		if err != nil {
			problems = append(problems, fmt.Sprintf("ssh_import_id for %s: %v", r.User, err))
			continue
		}
		b.Note("imported %s for %s", strings.Join(r.IDs, ", "), r.User)
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// sshImportArgv is cloud-init's command for one user.
func sshImportArgv(r cloudconfig.SSHImport) []string {
	return append([]string{"sudo", "--preserve-env=https_proxy", "-Hu", r.User, sshImportTool}, r.IDs...)
}

// sshImportPlan decides the ssh-import-id runs for the users the users
// handler decided (specs), in order, the default user marked as
// cloud-init marks it: only when users names "default", there is no
// users key, or the old user key is given; a user named like the
// default user but listed alone keeps its own ids.
func sshImportPlan(cfg map[string]any, cc *userdata.CloudConfig, specs []userSpec) ([]cloudconfig.SSHImport, []string) {
	raw := rawUserEntries(cfg["users"])
	_, usersSet := cfg["users"]
	listed := !usersSet || userdata.Truthy(cfg["user"])
	for _, u := range cc.Users {
		listed = listed || u.Default
	}
	out := make([]cloudconfig.SSHImportUser, 0, len(specs))
	for _, s := range specs {
		out = append(out, cloudconfig.SSHImportUser{Name: s.Name, Default: s.Default && listed, Entry: raw[s.Name]})
	}
	return cloudconfig.SSHImportIDs(cfg["ssh_import_id"], out)
}

// anyImportID reports whether a users entry has ssh_import_id.
func anyImportID(raw map[string]map[string]any) bool {
	for _, e := range raw {
		if _, ok := e["ssh_import_id"]; ok {
			return true
		}
	}
	return false
}

// onProcessPath reports whether name is an executable file on the
// programs' PATH inside root (cloud-init's subp.which).
func onProcessPath(root *rootfs.Root, name string) bool {
	for _, dir := range strings.Split(handlers.ProcessPath, ":") {
		fi, err := root.Stat(strings.TrimPrefix(path.Join(dir, name), "/"), rootfs.InRoot)
		if err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return true
		}
	}
	return false
}
