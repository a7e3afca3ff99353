// Package image prepares a root to become a machine image: Clean removes
// what a bake-time run of flint left, so that every instance launched from
// the image has a first boot. Like `cloud-init clean`, it removes the
// instance state always and, when asked, the logs, the SSH host keys and
// the machine id. It owns no files of its own: it removes flint's and,
// when asked, the system's per-machine identity, and nothing else.
package image

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"

	"github.com/flint-dev/flint/internal/rootfs"
	"github.com/flint-dev/flint/internal/state"
)

// Options say what Clean removes besides the instance state.
type Options struct {
	// Logs removes /var/log/flint-output.log and its rotated copy.
	Logs bool
	// HostKeys removes /etc/ssh/ssh_host_*key*: a new instance makes its own.
	HostKeys bool
	// MachineID removes /etc/machine-id, as cloud-init clean --machine-id
	// does (Debian's cloud-init 22.4): systemd makes a new one at the
	// next boot.
	MachineID bool
	// DryRun lists what would be removed and removes nothing.
	DryRun bool
}

// Paths below the root that Clean removes.
const (
	RunDir    = "run/flint"
	OutputLog = "var/log/flint-output.log"
	MachineID = "etc/machine-id"
	SSHDir    = "etc/ssh"
)

// markers are what makes a root flint's: one of them must be there.
var markers = []string{state.Dir, "etc/flint", "usr/bin/flint"}

// ErrNotFlints is returned for a root that flint was never installed in
// nor ran in.
var ErrNotFlints = errors.New("not a root flint is installed in or ran in")

// IsFlintRoot reports whether root holds one of flint's marks
// (var/lib/flint, etc/flint, usr/bin/flint) and is a root filesystem
// (has etc/). Clean refuses any other directory: the host keys and
// machine id it may remove are the system's, not flint's.
func IsFlintRoot(r *rootfs.Root) bool {
	if fi, err := r.Stat("etc", rootfs.InRoot); err != nil || !fi.IsDir() {
		return false
	}
	for _, m := range markers {
		if _, err := r.Stat(m, rootfs.Strict); err == nil {
			return true
		}
	}
	return false
}

// Clean removes from the root what makes it an instance that already
// booted, and returns the root-relative paths it removed (or would
// remove). Symlinks are removed, never followed, and no path resolves
// outside the root.
func Clean(r *rootfs.Root, o Options) ([]string, error) {
	if !IsFlintRoot(r) {
		return nil, fmt.Errorf("%s: %w (none of etc/flint, var/lib/flint, usr/bin/flint; or no etc/): nothing removed", r.Dir(), ErrNotFlints)
	}
	targets := []string{state.Dir, RunDir}
	if o.Logs {
		targets = append(targets, OutputLog, OutputLog+".1")
	}
	if o.HostKeys {
		entries, err := r.ReadDir(SSHDir, rootfs.InRoot)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
		for _, e := range entries {
			if n := e.Name(); strings.HasPrefix(n, "ssh_host_") && strings.Contains(n, "key") {
				targets = append(targets, SSHDir+"/"+n)
			}
		}
	}
	if o.MachineID {
		targets = append(targets, MachineID)
	}
	osr, err := os.OpenRoot(r.Dir())
	if err != nil {
		return nil, err
	}
	defer osr.Close()
	var removed []string
	for _, t := range targets {
		if _, err := osr.Lstat(t); errors.Is(err, fs.ErrNotExist) {
			continue
		} else if err != nil {
			return removed, fmt.Errorf("%s: %w", r.Path(t), err)
		}
		if !o.DryRun {
			// os.Root confines every step to the root and removes a
			// symlink as a link, never what it points at.
			if err := osr.RemoveAll(t); err != nil {
				return removed, fmt.Errorf("removing %s: %w", r.Path(t), err)
			}
		}
		removed = append(removed, t)
	}
	return removed, nil
}
