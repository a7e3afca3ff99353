package builtin

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"github.com/flint-dev/flint/cloudconfig"
	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/internal/state"
)

// powerStateHandler is cloud-init's power_state_change, once per
// instance, last of the built-in handlers as in cloud-init's final stage:
// cloudconfig.PowerState plans the shutdown command. As cloud-init does,
// the command runs from a process of its own that waits for flint to exit
// (at most `timeout` seconds), then checks `condition`: under systemd a
// transient unit (systemd-run), so stopping flint.service does not kill
// it, else a process in a session of its own. It acts on the running
// system only: with another root it is planned. It is started at most
// once per instance (step.begin): never again after a crash, a later
// failure or a run that could not record it, and not at all without
// its record.
var powerStateHandler = handlers.Builtin{Name: "power-state", Frequency: state.PerInstance, Run: runPowerState}

func runPowerState(ctx context.Context, b *handlers.Boot) error {
	ud, err := b.UserData(ctx)
	if err != nil {
		return err
	}
	plan, err := cloudconfig.PowerState(ud.Config["power_state"])
	if err != nil {
		return fmt.Errorf("%w; not performing the power state change", err)
	}
	if plan == nil {
		if _, ok := ud.Config["power_state"]; ok {
			b.Note("condition false: no power state change")
		}
		return nil
	}
	what := strings.Join(plan.Command, " ")
	if plan.Condition != nil {
		what += " if " + strings.Join(plan.Condition, " ") + " succeeds"
	}
	if b.DryRun || !powerStateHere(b) {
		b.Note("would run %s once flint has exited (waiting at most %gs)", what, plan.Timeout)
		if b.DryRun {
			return nil
		}
		return fmt.Errorf("%s (the running system only): %w", plan.Command[0], handlers.ErrNotLive)
	}
	// A shutdown asked once per instance must not come back at every
	// boot where the handler runs again (a disk that cannot record it
	// would make a reboot loop of mode: reboot).
	start := step{key: "power-state", what: "power_state " + plan.Command[0]}
	if !start.beginOrWait(b) {
		return nil
	}
	if err := startPowerState(powerStateScript(plan, os.Getpid())); err != nil {
		// Nothing was started: a later boot tries again.
		start.forget(b)
		return err
	}
	b.Note("%s once flint has exited (waiting at most %gs)", what, plan.Timeout)
	return nil
}

// powerStateHere says whether the power state change acts here: on the
// running system only.
var powerStateHere = func(b *handlers.Boot) bool { return b.Root.IsHost() }

// startPowerState starts script in a process of its own that outlives
// flint: a transient unit under systemd, else a new session.
var startPowerState = func(script string) error {
	if underSystemd() {
		cmd := exec.Command("systemd-run", "--no-block", "--collect", "--unit=flint-power-state", "--description=flint power_state", "/bin/sh", "-c", script)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("power_state: systemd-run: %w: %s", err, firstLineOf(string(out)))
		}
		return nil
	}
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("power_state: %w", err)
	}
	return cmd.Process.Release()
}

// powerStateScript is the shell program that waits for process pid to
// exit (at most the plan's timeout, in whole seconds), then runs the
// plan's condition and, when it succeeds, its command.
func powerStateScript(plan *cloudconfig.PowerStatePlan, pid int) string {
	var s strings.Builder
	fmt.Fprintf(&s, "i=0; while kill -0 %d 2>/dev/null && [ $i -lt %d ]; do sleep 1; i=$((i+1)); done; ", pid, int(plan.Timeout+0.999))
	if !plan.Static {
		if plan.ConditionShell {
			fmt.Fprintf(&s, "sh -c %s", shellQuote(plan.Condition[0]))
		} else {
			s.WriteString(shellQuoteArgs(plan.Condition))
		}
		s.WriteString(" || exit 0; ")
	}
	s.WriteString("exec " + shellQuoteArgs(plan.Command))
	return s.String()
}

func shellQuoteArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = shellQuote(a)
	}
	return strings.Join(q, " ")
}

// shellQuote quotes s for sh: in single quotes, each quote in s
// closed, escaped with a backslash and reopened.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// firstLineOf is s's first non-empty line.
func firstLineOf(s string) string {
	s = strings.TrimSpace(s)
	first, _, _ := strings.Cut(s, "\n")
	return first
}
