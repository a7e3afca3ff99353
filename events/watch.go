package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/flint-dev/flint/imds"
	"github.com/flint-dev/flint/internal/config"
)

// Poll reads kind k's path once. A 404 means nothing is pending.
func Poll(ctx context.Context, md Getter, k Kind, now time.Time) ([]Notice, error) {
	b, err := md.Get(ctx, k.Path())
	if errors.Is(err, imds.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	ns, err := Parse(k, b, now)
	if err != nil {
		return nil, &MalformedError{Err: err}
	}
	return ns, nil
}

// MalformedError is a notice path that answered with a body that is not
// a notice: IMDS is up, the answer is wrong.
type MalformedError struct{ Err error }

func (e *MalformedError) Error() string { return e.Err.Error() }
func (e *MalformedError) Unwrap() error { return e.Err }

// Pending reads every notice path once and returns what is pending, in
// the order of Kinds. Paths that could not be read are reported together
// in the error; the notices of the others are still returned.
func Pending(ctx context.Context, md Getter) ([]Notice, error) {
	var out []Notice
	var errs []error
	for _, k := range Kinds {
		ns, err := Poll(ctx, md, k, time.Now())
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, ns...)
	}
	return out, errors.Join(errs...)
}

// Watcher polls the notice paths and acts on each new notice once.
type Watcher struct {
	Metadata Getter
	Config   config.Events
	Seen     *Seen
	Hooks    *Hooks
	Shutdown *Shutdown
	Log      *slog.Logger
	// PollTimeout bounds one poll (default 10s): a hung read must not
	// stop the other paths.
	PollTimeout time.Duration

	instanceID string
	armed      map[string]bool // shutdowns already scheduled in this process
	shutOnce   sync.Once
	down       time.Time       // when reads started failing; zero while they work
	malformed  map[Kind]string // the last malformed answer logged, per path
	wg         sync.WaitGroup
}

func (w *Watcher) period(k Kind) time.Duration {
	p := w.Config.Periods
	switch k {
	case Spot:
		return time.Duration(p.Spot)
	case Rebalance:
		return time.Duration(p.Rebalance)
	case Scheduled:
		return time.Duration(p.Scheduled)
	}
	return time.Duration(p.Lifecycle)
}

// Watch polls until ctx ends, then waits for running hooks and returns.
// Read failures never end it: the first failure of a gap is logged, and
// so is the end of the gap, once each.
func (w *Watcher) Watch(ctx context.Context) error {
	if w.PollTimeout <= 0 {
		w.PollTimeout = 10 * time.Second
	}
	w.armed = map[string]bool{}
	w.malformed = map[Kind]string{}
	defer w.wg.Wait()
	next := map[Kind]time.Time{}
	start := time.Now()
	for _, k := range Kinds {
		next[k] = start
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		now := time.Now()
		for _, k := range Kinds {
			if now.Before(next[k]) {
				continue
			}
			w.poll(ctx, k)
			// Keep to the schedule rather than drift by each poll's
			// time, but never queue up polls missed during a stall.
			next[k] = next[k].Add(w.period(k))
			if t := time.Now(); next[k].Before(t) {
				next[k] = t.Add(w.period(k))
			}
		}
		soonest := next[Kinds[0]]
		for _, k := range Kinds[1:] {
			if next[k].Before(soonest) {
				soonest = next[k]
			}
		}
		timer.Reset(time.Until(soonest))
	}
}

func (w *Watcher) poll(ctx context.Context, k Kind) {
	pctx, cancel := context.WithTimeout(ctx, w.PollTimeout)
	notices, err := Poll(pctx, w.Metadata, k, time.Now())
	cancel()
	if ctx.Err() != nil {
		return
	}
	w.health(k, err)
	if err != nil {
		return
	}
	for _, n := range notices {
		w.handle(ctx, n)
	}
}

// health logs the start and the end of a gap in reads, once each.
func (w *Watcher) health(k Kind, err error) {
	var me *MalformedError
	if errors.As(err, &me) {
		// A malformed body is not a gap: IMDS answered. It is logged
		// once until it changes, not at every poll.
		if w.malformed[k] != err.Error() {
			w.malformed[k] = err.Error()
			w.Log.Warn("malformed notice", "event", string(k), "error", err.Error())
		}
		return
	}
	if err == nil {
		delete(w.malformed, k)
	}
	switch {
	case err != nil && w.down.IsZero():
		w.down = time.Now()
		w.Log.Warn("instance metadata unreadable; notices may be late until it is back", "event", string(k), "error", err.Error())
	case err == nil && !w.down.IsZero():
		gap := time.Since(w.down).Round(100 * time.Millisecond)
		w.Log.Info("instance metadata answers again", "gap", gap.String(), "since", w.down.UTC().Format(time.RFC3339))
		w.down = time.Time{}
	}
}

// handle acts on a notice: the first time in this boot it is logged and
// its hooks run; the shutdown action is armed once per process, so a
// restarted watcher still powers off for a notice it saw before.
func (w *Watcher) handle(ctx context.Context, n Notice) {
	if w.Shutdown != nil && !w.armed[n.ID] {
		if at, ok := ShutdownAt(n, time.Duration(w.Config.ShutdownBefore), time.Now()); ok {
			w.armed[n.ID] = true
			w.armShutdown(ctx, n, at)
		}
	}
	first, err := w.Seen.Add(n.ID, time.Now())
	if err != nil {
		w.Log.Error("cannot record the notice; it may be handled again after a restart", "event_id", n.ID, "error", err.Error())
	}
	if !first {
		return
	}
	attrs := []any{"event", string(n.Kind), "event_time", n.Time.UTC().Format(time.RFC3339), "event_id", n.ID, "event_action", n.Action}
	if slices.Contains(w.Config.Actions, "log") {
		w.Log.Warn(fmt.Sprintf("notice: %s %s at %s: %s", n.Kind, n.Action, n.Time.UTC().Format(time.RFC3339), n.Detail), attrs...)
	} else {
		w.Log.Debug("notice", attrs...)
	}
	msg := Message{Notice: n, InstanceID: w.instance(ctx)}
	tags, err := Tags(ctx, w.Metadata)
	if err != nil {
		w.Log.Warn("cannot read instance tags; hooks get none", "error", err.Error())
	}
	msg.Tags = tags
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		// Hooks get their own context: a stop of the watcher (SIGTERM at
		// shutdown) must not kill a hook that is draining the node.
		w.Hooks.Run(context.WithoutCancel(ctx), msg)
	}()
}

func (w *Watcher) instance(ctx context.Context) string {
	if w.instanceID == "" {
		if b, err := w.Metadata.Get(ctx, "meta-data/instance-id"); err == nil {
			w.instanceID = string(b)
		}
	}
	return w.instanceID
}

func (w *Watcher) armShutdown(ctx context.Context, n Notice, at time.Time) {
	d := time.Until(at)
	w.Log.Warn("shutdown scheduled", "event", string(n.Kind), "event_id", n.ID, "shutdown_at", at.UTC().Format(time.RFC3339))
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		w.shutOnce.Do(func() { w.Shutdown.Run(context.WithoutCancel(ctx), n) })
	}()
}
