package builtin

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/handlers/handlerstest"
	"github.com/flint-dev/flint/internal/testenv"
)

// What a handler does at most once per instance (a shutdown, a
// password, a disk overwritten) is never done while its record cannot be
// written, and never again when the handler runs again: after a failure,
// or on a disk where its semaphore could not be written. Here the
// records cannot be written because their directory is immutable
// (chattr +i: not even root adds a file); the fault matrix does it with
// a full and a read-only disk.

const stepsInstance = "var/lib/flint/instances/i-0123456789abcdef0/"

// blockSteps makes the instance's step records unwritable until the
// returned function is called.
func blockSteps(t *testing.T, in *instance) (unblock func()) {
	t.Helper()
	chattr := testenv.Tool(t, "chattr")
	p := filepath.Join(in.Root, stepsInstance+"sem/steps")
	if err := os.MkdirAll(p, 0o700); err != nil {
		t.Fatal(err)
	}
	runOut(t, chattr, "+i", p)
	unblocked := false
	unblock = func() {
		if !unblocked {
			unblocked = true
			runOut(t, chattr, "-i", p)
		}
	}
	t.Cleanup(unblock)
	return unblock
}

// forgetDone removes a handler's semaphore: its next run is the run of a
// boot where it could not be recorded.
func forgetDone(t *testing.T, in *instance, name string) {
	t.Helper()
	if err := os.Remove(filepath.Join(in.Root, stepsInstance+"sem", name)); err != nil {
		t.Fatal(err)
	}
}

// wantWaits checks the handler's result says, in one line, that what
// must be done at most once waits for its record, and the run's one
// warning says why.
func wantWaits(t *testing.T, st *handlers.Status, name, what string) {
	t.Helper()
	r := handlerstest.Result(st, name)
	if r.Status != handlers.ResultPartial || !strings.Contains(r.Reason, what+" not done: its at-most-once record cannot be written") ||
		strings.Contains(r.Reason, "\n") {
		t.Errorf("%s: %s (%q), want partial naming %q", name, r.Status, r.Reason, what)
	}
	if st.State != handlers.StateDegraded || len(st.Warnings) != 1 || !strings.Contains(st.Warnings[0], "the state directory cannot be written") {
		t.Errorf("state %s, warnings %q: want degraded with the state directory's warning", st.State, st.Warnings)
	}
}

func TestPowerStateIsStartedAtMostOncePerInstance(t *testing.T) {
	var started []string
	oldHere, oldStart := powerStateHere, startPowerState
	// The running system's shutdown is not the test's to start: the
	// handler acts on the test's root, and what it starts is counted.
	powerStateHere = func(*handlers.Boot) bool { return true }
	startPowerState = func(script string) error { started = append(started, script); return nil }
	t.Cleanup(func() { powerStateHere, startPowerState = oldHere, oldStart })
	in := planInstance(t, "#cloud-config\npower_state: {mode: reboot}\n", nil)
	run := func() *handlers.Status {
		st, _ := in.Run(t, func(s *handlers.Setup) { s.Only = []string{"power-state"} })
		return st
	}
	unblock := blockSteps(t, in)
	st := run()
	if len(started) != 0 {
		t.Fatalf("started without its record: %q", started)
	}
	wantWaits(t, st, "power-state", "power_state shutdown")

	unblock()
	if st = run(); st.State != handlers.StateDone || len(started) != 1 || !strings.Contains(started[0], "exec 'shutdown' '-r'") {
		t.Fatalf("a boot that can record it: %s, started %q", st.State, started)
	}
	// The handler runs again (its semaphore lost): no second reboot.
	forgetDone(t, in, "power-state")
	st = run()
	if r := handlerstest.Result(st, "power-state"); len(started) != 1 || r.Status != handlers.ResultOK ||
		!strings.Contains(strings.Join(r.Notes, "\n"), "done by an earlier run") {
		t.Errorf("run again: started %d times, %s %q", len(started), r.Status, r.Notes)
	}
}

func TestAPasswordIsDecidedAtMostOncePerInstance(t *testing.T) {
	in := acctInstance(t, `#cloud-config
users:
  - default
  - name: carol
    lock_passwd: false
    hashed_passwd: "$6$first$abc"
chpasswd:
  expire: true
  users:
    - {name: admin, password: "$6$second$def", type: hash}
`)
	needAccountTools(t)
	unblock := blockSteps(t, in)
	st, out := acctRun(t, in, nil)
	wantWaits(t, st, "users", "the password of carol")
	if r := handlerstest.Result(st, "users"); !strings.Contains(r.Reason, "chpasswd for admin not done") {
		t.Errorf("users: %q, want chpasswd for admin waiting too\n%s", r.Reason, out)
	}
	// Made without a password, locked so that key logins work.
	for _, u := range []string{"carol", "admin"} {
		if got := acctField(t, in, "etc/shadow", u, 1); got != "*" {
			t.Errorf("%s's password field %q before its record could be written, want *", u, got)
		}
	}

	unblock()
	st, out = acctRun(t, in, nil)
	acctWant(t, st, out, map[string]string{"users": handlers.ResultOK})
	if got := acctField(t, in, "etc/shadow", "carol", 1); got != "$6$first$abc" {
		t.Errorf("carol's password %q", got)
	}
	if got, expired := acctField(t, in, "etc/shadow", "admin", 1), acctField(t, in, "etc/shadow", "admin", 2); got != "$6$second$def" || expired != "0" {
		t.Errorf("chpasswd for admin: %q, last change %q (want 0: expired)", got, expired)
	}

	// The users change their passwords; then the handler runs again (its
	// semaphore lost): it must not undo that, nor expire them again.
	shadow := in.ReadFile(t, "etc/shadow")
	shadow = strings.Replace(shadow, "carol:$6$first$abc:", "carol:$6$mine$xyz:", 1)
	shadow = strings.Replace(shadow, "admin:$6$second$def:0:", "admin:$6$mine$uvw:19500:", 1)
	if err := os.WriteFile(filepath.Join(in.Root, "etc/shadow"), []byte(shadow), 0o640); err != nil {
		t.Fatal(err)
	}
	forgetDone(t, in, "users")
	st, out = acctRun(t, in, nil)
	acctWant(t, st, out, map[string]string{"users": handlers.ResultOK})
	for u, want := range map[string]string{"carol": "$6$mine$xyz", "admin": "$6$mine$uvw"} {
		if got := acctField(t, in, "etc/shadow", u, 1); got != want {
			t.Errorf("%s's own password became %q on a run again", u, got)
		}
	}
	if got := acctField(t, in, "etc/shadow", "admin", 2); got != "19500" {
		t.Errorf("admin's password expired again: last change %q", got)
	}

	// A run killed between the record and the password: the next run
	// sets it (nothing can have changed it since), so carol's account is
	// not left with useradd's "!", which refuses key logins.
	rec := filepath.Join(in.Root, stepsInstance+"sem/steps/password.carol")
	if err := os.WriteFile(rec, []byte(`{"started":"2026-01-01T00:00:00Z"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	shadow = strings.Replace(in.ReadFile(t, "etc/shadow"), "carol:$6$mine$xyz:", "carol:!:", 1)
	if err := os.WriteFile(filepath.Join(in.Root, "etc/shadow"), []byte(shadow), 0o640); err != nil {
		t.Fatal(err)
	}
	forgetDone(t, in, "users")
	st, out = acctRun(t, in, nil)
	acctWant(t, st, out, map[string]string{"users": handlers.ResultOK})
	if got := acctField(t, in, "etc/shadow", "carol", 1); got != "$6$first$abc" {
		t.Errorf("a password begun by a killed run: %q, want it set", got)
	}
}

func TestAnOverwritingFsSetupIsDoneAtMostOncePerInstance(t *testing.T) {
	testenv.Root(t)
	testenv.Tool(t, "losetup")
	testenv.Tool(t, "mkfs.ext4")
	blkid := testenv.Tool(t, "blkid")
	img := filepath.Join(t.TempDir(), "volume.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	os.Truncate(img, 16<<20)
	dev := strings.TrimSpace(runOut(t, "losetup", "-f", "--show", img))
	t.Cleanup(func() { runOut(t, "losetup", "-d", dev) })
	runOut(t, "mkfs.ext4", "-q", "-L", "old", dev)
	uuid := func() string { return strings.TrimSpace(runOut(t, blkid, "-s", "UUID", "-o", "value", dev)) }

	old := disksHere
	// The loop device is this system's; the test's root stands for the
	// running system's.
	disksHere = func(*handlers.Boot) bool { return true }
	t.Cleanup(func() { disksHere = old })
	in := planInstance(t, "#cloud-config\nfs_setup:\n  - {device: "+dev+", filesystem: ext4, label: data, partition: none, overwrite: true}\n", nil)
	run := func() *handlers.Status {
		st, _ := in.Run(t, func(s *handlers.Setup) { s.Only = []string{"disk-setup"} })
		return st
	}
	first := uuid()
	unblock := blockSteps(t, in)
	st := run()
	if got := uuid(); got != first {
		t.Fatal("the volume was overwritten without its record")
	}
	wantWaits(t, st, "disk-setup", "fs_setup "+dev+" (overwrite or cmd)")

	unblock()
	if st = run(); st.State != handlers.StateDone {
		t.Fatalf("a boot that can record it: %s %q", st.State, handlerstest.Result(st, "disk-setup").Reason)
	}
	made := uuid()
	if made == first {
		t.Fatal("the volume was not overwritten")
	}
	// The handler runs again (its semaphore lost): what was written to
	// the new filesystem since must not be wiped by a second mkfs.
	forgetDone(t, in, "disk-setup")
	st = run()
	if got := uuid(); got != made || st.State != handlers.StateDone {
		t.Errorf("run again: %s, the filesystem was made again (%s, was %s)", st.State, got, made)
	}
}

// runOut runs a program the test needs and returns its output.
func runOut(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}
