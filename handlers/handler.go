// Package handlers is the boot chain's engine: the Handler contract and
// Boot, what a handler sees; the descriptions of built-in handlers
// (Builtin, Catalog); the runner that decides from the state store what
// still has to run; status, output log and process running; exec
// plug-ins. The built-in handlers themselves live in handlers/builtin.
// Handlers get what they need through Boot and never parse HTTP or tar
// themselves.
package handlers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/flint-dev/flint/imds"
	"github.com/flint-dev/flint/internal/config"
	"github.com/flint-dev/flint/internal/rootfs"
	"github.com/flint-dev/flint/internal/state"
	"github.com/flint-dev/flint/userdata"
)

// Handler is one step of the boot chain. Run must be idempotent: a
// handler is marked done only after it returns nil, so a crash re-runs it.
type Handler interface {
	Name() string
	Frequency() state.Frequency
	Run(ctx context.Context, b *Boot) error
}

// Needer is implemented by handlers that must not run when another failed
// (ssh-keys needs users).
type Needer interface {
	Needs() []string
}

// ErrNotLive is returned (wrapped) by a handler whose work is a live
// change (sethostname, netlink, module loading, running commands) on a
// root other than "/" without --live: what it would do is reported as
// planned, and it is not marked done.
var ErrNotLive = errors.New("planned, not run (not live)")

// Boot is what a handler sees: the root it provisions, the metadata
// reader, user-data, its config section, the state store and a logger.
type Boot struct {
	Root *rootfs.Root
	// Live allows live changes. It is true for the root "/" and with --live.
	Live bool
	// DryRun: compute and report the plan, change nothing, write nothing.
	DryRun bool
	// Metadata reads IMDS, memoized for the run.
	Metadata imds.Reader
	// InstanceID is meta-data/instance-id.
	InstanceID string
	Config     *config.Config
	State      *state.Store
	Log        *slog.Logger
	// Output receives scripts' and plug-ins' output (/var/log/flint-output.log).
	Output *OutputLog
	// Console receives what the operator must see (final message, host key
	// fingerprints).
	Console io.Writer
	// UserDataOptions tune user-data parsing (fetcher for #include).
	UserDataOptions userdata.Options

	ud      *lazyUserData
	result  *Result
	builtin *Builtin // the running handler's description, if built in
	notes   *runNotes
	// prepared holds what built-in handlers' Prepare returned, by name
	// (filled before the chain starts; each value once its Prepare ends).
	prepared map[string]*preparedValue
	// endpoint is the metadata service's URL, for templates' v1 data.
	endpoint string
}

// runNotes are the run's warnings, shared by every handler's Boot.
type runNotes struct {
	mu       sync.Mutex
	warnings []string
	// unrecorded: a write below the state directory failed this run.
	unrecorded bool
}

// add records w once however often it is given.
func (n *runNotes) add(w string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !slices.Contains(n.warnings, w) {
		n.warnings = append(n.warnings, w)
	}
}

func (n *runNotes) list() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.warnings)
}

// ErrUserDataUnavailable is wrapped by UserData and CloudConfig when the
// instance's user-data could not be read or parsed. The engine reports
// it once for the run, and a handler that returns it waits for a boot
// that can read the user-data instead of failing.
var ErrUserDataUnavailable = errors.New("user-data could not be read")

// Warn records a warning for the whole run: shown by `flint status` and
// kept in status.json, once however often it is given. A run with
// warnings is degraded, not done: warnings say what was asked and
// dropped (a user-data part, a key, a template).
func (b *Boot) Warn(format string, args ...any) {
	w := fmt.Sprintf(format, args...)
	if b.notes == nil {
		b.notes = &runNotes{}
	}
	b.notes.add(w)
}

// SeeStateWarning is how a handler's line refers to the run's warning
// about a state directory that cannot be written (see Unrecorded).
const SeeStateWarning = "the state directory cannot be written, see warnings"

// Unrecorded reports err, an error writing below the state directory (a
// full or read-only disk), which kept the running handler from recording
// what it did, or from doing what must be done at most once. The first
// such error of a run becomes one of its warnings; the handlers' own
// lines refer to it (SeeStateWarning) instead of repeating it.
func (b *Boot) Unrecorded(err error) {
	if b.notes == nil {
		b.notes = &runNotes{}
	}
	b.notes.unrecord(err)
}

func (n *runNotes) unrecord(err error) {
	n.mu.Lock()
	first := !n.unrecorded
	n.unrecorded = true
	n.mu.Unlock()
	if first {
		n.add(fmt.Sprintf("the state directory cannot be written (%s): per-instance work that ran is not recorded "+
			"and runs again at the next boot; what must run at most once (scripts, phone_home, power_state, "+
			"passwords, appends, disk_setup's overwrites) waits for a boot that can record it",
			strings.ReplaceAll(err.Error(), "\n", " ")))
	}
}

// Partial records that the running handler did what it could but not
// all it was asked (a public key that could not be read, the users of
// user-data that could not be read). The handler is not marked done, so
// a later boot does the rest; the run is degraded. The line says what
// was kept.
func (b *Boot) Partial(format string, args ...any) {
	if b.result != nil {
		b.result.partial = append(b.result.partial, fmt.Sprintf(format, args...))
	}
}

// CloudConfigOrNone is CloudConfig for the handlers that make an
// instance reachable (the default user, the metadata keys, host keys,
// the host name): when the user-data cannot be read they go on with an
// empty cloud-config and the empty user-data, and their run is partial,
// so what user-data asks of them is done by a later boot that can read
// it.
func (b *Boot) CloudConfigOrNone(ctx context.Context) (*userdata.CloudConfig, *userdata.UserData) {
	ud, err := b.UserData(ctx)
	if err != nil {
		b.Partial("done without user-data (it could not be read); what it asks waits for a boot that can read it")
		return &userdata.CloudConfig{}, &userdata.UserData{Config: map[string]any{}}
	}
	cc, _ := b.CloudConfig(ctx)
	return cc, ud
}

type lazyUserData struct {
	once sync.Once
	ud   *userdata.UserData
	err  error
}

// UserData returns the parsed user-data (fetched and parsed once per run).
// No user-data is an empty UserData, not an error.
func (b *Boot) UserData(ctx context.Context) (*userdata.UserData, error) {
	if b.ud == nil {
		b.ud = &lazyUserData{}
	}
	b.ud.once.Do(func() {
		raw, err := b.Metadata.Get(ctx, "user-data")
		if errors.Is(err, imds.ErrNotFound) {
			raw, err = nil, nil
		}
		if err != nil {
			b.ud.err = fmt.Errorf("%w: %w", ErrUserDataUnavailable, err)
			b.Warn("%v; users, keys, files and scripts from user-data wait for a boot that can read it", b.ud.err)
			return
		}
		if b.State != nil && b.State.Instance() != "" && !b.DryRun && raw != nil {
			// Kept 0600 for `flint userdata inspect` and post-mortems.
			if err := b.State.KeepInstanceFile("user-data.raw", raw); err != nil {
				b.Log.Warn("could not keep a copy of user-data", "error", err)
			}
		}
		opts := b.UserDataOptions
		if opts.IncludeOnceDir == "" && b.State != nil && b.State.Instance() != "" && !b.DryRun {
			// userdata writes the cache with plain file calls: only when the
			// instance directory really lies inside the root.
			if dir := b.Root.Path(b.State.InstanceDir(b.State.Instance())); b.Root.Contains(dir) {
				opts.IncludeOnceDir = dir + "/urlcache"
			}
		}
		// The launch index and template variables are fetched only for
		// user-data that uses them.
		opts.Lookup = b.lookupInstanceData
		b.ud.ud, b.ud.err = userdata.Parse(ctx, raw, opts)
		if b.ud.err != nil {
			b.ud.err = fmt.Errorf("%w: %w", ErrUserDataUnavailable, b.ud.err)
			b.Warn("%v; users, keys, files and scripts from user-data wait for a boot that can read it", b.ud.err)
			return
		}
		for _, w := range b.ud.ud.Warnings {
			b.Log.Warn("user-data: " + w)
			b.Warn("user-data: %s", w)
		}
	})
	return b.ud.ud, b.ud.err
}

// lookupInstanceData is userdata's Lookup: the launch index when a part
// names one, the meta-data tree when a part is a jinja template. A launch
// index that cannot be read is an error: keeping every part would run
// parts meant for other instances of the launch. Templates without
// variables are only a warning.
func (b *Boot) lookupInstanceData(ctx context.Context, opts *userdata.Options, launchIndex, instanceData bool) error {
	if launchIndex {
		v, err := b.Metadata.Get(ctx, "meta-data/ami-launch-index")
		if err != nil {
			return fmt.Errorf("user-data has Launch-Index parts but ami-launch-index cannot be read: %w", err)
		}
		n, err := strconv.Atoi(strings.TrimSpace(string(v)))
		if err != nil {
			return fmt.Errorf("meta-data/ami-launch-index %q is not a number", truncateValue(v))
		}
		opts.LaunchIndex = &n
	}
	if instanceData {
		// cloud-init's instance data: v1.*, ds.meta_data, ds.dynamic.
		src, err := userdata.ReadInstanceSources(ctx, b.Metadata, b.endpoint)
		if err != nil {
			b.Warn("user-data templates rendered without instance data: %v", err)
			return nil
		}
		opts.InstanceData = userdata.BuildInstanceData(src)
	}
	return nil
}

func truncateValue(b []byte) string {
	if len(b) > 20 {
		return string(b[:20]) + "…"
	}
	return string(b)
}

// CloudConfig returns the merged cloud-config (never nil on success).
func (b *Boot) CloudConfig(ctx context.Context) (*userdata.CloudConfig, error) {
	ud, err := b.UserData(ctx)
	if err != nil {
		return nil, err
	}
	if ud.CloudConfig == nil {
		return &userdata.CloudConfig{}, nil
	}
	return ud.CloudConfig, nil
}

// Prepared returns what the running built-in handler's Prepare returned,
// waiting for it to return; nil when it has none or it was not called (a
// dry run).
func (b *Boot) Prepared() any {
	if b.builtin == nil {
		return nil
	}
	pv := b.prepared[b.builtin.Name]
	if pv == nil {
		return nil
	}
	<-pv.done
	return pv.v
}

// Note records a line in the handler's result (what it did or would do).
// Notes are shown by `flint status` and never hold secrets.
func (b *Boot) Note(format string, args ...any) {
	if b.result != nil {
		b.result.Notes = append(b.result.Notes, fmt.Sprintf(format, args...))
	}
}

// Section decodes the named flint.yaml section strictly into v (a handler
// reading another's section; its own is Settings).
func (b *Boot) Section(name string, v any) error {
	if b.Config == nil {
		return nil
	}
	_, err := b.Config.Section(name, v)
	return err
}

// forHandler returns a copy of b that records into r. The copies share
// one parse of the user-data.
func (b *Boot) forHandler(h Handler, r *Result, log *slog.Logger) *Boot {
	if b.ud == nil {
		b.ud = &lazyUserData{}
	}
	if b.notes == nil {
		b.notes = &runNotes{}
	}
	c := *b
	c.result = r
	c.Log = log
	c.builtin = nil
	if bh, ok := h.(builtinHandler); ok {
		c.builtin = bh.d
	}
	return &c
}
