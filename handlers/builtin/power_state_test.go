package builtin

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flint-dev/flint/cloudconfig"
	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/handlers/handlerstest"
)

func TestThePowerStateScriptWaitsThenChecksTheCondition(t *testing.T) {
	done := exec.Command("true")
	if err := done.Run(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cond []string
		sh   bool
		runs bool
	}{
		{"without a condition", nil, false, true},
		{"with a shell condition that holds", []string{"test -d /"}, true, true},
		{"with an argv condition that fails", []string{"false"}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			marker := filepath.Join(t.TempDir(), "it's done")
			plan := &cloudconfig.PowerStatePlan{Command: []string{"touch", marker}, Timeout: 5, Static: tc.cond == nil, Condition: tc.cond, ConditionShell: tc.sh}
			if out, err := exec.Command("/bin/sh", "-c", powerStateScript(plan, done.Process.Pid)).CombinedOutput(); err != nil {
				t.Fatalf("%v %s", err, out)
			}
			if _, err := os.Stat(marker); (err == nil) != tc.runs {
				t.Errorf("command ran: %v, want %v", err == nil, tc.runs)
			}
		})
	}
}

func TestPowerStateOnAnotherRootIsPlanned(t *testing.T) {
	in := planInstance(t, "#cloud-config\npower_state: {mode: reboot, delay: 5, message: bye}\n", nil)
	st, out := in.Run(t, func(s *handlers.Setup) { s.Only = []string{"final-message", "power-state"} })
	r := handlerstest.Result(st, "power-state")
	if r.Status != handlers.ResultPlanned || !strings.Contains(strings.Join(r.Notes, "\n"), "would run shutdown -r +5 bye once flint has exited") {
		t.Fatalf("power-state %s: %s %q\n%s", r.Status, r.Reason, r.Notes, out)
	}
}

func TestPowerStateBadInputIsOneLine(t *testing.T) {
	in := planInstance(t, "#cloud-config\npower_state: {mode: sleep}\n", nil)
	st, out := in.Run(t, func(s *handlers.Setup) { s.Only = []string{"power-state", "final-message"} })
	wantOneFailedLine(t, st, out, "power-state", `power_state.mode: must be one of halt, poweroff, reboot; found "sleep"; not performing the power state change`)
}
