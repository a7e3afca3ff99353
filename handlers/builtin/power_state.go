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
// system only: with another root it is planned.
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
	if b.DryRun || !b.Root.IsHost() {
		b.Note("would run %s once flint has exited (waiting at most %gs)", what, plan.Timeout)
		if b.DryRun {
			return nil
		}
		return fmt.Errorf("%s (the running system only): %w", plan.Command[0], handlers.ErrNotLive)
	}
	script := powerStateScript(plan, os.Getpid())
	var cmd *exec.Cmd
	if underSystemd() {
		cmd = exec.Command("systemd-run", "--no-block", "--collect", "--unit=flint-power-state", "--description=flint power_state", "/bin/sh", "-c", script)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("power_state: systemd-run: %w: %s", err, firstLineOf(string(out)))
		}
	} else {
		cmd = exec.Command("/bin/sh", "-c", script)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("power_state: %w", err)
		}
		cmd.Process.Release()
	}
	b.Note("%s once flint has exited (waiting at most %gs)", what, plan.Timeout)
	return nil
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
