package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/flint-dev/flint/imds"
	"github.com/flint-dev/flint/internal/logging"
	"github.com/flint-dev/flint/internal/rootfs"
	"github.com/flint-dev/flint/internal/state"
)

// ConfigPath is the main config file below the root.
const ConfigPath = "etc/flint/flint.yaml"

// Setup is one `flint run`.
type Setup struct {
	// Root is the root to provision ("/" on an instance).
	Root string
	// Live allows live changes with a root other than "/".
	Live   bool
	DryRun bool
	// ConfigFile, if set, replaces <root>/etc/flint/flint.yaml and its drop-ins.
	ConfigFile string
	// Endpoint overrides the configured IMDS endpoint.
	Endpoint string
	// Catalog is the built-in handlers, in chain order (exec plug-ins
	// follow them).
	Catalog Catalog
	Only    []string
	Skip    []string
	Force   bool
	// Stderr receives logs when journald is not used; Stdout the plan of a dry run.
	Stderr, Stdout io.Writer
	// Notify receives sd_notify lines (READY=1, STATUS=…); may be nil.
	Notify func(string)
	// Getenv reads the environment for the IMDS client (nil: os.Getenv).
	Getenv func(string) string
}

// Execute performs a run: config, IMDS client, instance state, the chain,
// the status file and results. The returned status is final; an error is
// also recorded in it.
func Execute(ctx context.Context, s Setup) (*Status, error) {
	st := &Status{State: StateRunning, Started: time.Now()}
	if s.Stderr != nil {
		// The logs and the console (host key fingerprints) share it, and
		// handlers beside the chain write while the chain logs.
		s.Stderr = &lockedWriter{w: s.Stderr}
	}
	notify := s.Notify
	if notify == nil {
		notify = func(string) {}
	}
	defer notify("READY=1")
	// systemd shows the last STATUS= in `systemctl status flint`: the
	// state, and the error's line when the run failed.
	defer func() {
		if st.State == StateError && st.Error != "" {
			notify("STATUS=error: " + st.Error)
		} else {
			notify("STATUS=" + st.State)
		}
	}()
	root, err := rootfs.Open(s.Root)
	if err != nil {
		return fail(st, nil, err)
	}
	defer root.Close()
	// statusRoot is where failures are recorded: nowhere in a dry run.
	statusRoot := root
	if s.DryRun {
		statusRoot = nil
	}
	cfg, err := s.Catalog.LoadConfig(root.Dir(), s.ConfigFile)
	if err != nil {
		return fail(st, statusRoot, err)
	}
	log := logging.New(cfg.Log.Target, cfg.Log.Level, s.Stderr)
	endpoint := s.Endpoint
	if endpoint == "" {
		endpoint = cfg.IMDS.Endpoint
	}
	mode, _ := imds.ParseMode(cfg.IMDS.Mode)
	// The client logs from reads in the background too: its own logger,
	// not the variable the run later narrows to the instance.
	clientLog := log
	client, err := imds.New(imds.Options{
		Endpoint:    endpoint,
		Mode:        mode,
		TokenTTL:    time.Duration(cfg.IMDS.TokenTTL),
		MaxAttempts: -1, // bounded by the boot deadline instead
		Getenv:      s.Getenv,
		Logf:        func(f string, a ...any) { clientLog.Info(fmt.Sprintf(f, a...)) },
	})
	if err != nil {
		return fail(st, statusRoot, err)
	}
	// The deadline bounds each wait for IMDS (the first one covers IMDS
	// coming up at boot), never the handlers: a long package upgrade must
	// not be killed by it.
	deadline := time.Duration(cfg.IMDS.Deadline)
	md := imds.NewMemo(imds.Bounded(client, deadline))
	// The instance id's read (after the run's one token) goes out now,
	// while the root is checked and the status written; the user-data's
	// beside it, which the chain's first handlers wait for (the memo
	// shares it with them).
	var idb []byte
	var idErr error
	idRead := make(chan struct{})
	go func() {
		defer close(idRead)
		idb, idErr = md.Get(ctx, "meta-data/instance-id")
	}()
	if len(s.Only) == 0 {
		go md.Get(ctx, "user-data")
	}
	if !s.DryRun {
		if rerr := readOnlyRoot(root); rerr != nil {
			// Nothing can be provisioned: say so where a person looks
			// (stderr, which is the unit's journal; systemd's STATUS=;
			// status.json under /run, a tmpfs that stays writable) and
			// change nothing else.
			return fail(st, statusRoot, rerr)
		}
		if werr := WriteStatus(root, st); werr != nil {
			return fail(st, nil, werr)
		}
	}
	<-idRead
	var meta imds.Reader = md
	var kept *imds.Snapshot // the metadata of the last boot, when IMDS is gone
	if err := idErr; err != nil {
		if ctx.Err() != nil || errors.Is(err, imds.ErrNotFound) {
			return fail(st, statusRoot, fmt.Errorf("cannot read the instance id: %w", err))
		}
		if kept, err = keptMetadata(root, err); err != nil {
			return fail(st, statusRoot, err)
		}
		meta = kept
		idb = []byte(kept.Values["meta-data/instance-id"])
	}
	id := strings.TrimSpace(string(idb))
	st.InstanceID = id
	var store *state.Store
	var out *OutputLog
	// stateErr: the state directory cannot be written (a full disk). The
	// chain runs anyway, nothing of it recorded: the default user and the
	// keys matter more than the record of them.
	var stateErr error
	if s.DryRun {
		// Read what already ran, write nothing.
		store = state.View(root, id)
	} else {
		if store, stateErr = openState(root, id, st); store == nil {
			return fail(st, statusRoot, stateErr)
		}
		if out, err = OpenOutputLog(root, int64(cfg.Handlers.OutputLogMax)); err != nil {
			return fail(st, statusRoot, err)
		}
		if logging.UsesJournal(cfg.Log.Target) {
			out.Journal = logging.JournalLine
		}
	}
	log = log.With("instance_id", id)
	freq, _ := state.ParseFrequency(cfg.Handlers.ExecFrequency)
	plugins, warns, err := ExecPlugins(root, cfg.Handlers.ExecDir, freq, time.Duration(cfg.Handlers.ExecTimeout), s.Catalog.Has)
	if err != nil {
		return fail(st, statusRoot, fmt.Errorf("exec plug-ins: %w", err))
	}
	for _, w := range warns {
		log.Warn(w)
	}
	chain := append(s.Catalog.Handlers(), plugins...)
	for _, names := range [][]string{s.Only, s.Skip} {
		if err := checkNames(chain, names); err != nil {
			return fail(st, statusRoot, err)
		}
	}
	b := &Boot{
		Root: root, Live: root.IsHost() || s.Live, DryRun: s.DryRun,
		Metadata: meta, InstanceID: id, Config: cfg, State: store, Log: log,
		Output: out, Console: s.Stderr,
		ud:       &lazyUserData{}, // one parse per run, shared by every handler
		endpoint: client.Endpoint(),
	}
	if stateErr != nil {
		b.Unrecorded(stateErr)
		log.Warn("the state directory cannot be written; running without recording", "error", stateErr)
	}
	opts := RunOptions{
		Only: s.Only, Skip: s.Skip, Force: s.Force,
		Required: cfg.Handlers.Required, Disabled: cfg.Handlers.Disable,
		Notify: notify, Plan: s.Stdout, ReadyAfter: s.Catalog.readyAfter(),
	}
	if kept != nil {
		// The kept metadata is this instance's as its last boot saw it:
		// per-boot work can use it; per-instance work already ran from it
		// or waits for the service.
		b.Warn("metadata service unreachable for %s; per-boot work ran from the metadata kept at %s",
			deadline, kept.Kept.UTC().Format(time.RFC3339))
		log.Warn("metadata service unreachable; running per-boot handlers from the metadata kept at " + kept.Kept.UTC().Format(time.RFC3339))
		opts.PerBootOnly = "waits for the metadata service, which could not be reached"
	}
	log.Info("starting", "handlers", len(chain), "live", b.Live, "dry_run", s.DryRun)
	Run(ctx, b, chain, st, opts)
	if !s.DryRun && kept == nil {
		// What this run read, for a boot that cannot reach the service.
		if err := keepMetadata(store, md.Snapshot(st.Started)); err != nil {
			log.Warn("cannot keep the metadata for later boots", "error", err)
		}
	}
	if !s.DryRun {
		if err := writeResults(store, st); err != nil {
			log.Warn("cannot write results.json", "error", err)
		}
		// One flush for the run's semaphores and records.
		if err := store.Sync(); err != nil {
			log.Warn("cannot make the run's state durable; an interrupted boot may re-run handlers", "error", err)
		}
	}
	log.Info("finished", "state", st.State, "duration_ms", st.DurationMS)
	return st, nil
}

// openState opens the state directory and makes id its current instance.
// When that cannot be written (a full disk) the store still reads what
// earlier runs recorded, and each write to it fails on its own: the
// error returned is reported once, by the chain.
func openState(root *rootfs.Root, id string, st *Status) (*state.Store, error) {
	if !state.ValidName(id) {
		return nil, fmt.Errorf("instance id %q is not a safe name", id)
	}
	store, err := state.Open(root)
	if err != nil {
		return state.View(root, id), err
	}
	prev, err := store.SetInstance(id)
	if prev != id {
		st.Previous = prev
	}
	if err != nil {
		return state.View(root, id), err
	}
	return store, nil
}

// readOnlyRoot says when nothing can be provisioned: the root and the
// file system of its state directory are read-only. A read-only root
// with a writable /var runs, and so does a read-only state directory on
// a writable root, without recording (openState).
func readOnlyRoot(root *rootfs.Root) error {
	if !readOnly(root, ".") {
		return nil
	}
	dir := state.Dir
	for dir != "." {
		if _, err := root.Stat(dir, rootfs.InRoot); err == nil {
			break
		}
		dir = path.Dir(dir)
	}
	if !readOnly(root, dir) {
		return nil
	}
	return fmt.Errorf("%s and its state directory are on a read-only file system: nothing was done (a boot that can write them does the work)", root.Dir())
}

// readOnly reports whether rel's file system is mounted read-only.
func readOnly(root *rootfs.Root, rel string) bool {
	f, err := root.OpenFile(rel, unix.O_RDONLY|unix.O_DIRECTORY, 0, rootfs.InRoot)
	if err != nil {
		return false
	}
	defer f.Close()
	var fs unix.Statfs_t
	return unix.Fstatfs(int(f.Fd()), &fs) == nil && fs.Flags&unix.ST_RDONLY != 0
}

// fail records a run that could not start its chain.
func fail(st *Status, root *rootfs.Root, err error) (*Status, error) {
	st.State, st.Error = StateError, err.Error()
	st.Finished = time.Now()
	st.DurationMS = float64(st.Finished.Sub(st.Started).Microseconds()) / 1000
	if root != nil {
		if werr := WriteStatus(root, st); werr != nil {
			// The file may still say "running": the caller must know.
			err = fmt.Errorf("%w (and the status could not be recorded: %v)", err, werr)
		}
	}
	return st, err
}

// writeResults keeps the run's results in the instance directory.
func writeResults(store *state.Store, st *Status) error {
	res, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding results.json: %w", err)
	}
	return store.WriteInstanceRecord("results.json", append(res, '\n'))
}

// MetadataFile is the instance file that keeps the metadata a run read
// (never user-data or credentials), for a boot that cannot reach IMDS.
const MetadataFile = "metadata.json"

func keepMetadata(store *state.Store, snap *imds.Snapshot) error {
	// A run that read less (--only) keeps what earlier runs of the
	// instance read; the file is per instance, so it is the same one's.
	if old, err := store.ReadInstanceFile(MetadataFile); err == nil {
		var older imds.Snapshot
		if json.Unmarshal(old, &older) == nil {
			snap.Fill(&older)
		}
	}
	b, err := json.MarshalIndent(snap, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding %s: %w", MetadataFile, err)
	}
	return store.WriteInstanceRecord(MetadataFile, append(b, '\n'))
}

// keptMetadata returns the metadata the last run of the current instance
// kept, when the service could not be reached (readErr). Without it the
// error is one line saying both.
func keptMetadata(root *rootfs.Root, readErr error) (*imds.Snapshot, error) {
	none := func(why string) error {
		return fmt.Errorf("cannot read the instance id (%w), and %s", readErr, why)
	}
	id, err := state.Current(root)
	if err != nil {
		return nil, none("the last instance is unknown: " + err.Error())
	}
	if id == "" {
		return nil, none("no earlier boot kept metadata to run per-boot work from")
	}
	b, err := state.View(root, id).ReadInstanceFile(MetadataFile)
	if err != nil {
		return nil, none("no metadata was kept for instance " + id)
	}
	var snap imds.Snapshot
	if err := json.Unmarshal(b, &snap); err != nil {
		return nil, none("the metadata kept for instance " + id + " cannot be read: " + err.Error())
	}
	if got := strings.TrimSpace(snap.Values["meta-data/instance-id"]); got != id {
		return nil, none(fmt.Sprintf("the metadata kept for instance %s is for %q", id, got))
	}
	return &snap, nil
}

// lockedWriter serializes the writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
