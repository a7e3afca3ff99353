package handlers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"syscall"
	"time"
)

// Process is one external program a handler runs (exec plug-in, script,
// runcmd), with its output going to the output log.
type Process struct {
	// Name labels the output in the log ("handlers.d/10-x", "part-001").
	Name string
	Argv []string
	// Env is added to a minimal environment (PATH, LANG, HOME, FLINT_ROOT…).
	Env   []string
	Stdin []byte
	// Timeout kills the process group (TERM, then KILL after a grace period).
	Timeout time.Duration
}

// killGrace is how long a timed-out process group has between SIGTERM and SIGKILL.
const killGrace = 2 * time.Second

// RunProcess runs p in its own process group with the root as working
// directory. Its output goes to the output log (capped per process); a
// non-zero exit, a signal or a timeout is an error naming it.
func (b *Boot) RunProcess(ctx context.Context, p Process) error {
	if len(p.Argv) == 0 {
		return errors.New("empty command")
	}
	cmd := exec.Command(p.Argv[0], p.Argv[1:]...)
	cmd.Dir = b.Root.Dir()
	cmd.Env = append([]string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"LANG=C.UTF-8",
		"HOME=/root",
		"FLINT_ROOT=" + b.Root.Dir(),
		"FLINT_INSTANCE_ID=" + b.InstanceID,
	}, p.Env...)
	if p.Stdin != nil {
		cmd.Stdin = bytes.NewReader(p.Stdin)
	}
	out := b.Output.Writer(p.Name)
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Children that keep the output pipe open must not hold Wait forever.
	cmd.WaitDelay = killGrace
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", p.Name, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var timeout <-chan time.Time
	if p.Timeout > 0 {
		t := time.NewTimer(p.Timeout)
		defer t.Stop()
		timeout = t.C
	}
	kill := func(why string) error {
		pg := -cmd.Process.Pid
		syscall.Kill(pg, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(killGrace):
			syscall.Kill(pg, syscall.SIGKILL)
			<-done
		}
		return fmt.Errorf("%s: %s, killed", p.Name, why)
	}
	select {
	case err := <-done:
		if d := out.Dropped(); d > 0 {
			b.Note("%s: output over %d bytes, %d bytes dropped", p.Name, PerProcessCap, d)
		}
		if errors.Is(err, exec.ErrWaitDelay) {
			// The program exited 0 but left a child holding its output
			// (a daemon started with &): that is its business.
			b.Note("%s: left a background process running; its later output is not captured", p.Name)
			return nil
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				return fmt.Errorf("%s: killed by signal %v", p.Name, ws.Signal())
			}
			return fmt.Errorf("%s: exited with status %d", p.Name, ee.ExitCode())
		}
		if err != nil {
			return fmt.Errorf("%s: %w", p.Name, err)
		}
		return nil
	case <-timeout:
		return kill(fmt.Sprintf("timed out after %v", p.Timeout))
	case <-ctx.Done():
		return kill("run cancelled")
	}
}
