package handlers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/flint-dev/flint/internal/state"
)

// RunOptions select and shape one run of the chain.
type RunOptions struct {
	// Only, if non-empty, runs just these handlers.
	Only []string
	// Skip leaves these handlers out.
	Skip []string
	// Force runs handlers even if their frequency says they already ran.
	Force bool
	// Required handlers stop the chain when they fail.
	Required []string
	// Disabled handlers (from config) are skipped.
	Disabled []string
	// Notify receives progress ("STATUS=…" lines for systemd); may be nil.
	Notify func(status string)
	// Plan receives the notes of a dry run as they come; may be nil.
	Plan io.Writer
	// ReadyAfter names the handler after which Notify gets READY=1.
	ReadyAfter string
	// PerBootOnly, when set, is why handlers of other frequencies that
	// have not run yet do not run now (the metadata service is gone and
	// the run uses the metadata an earlier boot kept).
	PerBootOnly string
}

// Run runs hs in order and returns the final status. It writes the status
// file after every handler (unless DryRun) and records semaphores only for
// handlers that succeeded.
func Run(ctx context.Context, b *Boot, hs []Handler, st *Status, opts RunOptions) *Status {
	for _, h := range hs {
		st.Handlers = append(st.Handlers, Result{Name: h.Name(), Frequency: string(h.Frequency()), Status: ResultPending})
	}
	save := func() {
		if b.DryRun {
			return
		}
		if b.notes != nil {
			st.Warnings = b.notes.list()
		}
		if err := WriteStatus(b.Root, st); err != nil {
			b.Log.Error("cannot write status", "error", err)
		}
	}
	save()
	prepare(ctx, b, hs, opts)
	failed := map[string]bool{}
	partial := false
	stopped := ""
	// Handlers running beside the chain, by index; finish records one
	// that ended (or ran in line), in the chain's goroutine.
	running := map[int]*besideRun{}
	var finish func(i int, err error)
	join := func(i int) {
		if br := running[i]; br != nil {
			delete(running, i)
			<-br.done
			st.Handlers[i] = br.result
			finish(i, br.err)
		}
	}
	finish = func(i int, err error) {
		h, r := hs[i], &st.Handlers[i]
		name := h.Name()
		log := b.Log.With("handler", name)
		unrecorded := false
		switch {
		case err == nil && len(r.partial) > 0:
			// Not marked done: a later boot does the rest.
			r.Status, r.Reason = ResultPartial, strings.Join(r.partial, "; ")
			partial = true
		case err == nil && b.DryRun:
			r.Status = ResultPlanned
		case err == nil:
			r.Status = ResultOK
			if err := b.State.MarkDone(h.Frequency(), name); err != nil {
				// Its work is in place; the next boot does it again, which
				// is harmless: what must not be done twice has a record of
				// its own, made before it was done.
				b.Unrecorded(err)
				r.Status, r.Reason = ResultFailed, "ran, but could not record it ("+SeeStateWarning+"): the next boot runs it again"
				unrecorded = true
			}
		case errors.Is(err, ErrNotLive):
			r.Status, r.Reason = ResultPlanned, err.Error()
		case errors.Is(err, ErrUserDataUnavailable):
			// Reported once in the run's warnings, not once a handler.
			r.Status, r.Reason = ResultNotRun, "waits for user-data, which could not be read (see warnings)"
			partial = true
		default:
			r.Status, r.Reason = ResultFailed, err.Error()
			if len(r.partial) > 0 {
				// What it left for a later boot, beside what failed.
				r.Reason += "; " + strings.Join(r.partial, "; ")
			}
		}
		if opts.Plan != nil && b.DryRun {
			for _, n := range r.Notes {
				fmt.Fprintf(opts.Plan, "%s: %s\n", name, n)
			}
		}
		if r.Status == ResultFailed {
			// Work done but not recorded (a full state disk) is there for
			// the handlers that need it: ssh-keys must still install the
			// keys of the users that were made.
			failed[name] = !unrecorded
			log.Error("failed", "error", r.Reason, "duration_ms", r.DurationMS)
			if slices.Contains(opts.Required, name) {
				stopped = name
			}
		} else {
			log.Info(r.Status, "duration_ms", r.DurationMS)
		}
		save()
	}
	joinAll := func() {
		for _, i := range slices.Sorted(maps.Keys(running)) {
			join(i)
		}
	}
	for i, h := range hs {
		if i > 0 && hs[i-1].Name() == opts.ReadyAfter {
			// Whatever the Ready handler did (ran, skipped, failed), what
			// sshd waits for is over once what ran beside is.
			joinAll()
			st.Ready = time.Now()
			if opts.Notify != nil {
				opts.Notify("READY=1")
			}
		}
		r := &st.Handlers[i]
		name := h.Name()
		log := b.Log.With("handler", name)
		if stopped != "" {
			r.Status, r.Reason = ResultNotRun, "required handler "+stopped+" failed"
		} else if why := deselected(name, opts); why != "" {
			r.Status, r.Reason = ResultSkipped, why
		}
		if r.Status != ResultPending {
			continue
		}
		if n, ok := h.(Needer); ok {
			for _, dep := range n.Needs() {
				if j := slices.IndexFunc(hs[:i], func(d Handler) bool { return d.Name() == dep }); j >= 0 {
					join(j) // running beside the chain: its result first
				}
				if failed[dep] {
					r.Status, r.Reason = ResultNotRun, "needs "+dep+", which failed"
				}
			}
			if r.Status != ResultPending {
				failed[name] = true
				continue
			}
		}
		if !opts.Force {
			done, err := b.State.Done(h.Frequency(), name)
			if err != nil {
				log.Warn("cannot read semaphore; running", "error", err)
			}
			if done {
				r.Status, r.Reason = ResultSkipped, "already ran ("+string(h.Frequency())+")"
				continue
			}
		}
		if opts.PerBootOnly != "" && h.Frequency() != state.PerBoot {
			r.Status, r.Reason = ResultNotRun, opts.PerBootOnly
			continue
		}
		if opts.Notify != nil {
			opts.Notify(fmt.Sprintf("STATUS=running %s (%d/%d)", name, i+1, len(hs)))
		}
		r.Started = time.Now()
		if beside(h) && !b.DryRun && !slices.Contains(opts.Required, name) {
			r.Beside = true
			br := &besideRun{result: *r, done: make(chan struct{})}
			hb := b.forHandler(h, &br.result, log)
			go func() {
				defer close(br.done)
				br.err = runOne(ctx, hb, h)
				br.result.DurationMS = float64(time.Since(br.result.Started).Microseconds()) / 1000
			}()
			running[i] = br
			continue
		}
		err := runOne(ctx, b.forHandler(h, r, log), h)
		r.DurationMS = float64(time.Since(r.Started).Microseconds()) / 1000
		finish(i, err)
	}
	joinAll()
	st.Finished = time.Now()
	st.DurationMS = float64(st.Finished.Sub(st.Started).Microseconds()) / 1000
	st.State = StateDone
	if b.notes != nil {
		st.Warnings = b.notes.list()
	}
	if len(failed) > 0 || partial || len(st.Warnings) > 0 {
		st.State = StateDegraded
	}
	if stopped != "" {
		st.State, st.Error = StateError, "required handler "+stopped+" failed"
	}
	save()
	return st
}

// besideRun is a handler running beside the chain (Builtin.Beside): its
// result is its own until the chain joins it.
type besideRun struct {
	result Result
	err    error
	done   chan struct{}
}

// deselected says why the run's options leave the handler name out ("" if
// they do not).
func deselected(name string, opts RunOptions) string {
	switch {
	case len(opts.Only) > 0 && !slices.Contains(opts.Only, name):
		return "not selected (--only)"
	case slices.Contains(opts.Skip, name):
		return "skipped (--skip)"
	case slices.Contains(opts.Disabled, name):
		return "disabled in config"
	}
	return ""
}

// prepare calls, when the chain starts, the Prepare of each built-in
// handler that is going to run (selected, and not already run at its
// frequency), so that its background work overlaps the handlers before
// it. A handler kept from running later (a failed need, a stopped chain)
// leaves its prepared work unused.
func prepare(ctx context.Context, b *Boot, hs []Handler, opts RunOptions) {
	if b.DryRun {
		return
	}
	for _, h := range hs {
		bh, ok := h.(builtinHandler)
		if !ok || bh.d.Prepare == nil || deselected(h.Name(), opts) != "" ||
			opts.PerBootOnly != "" && h.Frequency() != state.PerBoot {
			continue
		}
		if !opts.Force {
			if done, err := b.State.Done(h.Frequency(), h.Name()); done || err != nil {
				continue
			}
		}
		if b.prepared == nil {
			b.prepared = map[string]*preparedValue{}
		}
		// Each in its own goroutine: a Prepare may wait (for the
		// user-data) and plan, while the chain's first handlers run.
		pv := &preparedValue{done: make(chan struct{})}
		b.prepared[h.Name()] = pv
		hb := b.forHandler(h, nil, b.Log.With("handler", h.Name()))
		go func() {
			defer close(pv.done)
			pv.v = prepareOne(ctx, hb, bh.d)
		}()
	}
}

// preparedValue is what a Prepare returned, once done is closed.
type preparedValue struct {
	done chan struct{}
	v    any
}

// prepareOne calls d.Prepare; a panic there leaves the work to Run.
func prepareOne(ctx context.Context, b *Boot, d *Builtin) (v any) {
	defer func() {
		if p := recover(); p != nil {
			b.Log.Warn("preparing failed; the handler does all its work when it runs", "error", fmt.Sprint(p))
			v = nil
		}
	}()
	return d.Prepare(ctx, b)
}

// runOne runs a handler, turning a panic into an error so one broken
// handler cannot take the chain (and the status file) down with it.
func runOne(ctx context.Context, b *Boot, h Handler) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("internal error: %v", p)
		}
	}()
	return h.Run(ctx, b)
}

// checkNames checks handler names given by the user against the chain.
func checkNames(hs []Handler, names []string) error {
	for _, n := range names {
		if !slices.ContainsFunc(hs, func(h Handler) bool { return h.Name() == n }) {
			var known []string
			for _, h := range hs {
				known = append(known, h.Name())
			}
			return fmt.Errorf("unknown handler %q (known: %v)", n, known)
		}
	}
	return nil
}
