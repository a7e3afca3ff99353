package builtin

import (
	"reflect"
	"slices"
	"testing"

	"github.com/flint-dev/flint/internal/state"
)

func TestEveryBuiltinDescribesItselfCompletely(t *testing.T) {
	var seen, sections []string
	ready := 0
	for _, d := range Catalog() {
		switch {
		case !state.ValidName(d.Name) || slices.Contains(seen, d.Name):
			t.Errorf("%q: a name must be unique and safe as a semaphore name", d.Name)
		case d.Run == nil:
			t.Errorf("%s: no run function", d.Name)
		case d.Frequency != state.PerBoot && d.Frequency != state.PerInstance && d.Frequency != state.Once:
			t.Errorf("%s: frequency %q", d.Name, d.Frequency)
		case (d.Section == "") != (d.Config == nil):
			t.Errorf("%s: section %q without its config type, or a type without a section", d.Name, d.Section)
		case d.Section != "" && slices.Contains(sections, d.Section):
			t.Errorf("%s: section %q is owned twice", d.Name, d.Section)
		case d.Config != nil && reflect.TypeOf(d.Config()).Kind() != reflect.Pointer:
			t.Errorf("%s: Config must return a pointer to decode into, not %T", d.Name, d.Config())
		}
		for _, n := range d.Needs {
			if !slices.Contains(seen, n) {
				t.Errorf("%s needs %q, which does not run before it", d.Name, n)
			}
		}
		if d.Ready {
			ready++
		}
		seen = append(seen, d.Name)
		if d.Section != "" {
			sections = append(sections, d.Section)
		}
	}
	if ready != 1 {
		t.Errorf("%d handlers mark readiness, want exactly one", ready)
	}
}
