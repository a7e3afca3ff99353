package handlers_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/handlers/handlerstest"
	"github.com/flint-dev/flint/internal/state"
)

// A handler's Prepare is called when the chain starts, before the
// handlers ahead of it run, and only when the handler is going to run;
// its Run gets what Prepare returned.
func TestPrepareStartsAHandlersWorkWhenTheChainStarts(t *testing.T) {
	var events []string
	cat := handlers.Catalog{
		{Name: "first", Frequency: state.PerBoot, Run: func(context.Context, *handlers.Boot) error {
			events = append(events, "run first")
			return nil
		}},
		{Name: "later", Frequency: state.PerInstance,
			Prepare: func(context.Context, *handlers.Boot) any {
				events = append(events, "prepare later")
				return 42
			},
			Run: func(_ context.Context, b *handlers.Boot) error {
				events = append(events, fmt.Sprint("run later with ", b.Prepared()))
				return nil
			}},
		{Name: "panics", Frequency: state.PerInstance,
			Prepare: func(context.Context, *handlers.Boot) any { panic("boom") },
			Run: func(_ context.Context, b *handlers.Boot) error {
				events = append(events, fmt.Sprint("run panics with ", b.Prepared()))
				return nil
			}},
	}
	in := handlerstest.New(t, cat)
	run := func(mod func(*handlers.Setup)) []string {
		t.Helper()
		events = nil
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
