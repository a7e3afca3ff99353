package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"time"

	"github.com/flint-dev/flint/imds"
	"github.com/flint-dev/flint/internal/rootfs"
	"github.com/flint-dev/flint/internal/state"
)

// execHandler is an out-of-process plug-in: an executable in the exec
// directory, named after its file. It gets the instance data as JSON on
// stdin and FLINT_* variables; its exit code is its result.
type execHandler struct {
	name    string
	rel     string // path below the root
	freq    state.Frequency
	timeout time.Duration
}

func (e *execHandler) Name() string               { return e.name }
func (e *execHandler) Frequency() state.Frequency { return e.freq }

// ExecPlugins lists the executables in dir (below root) in lexical order.
// A missing dir is no plug-ins; non-executables and names that are not
// safe are skipped with a warning in the returned list.
func ExecPlugins(root *rootfs.Root, dir string, freq state.Frequency, timeout time.Duration, reserved func(string) bool) ([]Handler, []string, error) {
	ents, err := root.ReadDir(dir, rootfs.InRoot)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
	var hs []Handler
	var warns []string
	for _, e := range ents {
		name := e.Name()
		// In an image root, a plug-in reached through a symlink would run
		// the host's file of that name: only plain files count there.
		res := rootfs.InRoot
		if !root.IsHost() {
			res = rootfs.Strict
		}
		fi, err := root.Stat(filepath.Join(dir, name), res)
		switch {
		case err != nil:
			warns = append(warns, fmt.Sprintf("exec plug-in %s: %v", name, err))
		case !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0:
			if name[0] != '.' {
				warns = append(warns, fmt.Sprintf("exec plug-in %s: not an executable file, ignored", name))
			}
		case !state.ValidName(name) || reserved(name):
			warns = append(warns, fmt.Sprintf("exec plug-in %s: name is reserved or unsafe, ignored", name))
		default:
			hs = append(hs, &execHandler{name: name, rel: filepath.Join(dir, name), freq: freq, timeout: timeout})
		}
	}
	return hs, warns, nil
}

// pluginInput is what a plug-in reads on stdin.
type pluginInput struct {
	InstanceID string            `json:"instance_id"`
	Root       string            `json:"root"`
	Live       bool              `json:"live"`
	Handler    string            `json:"handler"`
	Metadata   map[string]string `json:"metadata"`
	// Tags are the instance's tags (meta-data/tags/instance/), absent
	// when the instance does not expose them or they could not be read.
	Tags map[string]string `json:"tags,omitempty"`
}

// pluginKeys are the metadata values handed to plug-ins: identity and
// placement, never credentials or user-data.
var pluginKeys = []string{"instance-type", "local-hostname", "local-ipv4", "mac", "placement/availability-zone", "placement/region", "ami-id"}

func (e *execHandler) Run(ctx context.Context, b *Boot) error {
	path := b.Root.Path(e.rel)
	if b.DryRun {
		b.Note("would run %s", path)
		return nil
	}
	if !b.Live {
		b.Note("would run %s", path)
		return fmt.Errorf("%s: %w", path, ErrNotLive)
	}
	in := pluginInput{InstanceID: b.InstanceID, Root: b.Root.Dir(), Live: b.Live, Handler: e.name, Metadata: map[string]string{}}
	for _, k := range pluginKeys {
		v, err := b.Metadata.Get(ctx, "meta-data/"+k)
		if err == nil {
			in.Metadata[k] = string(v)
		} else if !errors.Is(err, imds.ErrNotFound) {
			return fmt.Errorf("reading %s for the plug-in: %w", k, err)
		}
	}
	// Tags are extra: a plug-in runs without them rather than not at all.
	tags, err := imds.Tags(ctx, b.Metadata)
	if err != nil {
		b.Note("instance tags not given to the plug-in: %v", err)
		b.Log.Warn("cannot read instance tags for the plug-in", "error", err)
	}
	in.Tags = tags
	stdin, _ := json.Marshal(in)
	return b.RunProcess(ctx, Process{
		Name:    "handlers.d/" + e.name,
		Argv:    []string{path},
		Env:     []string{"FLINT_HANDLER=" + e.name, fmt.Sprintf("FLINT_LIVE=%t", b.Live), "FLINT_STATE_DIR=" + b.Root.Path(state.Dir)},
		Stdin:   stdin,
		Timeout: e.timeout,
	})
}
