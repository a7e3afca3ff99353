package handlers_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/handlers/handlerstest"
	"github.com/flint-dev/flint/internal/rootfs"
	"github.com/flint-dev/flint/internal/testenv"
)

// watchStatus parses the status file continuously until stop is closed and
// reports reads that were not valid JSON: it must never be half-written.
func watchStatus(t *testing.T, root string) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	var reads, bad atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		path := filepath.Join(root, handlers.StatusPath)
		for {
			select {
			case <-done:
				return
			default:
			}
			b, err := os.ReadFile(path)
			if err != nil {
				continue
			}
			reads.Add(1)
			var st handlers.Status
			if json.Unmarshal(b, &st) != nil {
				bad.Add(1)
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
		if bad.Load() > 0 {
			t.Errorf("%d of %d reads of status.json were not valid JSON", bad.Load(), reads.Load())
		}
		if reads.Load() == 0 {
			t.Errorf("status.json was never read")
		}
	}
}

func TestCrashAfterHandlerNReRunsFromN(t *testing.T) {
	for n := 1; n <= 3; n++ {
		t.Run(fmt.Sprintf("kill -9 during plug-in %d", n), func(t *testing.T) {
			in := newInstance(t)
			for i := 1; i <= 3; i++ {
				crash := ""
				if i == n {
					// Kills flint (the plug-in's parent) the first time only.
					crash = `if [ ! -e "$FLINT_ROOT/crashed" ]; then touch "$FLINT_ROOT/crashed"; kill -9 $PPID; sleep 0.2; exit 0; fi` + "\n"
				}
				in.Plugin(t, fmt.Sprintf("%d0-p%d", i, i), crash+fmt.Sprintf(`echo . >> "$FLINT_ROOT/runs-%d"`, i)+"\n")
			}
			stop := watchStatus(t, in.Root)
			err := in.Flint(t, "run", "--root", in.Root, "--live", "--only", onlyHostnameAndPlugins(in)).Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("first run: %v, want killed by SIGKILL", err)
			}
			st, err := handlers.ReadStatusDir(in.Root)
			if err != nil || st.State != handlers.StateRunning {
				t.Fatalf("status after the crash: %+v, %v; want a valid 'running' status", st, err)
			}
			out, err := in.Flint(t, "run", "--root", in.Root, "--live", "--only", onlyHostnameAndPlugins(in)).CombinedOutput()
			if err != nil {
				t.Fatalf("second run: %v\n%s", err, out)
			}
			stop()
			st, _ = handlers.ReadStatusDir(in.Root)
			for i := 1; i <= 3; i++ {
				want := "ok"
				if i < n {
					want = "skipped"
				}
				if got := handlerstest.Result(st, fmt.Sprintf("%d0-p%d", i, i)).Status; got != want {
					t.Errorf("after crash in %d: plug-in %d is %s, want %s", n, i, got, want)
				}
				if runs := in.CountRuns(fmt.Sprintf("runs-%d", i)); runs != 1 {
					t.Errorf("plug-in %d completed %d times, want exactly 1", i, runs)
				}
			}
		})
	}
}

// onlyHostnameAndPlugins is an --only list: hostname and the instance's
// exec plug-ins, so the whole-process tests are about the chain alone.
func onlyHostnameAndPlugins(in *instance) string {
	names := []string{"hostname"}
	ents, _ := os.ReadDir(filepath.Join(in.Root, "etc/flint/handlers.d"))
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return strings.Join(names, ",")
}

func TestStatusWaitReturnsWhenTheRunEndsEvenIfStartedFirst(t *testing.T) {
	in := newInstance(t)
	in.Plugin(t, "10-slow", "sleep 0.5\n")
	var waitOut bytes.Buffer
	waiter := in.Flint(t, "status", "--wait", "--root", in.Root)
	waiter.Stdout = &waitOut
	if err := waiter.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- waiter.Wait() }()
	time.Sleep(300 * time.Millisecond)
	select {
	case err := <-exited:
		t.Fatalf("status --wait returned before any run: %v %q", err, waitOut.String())
	default:
	}
	out, err := in.Flint(t, "run", "--root", in.Root, "--live", "--only", onlyHostnameAndPlugins(in)).CombinedOutput()
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("status --wait: %v", err)
		}
	case <-time.After(20 * time.Second):
		waiter.Process.Kill()
		t.Fatal("status --wait did not return after the run ended")
	}
	if !strings.Contains(waitOut.String(), "status: done") {
		t.Errorf("status --wait printed %q", waitOut.String())
	}
	// A degraded run: exit code 2.
	in.Plugin(t, "20-fails", "exit 1\n")
	in.Flint(t, "run", "--root", in.Root, "--live", "--only", onlyHostnameAndPlugins(in)).Run()
	err = in.Flint(t, "status", "--wait", "--root", in.Root).Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Errorf("status after a degraded run: %v, want exit 2", err)
	}
}

func TestAnalyzePrintsEveryHandlerWithTotals(t *testing.T) {
	in := newInstance(t)
	in.Plugin(t, "10-x", "true\n")
	if out, err := in.Flint(t, "run", "--root", in.Root, "--live", "--only", onlyHostnameAndPlugins(in)).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	out, err := in.Flint(t, "analyze", "--root", in.Root).Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"hostname", "10-x", "2 handlers ran in", "the whole run took"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("analyze output lacks %q:\n%s", want, out)
		}
	}
}

func TestSystemdIsToldProgressAndReadiness(t *testing.T) {
	in := newInstance(t)
	// A default user, so the run is done, not degraded by root's keys
	// having nobody to send logins to.
	in.Config(t, "users:\n  default_user:\n    name: admin\n")
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// notified runs flint with NOTIFY_SOCKET and returns what it sent,
	// reading while it runs (a datagram queue holds only a few messages).
	notified := func(args ...string) []string {
		var got []string
		done := make(chan struct{})
		go func() {
			defer close(done)
			buf := make([]byte, 4096)
			for {
				conn.SetReadDeadline(time.Now().Add(3 * time.Second))
				n, err := conn.Read(buf)
				if err != nil {
					return
				}
				got = append(got, string(buf[:n]))
				if string(buf[:n]) == "STATUS=done" || string(buf[:n]) == "STATUS=degraded" {
					conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
				}
			}
		}()
		cmd := in.Flint(t, args...)
		cmd.Env = append(cmd.Env, "NOTIFY_SOCKET="+sock)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		<-done
		return got
	}
	got := notified("run", "--root", in.Root, "--only", "hostname")
	all := strings.Join(got, "|")
	if len(got) == 0 || !strings.Contains(all, "STATUS=running hostname") || !strings.Contains(all, "STATUS=done") || got[len(got)-1] != "READY=1" {
		t.Errorf("notifications %q: want STATUS=running hostname…, STATUS=done, then READY=1", got)
	}
	// A whole chain tells systemd it is ready once host keys are done, so
	// sshd need not wait for packages, runcmd and scripts.
	got = notified("run", "--root", in.Root, "--skip", "network")
	ready := slices.Index(got, "READY=1")
	scripts := slices.IndexFunc(got, func(s string) bool { return strings.HasPrefix(s, "STATUS=running scripts") })
	if ready < 0 || scripts < 0 || ready > scripts {
		t.Errorf("notifications %q: want READY=1 before scripts run", got)
	}
}

// crashUserData makes a first boot make a user with a password, write a
// file and run a command that counts its runs.
const crashUserData = `#cloud-config
users:
  - default
  - name: carol
    lock_passwd: false
    passwd: "$6$crash$Hash"
write_files:
  - path: /etc/crash-file
    content: |
      written whole or not at all
runcmd:
  - [sh, -c, "mkdir -p ${FLINT_ROOT:-}/var/tmp && echo . >> ${FLINT_ROOT:-}/var/tmp/runcmd-runs"]
`

// TestAKill9BeforeEveryStateWriteOfAFirstBootThenANormalBootFinishesOnce
// kills flint with SIGKILL on its way into the k-th atomic replacement of
// a first boot (rootfs.KillBeforeRenameEnv), for every k: each handler's
// semaphore, the status, results, kept metadata, the files handlers
// write; every handler boundary is among the crash points. The next,
// normal boot must end done, with nothing run twice and no file
// half-written.
func TestAKill9BeforeEveryStateWriteOfAFirstBootThenANormalBootFinishesOnce(t *testing.T) {
	testenv.Short(t)
	testenv.Root(t)
	for _, tool := range []string{"useradd", "usermod", "groupadd", "chpasswd", "visudo"} {
		testenv.Tool(t, tool)
	}
	bin := testenv.FlintBinary(t)
	boot := func(in *instance, env ...string) *exec.Cmd {
		cmd := exec.Command(bin, "run", "--root", in.Root, "--live", "--endpoint", in.URL, "--skip", "network")
		cmd.Env = append(os.Environ(), env...)
		return cmd
	}
	for k := 1; ; k++ {
		in := newInstance(t)
		in.Accounts(t)
		in.Config(t, "users:\n  default_user:\n    name: admin\n    shell: /bin/sh\n    lock_passwd: true\n")
		in.Emu.Set("user-data", []byte(crashUserData))
		out, err := boot(in, fmt.Sprintf("%s=%d", rootfs.KillBeforeRenameEnv, k)).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			// The run made fewer than k replacements: every point is covered.
			if k < 20 {
				t.Fatalf("a first boot made only %d atomic replacements (%v):\n%s", k-1, err, out)
			}
			t.Logf("killed before each of %d replacements", k-1)
			return
		}
		out, err = boot(in).CombinedOutput()
		st, rerr := handlers.ReadStatusDir(in.Root)
		if rerr != nil {
			t.Fatalf("kill before replacement %d: normal boot after it: %v\n%s", k, rerr, out)
		}
		// A user-data script killed between its at-most-once record and
		// the record of its end is reported, never run again: the one
		// outcome other than done.
		for _, r := range st.Handlers {
			if r.Status == handlers.ResultFailed && !strings.Contains(r.Reason, "interrupted in an earlier run; not run again") {
				t.Errorf("kill before replacement %d: %s failed: %s", k, r.Name, r.Reason)
			}
		}
		if st.State != handlers.StateDone && (st.State != handlers.StateDegraded || len(st.Warnings) > 0) {
			t.Fatalf("kill before replacement %d: after a normal boot: %s (%v)\n%s", k, st.State, err, out)
		}
		if runs := in.CountRuns("var/tmp/runcmd-runs"); runs > 1 {
			t.Errorf("kill before replacement %d: runcmd ran %d times", k, runs)
		}
		if got := in.ReadFile(t, "etc/crash-file"); got != "written whole or not at all\n" {
			t.Errorf("kill before replacement %d: etc/crash-file = %q", k, got)
		}
		// The accounts once each, with the password fields a whole run
		// gives them: the default user's locked so that key logins work
		// ("*", not useradd's "!"), carol's set.
		passwd, shadow := "\n"+in.ReadFile(t, "etc/passwd"), "\n"+in.ReadFile(t, "etc/shadow")
		for user, field := range map[string]string{"admin": "*", "carol": "$6$crash$Hash"} {
			if n := strings.Count(passwd, "\n"+user+":"); n != 1 {
				t.Errorf("kill before replacement %d: %s is %d times in passwd", k, user, n)
			}
			if !strings.Contains(shadow, "\n"+user+":"+field+":") {
				t.Errorf("kill before replacement %d: %s's password field is not %q:%s", k, user, field, shadow)
			}
		}
		if ak := in.ReadFile(t, "home/admin/.ssh/authorized_keys"); strings.Count(ak, "\n") != 2 {
			t.Errorf("kill before replacement %d: admin's keys %q, want the fixture's two once", k, ak)
		}
		inst := "var/lib/flint/instances/i-0123456789abcdef0/"
		for _, f := range []string{inst + "results.json", inst + handlers.MetadataFile} {
			if !json.Valid([]byte(in.ReadFile(t, f))) {
				t.Errorf("kill before replacement %d: %s is not whole JSON", k, f)
			}
		}
		for _, r := range st.Handlers {
			ran := r.Status == handlers.ResultOK || strings.HasPrefix(r.Reason, "already ran")
			if r.Frequency == "per-instance" && ran {
				if _, err := os.Stat(filepath.Join(in.Root, inst+"sem", r.Name)); err != nil {
					t.Errorf("kill before replacement %d: %s is %s but has no semaphore: %v", k, r.Name, r.Status, err)
				}
			}
		}
	}
}
