package handlers_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/handlers/handlerstest"
	"github.com/flint-dev/flint/imds/imdstest"
)

// pluginInput runs a chain with one plug-in that saves its stdin, and
// returns the decoded input and the plug-in's result.
func pluginInput(t *testing.T, in *instance) (map[string]any, handlers.Result) {
	t.Helper()
	in.Plugin(t, "10-save", `cat > "$FLINT_ROOT/input.json"`+"\n")
	st := chain(t, in, nil)
	r := handlerstest.Result(st, "10-save")
	var input map[string]any
	b, err := os.ReadFile(filepath.Join(in.Root, "input.json"))
	if err != nil {
		t.Fatalf("the plug-in did not run: %v (%s: %s)", err, r.Status, r.Reason)
	}
	if err := json.Unmarshal(b, &input); err != nil {
		t.Fatalf("plug-in stdin %s: %v", b, err)
	}
	return input, r
}

func TestPluginsGetTheInstanceTagsWhenTheInstanceExposesThem(t *testing.T) {
	in := newInstance(t)
	input, r := pluginInput(t, in)
	want := map[string]any{"Name": "web-1", "Environment": "staging"}
	if got := input["tags"]; !reflect.DeepEqual(got, want) {
		t.Errorf("plug-in tags %v, want %v (the fixture's)", got, want)
	}
	if r.Status != handlers.ResultOK {
		t.Errorf("plug-in %s: %s", r.Status, r.Reason)
	}
}

func TestPluginsRunWithoutTagsWhenThereAreNoneOrTheyCannotBeRead(t *testing.T) {
	t.Run("tags not exposed (404)", func(t *testing.T) {
		in := newInstance(t)
		if !in.Emu.Delete("meta-data/tags") {
			t.Fatal("the fixture has no meta-data/tags to remove")
		}
		input, r := pluginInput(t, in)
		if _, ok := input["tags"]; ok {
			t.Errorf("plug-in input has tags %v on an instance without them", input["tags"])
		}
		if r.Status != handlers.ResultOK || len(r.Notes) != 0 {
			t.Errorf("plug-in %s (%s), notes %q; want ok and nothing to say", r.Status, r.Reason, r.Notes)
		}
	})
	t.Run("tags refused", func(t *testing.T) {
		in := newInstance(t)
		in.Emu.AddFault(imdstest.Fault{Path: "meta-data/tags/instance*", Status: 403})
		input, r := pluginInput(t, in)
		if _, ok := input["tags"]; ok {
			t.Errorf("plug-in input has tags %v though they could not be read", input["tags"])
		}
		if r.Status != handlers.ResultOK || !strings.Contains(strings.Join(r.Notes, " "), "instance tags not given to the plug-in") {
			t.Errorf("plug-in %s (%s), notes %q; want ok with a note about the tags", r.Status, r.Reason, r.Notes)
		}
		if input["instance_id"] != "i-0123456789abcdef0" {
			t.Errorf("plug-in input %v lacks the rest", input)
		}
	})
}
