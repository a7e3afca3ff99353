package builtin

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/handlers/handlerstest"
	"github.com/flint-dev/flint/internal/testenv"
)

func TestScriptInterruptedByACrashIsReportedAndNeverReRun(t *testing.T) {
	in := udInstance(t, mimeDoc(
		// Kills flint, its parent, while it runs: a power cut mid-script.
		udPart{"text/x-shellscript", "a-crash.sh", "#!/bin/sh\necho . >> \"$FLINT_ROOT/runs-a\"\nkill -9 $PPID\nsleep 1\n"},
		udPart{"text/x-shellscript", "b-after.sh", "#!/bin/sh\necho . >> \"$FLINT_ROOT/runs-b\"\n"},
	))
	run := func() (*handlers.Status, error) {
		err := in.Flint(t, "run", "--root", in.Root, "--live", "--skip", "network").Run()
		st, rerr := handlers.ReadStatusDir(in.Root)
		if rerr != nil {
			t.Fatalf("status: %v", rerr)
		}
		return st, err
	}
	_, err := run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("first run: %v, want flint killed by SIGKILL", err)
	}
	st, _ := run()
	r := handlerstest.Result(st, "scripts")
	if r.Status != handlers.ResultFailed || !strings.Contains(r.Reason, "user-data/a-crash.sh: interrupted in an earlier run; not run again") {
		t.Errorf("after the crash: scripts %s (%s), want failed as interrupted", r.Status, r.Reason)
	}
	if !strings.Contains(strings.Join(r.Notes, "\n"), "user-data/b-after.sh: ok") {
		t.Errorf("the script after the interrupted one did not run: %q", r.Notes)
	}
	// Other handlers may fail in a bare root; only scripts is judged here.
	st, err = run()
	if r := handlerstest.Result(st, "scripts"); r.Status != handlers.ResultOK || !strings.Contains(strings.Join(r.Notes, "\n"), "a-crash.sh: already ran (interrupted)") {
		t.Errorf("third run: %v, scripts %s %q", err, r.Status, r.Notes)
	}
	for _, f := range []string{"runs-a", "runs-b"} {
		if n := in.CountRuns(f); n != 1 {
			t.Errorf("%s: ran %d times, want exactly once", f, n)
		}
	}
}

// The default fixture's user-data writes /etc/motd and has a script and
// runcmd write to $FLINT_ROOT/var/tmp: everything lands in the root.
func TestDefaultFixtureUserDataEndToEnd(t *testing.T) {
	in := newInstance(t)
	os.MkdirAll(filepath.Join(in.Root, "var/tmp"), 0o1777)
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(testenv.FlintBinary(t), "run", "--root", in.Root, "--live", "--skip", "network")
	cmd.Env = append(os.Environ(), "AWS_EC2_METADATA_SERVICE_ENDPOINT="+in.URL)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Run()
	for _, f := range []string{"flint-userdata-script", "flint-runcmd"} {
		b, _ := os.ReadFile(filepath.Join(in.Root, "var/tmp", f))
		stdout.Write(b)
	}
	out := stdout.String()
	for _, s := range []string{"user-data script ran", "runcmd ran"} {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q:\n%s\nstderr:\n%s", s, out, stderr.String())
		}
	}
	if !strings.Contains(stderr.String(), "flint: boot finished") {
		t.Errorf("final message not on the console:\n%s", stderr.String())
	}
	motd, err := os.ReadFile(filepath.Join(in.Root, "etc/motd"))
	fi, _ := os.Stat(filepath.Join(in.Root, "etc/motd"))
	if err != nil || string(motd) != "Provisioned by flint.\n" || fi.Mode().Perm() != 0o644 {
		t.Errorf("etc/motd: %q, %v", motd, err)
	}
	// Only the user-data handlers are judged: others may need more of an
	// image than this bare root has.
	st, err := handlers.ReadStatusDir(in.Root)
	if err != nil || st.State == handlers.StateRunning || st.State == handlers.StateError {
		t.Fatalf("status %+v %v", st, err)
	}
	for _, name := range []string{"boothooks", "bootcmd", "write-files", "timezone", "packages", "runcmd", "write-files-deferred", "scripts", "final-message"} {
		if r := handlerstest.Result(st, name); r.Status != handlers.ResultOK {
			t.Errorf("%s: %s %s", name, r.Status, r.Reason)
		}
	}
}
