package handlers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/flint-dev/flint/internal/rootfs"
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
	// Explain ends the error of a failed run with the program's last line
	// of output: tools flint runs as checks (sshd -t, visudo -c) say there
	// why they refused. Never for user-data's programs, whose output may
	// hold secrets and belongs in the output log only.
	Explain bool
}

// lastLine keeps the last non-empty line written to it (capped).
type lastLine struct {
	cur, last []byte
}

func (l *lastLine) Write(p []byte) (int, error) {
	for _, c := range p {
		if c == '\n' {
			if len(bytes.TrimSpace(l.cur)) > 0 {
				l.last = append(l.last[:0], l.cur...)
			}
			l.cur = l.cur[:0]
			continue
		}
		if len(l.cur) < 200 {
			l.cur = append(l.cur, c)
		}
	}
	return len(p), nil
}

func (l *lastLine) String() string {
	if len(bytes.TrimSpace(l.cur)) > 0 {
		return string(bytes.TrimSpace(l.cur))
	}
	return string(bytes.TrimSpace(l.last))
}

// killGrace is how long a timed-out process group has between SIGTERM and SIGKILL.
const killGrace = 2 * time.Second

// ProcessPath is the PATH programs run with, and where a bare program
// name is looked up (inside the root when chrooted).
const ProcessPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// chrootNeeds are what a root must hold for programs to run inside it:
// a shell, and the mount points given the host's /proc, /sys and /dev.
var chrootNeeds = []string{"bin/sh", "proc", "sys", "dev"}

// CheckBootable reports whether programs can run chrooted in root (with
// --root DIR --live), naming what is missing when they cannot.
func CheckBootable(root *rootfs.Root) error {
	var missing []string
	for _, n := range chrootNeeds {
		res := rootfs.Strict
		if n == "bin/sh" {
			res = rootfs.InRoot // commonly a link to dash or busybox
		}
		fi, err := root.Stat(n, res)
		if err != nil || (n != "bin/sh" && !fi.IsDir()) || (n == "bin/sh" && fi.Mode()&0o111 == 0) {
			missing = append(missing, "/"+n)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s is not a bootable root: no %s inside it (with --root DIR --live every program runs chrooted in DIR)", root.Dir(), strings.Join(missing, ", "))
	}
	return nil
}

// RunProcess runs p in its own process group. With the root "/" it runs
// directly, in "/". With another root it runs chrooted in that root, in
// a private mount namespace where the root's /proc is a new proc mount
// and its /sys and /dev are the host's (bound recursively); host paths
// below the root in argv and the environment are given as the program
// sees them. Its output goes to the output log (capped per process); a
// non-zero exit, a signal or a timeout is an error naming it.
func (b *Boot) RunProcess(ctx context.Context, p Process) error {
	if len(p.Argv) == 0 {
		return errors.New("empty command")
	}
	chroot := !b.Root.IsHost()
	if chroot {
		if err := CheckBootable(b.Root); err != nil {
			return fmt.Errorf("%s: %w", p.Name, err)
		}
	}
	env := append([]string{
		"PATH=" + ProcessPath,
		"LANG=C.UTF-8",
		"HOME=/root",
		"FLINT_ROOT=" + b.Root.Dir(),
		"FLINT_INSTANCE_ID=" + b.InstanceID,
	}, p.Env...)
	var cmd *exec.Cmd
	if chroot {
		argv := make([]string, len(p.Argv))
		for i, a := range p.Argv {
			argv[i] = b.inRoot(a)
		}
		for i, e := range env {
			k, v, _ := strings.Cut(e, "=")
			env[i] = k + "=" + b.inRoot(v)
		}
		path, err := b.lookInRoot(argv[0])
		if err != nil {
			return fmt.Errorf("%s: %w", p.Name, err)
		}
		cmd = &exec.Cmd{Path: path, Args: argv, Dir: "/"}
	} else {
		cmd = exec.Command(p.Argv[0], p.Argv[1:]...)
		cmd.Dir = b.Root.Dir()
	}
	cmd.Env = env
	if p.Stdin != nil {
		cmd.Stdin = bytes.NewReader(p.Stdin)
	}
	out := b.Output.Writer(p.Name)
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	var tail lastLine
	if p.Explain {
		w := io.MultiWriter(out, &tail)
		cmd.Stdout, cmd.Stderr = w, w
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Children that keep the output pipe open must not hold Wait forever.
	cmd.WaitDelay = killGrace
	start := cmd.Start
	if chroot {
		cmd.SysProcAttr.Chroot = b.Root.Dir()
		start = func() error { return startInMountNamespace(b.Root, cmd) }
	}
	if err := start(); err != nil {
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
		if err := out.Err(); err != nil {
			b.Log.Warn("output not kept", "process", p.Name, "error", err)
			b.Warn("the output of programs was not all kept in %s: %v", OutputLogPath, err)
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
			if why := tail.String(); why != "" {
				return fmt.Errorf("%s: exited with status %d: %s", p.Name, ee.ExitCode(), why)
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

// inRoot gives a host path below the root as seen from inside it; other
// strings are returned as they are.
func (b *Boot) inRoot(s string) string {
	dir := b.Root.Dir()
	if s == dir {
		return "/"
	}
	if rest, ok := strings.CutPrefix(s, dir+"/"); ok {
		return "/" + rest
	}
	return s
}

// lookInRoot resolves a program name on ProcessPath inside the root, as
// the shell of the root would.
func (b *Boot) lookInRoot(name string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	for _, d := range filepath.SplitList(ProcessPath) {
		p := filepath.Join(d, name)
		if fi, err := b.Root.Stat(p, rootfs.InRoot); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found in %s (PATH %s)", name, b.Root.Dir(), ProcessPath)
}

// startInMountNamespace starts cmd (whose SysProcAttr chroots it into
// root) from a thread that first enters a mount namespace of its own:
// there, mounts do not propagate to the host, the root gets a proc mount
// and the host's /sys and /dev, and the forked child inherits all of it.
// The thread is never unlocked, so it exits with its namespace instead
// of going back to the scheduler; the namespace lives as long as the
// program (or anything it left running) does.
func startInMountNamespace(root *rootfs.Root, cmd *exec.Cmd) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		errc <- func() error {
			if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
				return fmt.Errorf("a private mount namespace for %s: %w", root.Dir(), err)
			}
			if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
				return fmt.Errorf("making mounts private: %w", err)
			}
			// Each mount point is opened without following any symlink
			// and mounted on through its descriptor: a link planted in
			// the root cannot send a mount elsewhere.
			mounts := []struct {
				src, dst, fstype string
				flags            uintptr
			}{
				{"proc", "proc", "proc", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC},
				{"/sys", "sys", "", unix.MS_BIND | unix.MS_REC},
				{"/dev", "dev", "", unix.MS_BIND | unix.MS_REC},
			}
			for _, m := range mounts {
				// One path element below the root, opened with O_NOFOLLOW.
				fd, err := unix.Open(root.Path(m.dst), unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
				if err != nil {
					return fmt.Errorf("mount point %s: %w", root.Path(m.dst), err)
				}
				err = unix.Mount(m.src, fmt.Sprintf("/proc/self/fd/%d", fd), m.fstype, m.flags, "")
				unix.Close(fd)
				if err != nil {
					return fmt.Errorf("mounting %s on %s: %w", m.src, root.Path(m.dst), err)
				}
			}
			return cmd.Start()
		}()
	}()
	return <-errc
}
