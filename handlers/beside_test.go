package handlers_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/handlers/handlerstest"
	"github.com/flint-dev/flint/internal/state"
)

// A handler marked Beside starts at its turn and the chain goes on: the
// handler after it runs while it still runs. A handler that Needs it
// waits for it, READY=1 (after "ready") waits for it, and its result is
// recorded as a handler's in line is. Where flint.yaml makes it required,
// and in a dry run, it runs in line.
func TestABesideHandlerRunsWhileTheChainGoesOn(t *testing.T) {
	var (
		mu     sync.Mutex
		events []string
	)
	event := func(e string) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, e)
	}
	var next chan struct{} // closed by "next": the beside handler waits for it
	cat := handlers.Catalog{
		{Name: "slow", Frequency: state.PerBoot, Beside: true, Run: func(_ context.Context, b *handlers.Boot) error {
			select {
			case <-next:
			case <-time.After(2 * time.Second):
				event("slow ran alone")
			}
			b.Note("slow's note")
			event("slow done")
			return errors.New("slow failed")
		}},
		{Name: "next", Frequency: state.PerBoot, Run: func(context.Context, *handlers.Boot) error {
			event("next")
			close(next)
			return nil
		}},
		{Name: "ready", Frequency: state.PerBoot, Ready: true, Run: func(context.Context, *handlers.Boot) error {
			event("ready")
			return nil
		}},
		{Name: "needs", Frequency: state.PerBoot, Needs: []string{"slow"}, Run: func(context.Context, *handlers.Boot) error {
			event("needs")
			return nil
		}},
	}
	in := handlerstest.New(t, cat)
	run := func(mod func(*handlers.Setup)) (*handlers.Status, []string) {
		t.Helper()
		events, next = nil, make(chan struct{})
		var logs bytes.Buffer
		s := in.Setup(&logs, &logs)
		s.Force = true
		s.Notify = func(l string) {
			if l == "READY=1" {
				event("READY=1")
			}
		}
		if mod != nil {
			mod(&s)
		}
		st, err := handlers.Execute(context.Background(), s)
		if err != nil {
			t.Fatalf("run: %v\n%s", err, logs.String())
		}
		mu.Lock()
		defer mu.Unlock()
		return st, slices.Clone(events)
	}

	st, got := run(nil)
	if want := []string{"next", "slow done", "ready", "READY=1"}; len(got) < 4 || !slices.Equal(got[:4], want) {
		t.Errorf("beside: %q, want %q first", got, want)
	}
	if rdy := handlerstest.Result(st, "ready"); st.Ready.Before(rdy.Started) || st.Ready.After(st.Finished) {
		t.Errorf("status ready at %v: \"ready\" started %v, the run finished %v", st.Ready, rdy.Started, st.Finished)
	}
	r := handlerstest.Result(st, "slow")
	if r.Status != handlers.ResultFailed || r.Reason != "slow failed" || !slices.Contains(r.Notes, "slow's note") || r.Started.IsZero() || r.DurationMS <= 0 {
		t.Errorf("slow's result: %+v", r)
	}
	if n := handlerstest.Result(st, "needs"); n.Status != handlers.ResultNotRun {
		t.Errorf("a handler that needs the failed beside one: %+v", n)
	}

	// With slow holding back until next runs, "ready" must still come
	// after it: READY=1 waits for what ran beside.
	cat[3].Needs = nil
	_, got = run(func(s *handlers.Setup) { s.Only = []string{"slow", "next", "ready"} })
	if len(got) < 4 || !slices.Equal(got[:4], []string{"next", "slow done", "ready", "READY=1"}) {
		t.Errorf("READY=1 with a beside handler: %q", got)
	}

	// Required, or a dry run: in line (slow waits its 2 s for next alone).
	in.Config(t, "handlers:\n  required: [slow]\n")
	st, got = run(nil)
	if len(got) < 2 || !slices.Equal(got[:2], []string{"slow ran alone", "slow done"}) || st.State != handlers.StateError {
		t.Errorf("required beside handler: %q, state %s", got, st.State)
	}
	in.Config(t, "")
	_, got = run(func(s *handlers.Setup) { s.DryRun = true })
	if len(got) < 2 || !slices.Equal(got[:2], []string{"slow ran alone", "slow done"}) {
		t.Errorf("a dry run: %q", got)
	}
}
