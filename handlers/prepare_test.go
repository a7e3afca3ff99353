package handlers_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/handlers/handlerstest"
	"github.com/flint-dev/flint/internal/state"
)

// A handler's Prepare is called when the chain starts, in its own
// goroutine (the handler ahead of it sees it called), and only when the
// handler is going to run; its Run gets what Prepare returned.
func TestPrepareStartsAHandlersWorkWhenTheChainStarts(t *testing.T) {
	var (
		mu       sync.Mutex
		events   []string
		prepared chan struct{}
	)
	event := func(e string) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, e)
	}
	cat := handlers.Catalog{
		{Name: "first", Frequency: state.PerBoot, Run: func(context.Context, *handlers.Boot) error {
			select {
			case <-prepared:
			case <-time.After(2 * time.Second):
			}
			event("run first")
			return nil
		}},
		{Name: "later", Frequency: state.PerInstance,
			Prepare: func(context.Context, *handlers.Boot) any {
				event("prepare later")
				close(prepared)
				return 42
			},
			Run: func(_ context.Context, b *handlers.Boot) error {
				event(fmt.Sprint("run later with ", b.Prepared()))
				return nil
			}},
		{Name: "panics", Frequency: state.PerInstance,
			Prepare: func(context.Context, *handlers.Boot) any { panic("boom") },
			Run: func(_ context.Context, b *handlers.Boot) error {
				event(fmt.Sprint("run panics with ", b.Prepared()))
				return nil
			}},
	}
	in := handlerstest.New(t, cat)
	run := func(mod func(*handlers.Setup)) []string {
		t.Helper()
		events, prepared = nil, make(chan struct{})
		var logs bytes.Buffer
		s := in.Setup(&logs, &logs)
		if mod != nil {
			mod(&s)
		}
		st, err := handlers.Execute(context.Background(), s)
		if err != nil || st.State != handlers.StateDone {
			t.Fatalf("run: %v %s\n%s", err, st.State, logs.String())
		}
		return events
	}
	for _, c := range []struct {
		name string
		mod  func(*handlers.Setup)
		want []string
	}{
		{"a first boot", nil, []string{"prepare later", "run first", "run later with 42", "run panics with <nil>"}},
		{"a reboot: later ran for this instance", nil, []string{"run first"}},
		{"forced", func(s *handlers.Setup) { s.Force = true; s.Skip = []string{"panics"} }, []string{"prepare later", "run first", "run later with 42"}},
		{"skipped", func(s *handlers.Setup) { s.Force = true; s.Skip = []string{"later", "panics"} }, []string{"run first"}},
		{"a dry run", func(s *handlers.Setup) { s.Force = true; s.DryRun = true; s.Only = []string{"later"} }, []string{"run later with <nil>"}},
	} {
		if got := run(c.mod); !slices.Equal(got, c.want) {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
