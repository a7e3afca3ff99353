package builtin

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/handlers/handlerstest"
	"github.com/flint-dev/flint/internal/testenv"
)

// The disk's faults: the state directory on a full file system or
// read-only, and a read-only root. Each runs the flint binary in a
// test-made mount namespace, then boots without the fault. Besides the
// reachability invariant they check what must happen at most once per
// instance (user-data scripts, runcmd, an append, phone_home's POST):
// never while its record cannot be written, said in one line, then
// exactly once.

// diskHandlers are the matrix's handlers and those that do what must
// not be done twice.
var diskHandlers = append(slices.Clone(faultHandlers), "scripts", "phone-home")

// diskScripts are the scripts the image ships in the state directory,
// each counting its runs in var/tmp/<name>-runs, and the user-data's
// runcmd's count.
var diskScripts = map[string]string{"per-once/once.sh": "once", "per-instance/inst.sh": "inst"}

// diskInstance is the reachability instance with user-data asking for
// what must run at most once, the image's scripts, and the phone_home
// server counting its POSTs. baked holds the scripts for a state
// directory mounted over the root's.
func diskInstance(t *testing.T) (in *instance, posts *atomic.Int32, baked string) {
	t.Helper()
	in = reachInstance(t)
	posts = new(atomic.Int32)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			posts.Add(1)
		}
	}))
	t.Cleanup(srv.Close)
	in.Emu.Set("user-data", []byte(reachUserData+`  - path: /etc/appended
    content: "one line\n"
    append: true
runcmd:
  - echo . >> /var/tmp/runcmd-runs
phone_home:
  url: `+srv.URL+`/
  post: [instance_id]
  tries: 1
`))
	os.MkdirAll(filepath.Join(in.Root, "var/tmp"), 0o1777)
	baked = t.TempDir()
	for _, dir := range []string{baked, filepath.Join(in.Root, "var/lib/flint")} {
		for rel, name := range diskScripts {
			p := filepath.Join(dir, "scripts", rel)
			os.MkdirAll(filepath.Dir(p), 0o700)
			if err := os.WriteFile(p, []byte("#!/bin/sh\necho . >> /var/tmp/"+name+"-runs\n"), 0o700); err != nil {
				t.Fatal(err)
			}
		}
	}
	os.Chmod(filepath.Join(in.Root, "var/lib/flint"), 0o700)
	return in, posts, baked
}

// mountedRun runs `flint run --only only` on the instance in a private
// mount namespace where mounts (shell commands, ROOT standing for the
// root) are made first, then `flint status` in the same namespace. It
// returns the run's exit code and output, and status's.
func mountedRun(t *testing.T, in *instance, mounts string, only []string) (code int, out string, status string, statusCode int) {
	t.Helper()
	script := "set -e\n" + strings.ReplaceAll(mounts, "ROOT", in.Root) + "\nset +e\n" +
		`"$0" "$@"; code=$?; echo "--- status"; "$0" status --root "` + in.Root + `"; s=$?; echo "--- exit $code $s"`
	args := []string{"-m", "--propagation", "private", "sh", "-c", script, testenv.FlintBinary(t),
		"run", "--root", in.Root, "--live", "--endpoint", in.URL, "--only", strings.Join(only, ",")}
	b, err := exec.Command(testenv.Tool(t, "unshare"), args...).CombinedOutput()
	all := string(b)
	run, rest, ok1 := strings.Cut(all, "--- status\n")
	status, codes, ok2 := strings.Cut(rest, "--- exit ")
	if err != nil || !ok1 || !ok2 {
		t.Fatalf("unshare: %v\n%s", err, all)
	}
	if _, err := fmt.Sscan(codes, &code, &statusCode); err != nil {
		t.Fatalf("exit codes %q: %v", codes, err)
	}
	return code, run, status, statusCode
}

// diskRun is one in-process boot with diskHandlers.
func diskRun(t *testing.T, in *instance) *handlers.Status {
	t.Helper()
	var out bytes.Buffer
	s := in.Setup(&out, &out)
	s.Only = diskHandlers
	st, err := handlers.Execute(context.Background(), s)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	return st
}

// wantDoneOnce checks what must happen at most once happened n times:
// each script and runcmd ran, the POST arrived; and the line was
// appended appends times.
func wantDoneOnce(t *testing.T, in *instance, posts *atomic.Int32, n, appends int) {
	t.Helper()
	for _, name := range []string{"once", "inst", "runcmd"} {
		if got := in.CountRuns("var/tmp/" + name + "-runs"); got != n {
			t.Errorf("%s ran %d times, want %d", name, got, n)
		}
	}
	appended, _ := os.ReadFile(filepath.Join(in.Root, "etc/appended"))
	if got := strings.Count(string(appended), "one line\n"); got != appends {
		t.Errorf("appended %d times, want %d", got, appends)
	}
	if got := int(posts.Load()); got != n {
		t.Errorf("phone_home posted %d times, want %d", got, n)
	}
}

// wantNextBootsOnce boots twice without the fault: the first finishes
// what was left, each thing once, the second does nothing again.
func wantNextBootsOnce(t *testing.T, in *instance, posts *atomic.Int32) {
	t.Helper()
	for boot := 1; boot <= 2; boot++ {
		st := diskRun(t, in)
		if st.State != handlers.StateDone || len(st.Warnings) != 0 {
			t.Errorf("boot %d after the fault: %s %q", boot, st.State, st.Warnings)
		}
		for _, r := range st.Handlers {
			if r.Status != handlers.ResultOK && r.Status != handlers.ResultSkipped {
				t.Errorf("boot %d after the fault: %s %s (%s)", boot, r.Name, r.Status, r.Reason)
			}
		}
		wantReachable(t, in, "alice@laptop", "deploy-key")
		wantOnce(t, in)
		wantDoneOnce(t, in, posts, 1, 1)
	}
	wantNoTemp(t, in)
}

// wantSaidOnce checks the report of a boot whose state directory could
// not be written: one warning names the cause, every line that refers to
// it does so without repeating it, and each thing not done is named.
func wantSaidOnce(t *testing.T, st *handlers.Status, cause string) {
	t.Helper()
	if st.State != handlers.StateDegraded {
		t.Errorf("state %s, want degraded", st.State)
	}
	all := append(slices.Clone(st.Warnings), reasons(st)...)
	if n := strings.Count(strings.Join(all, "\n"), cause); n != 1 || len(st.Warnings) != 1 || !strings.Contains(st.Warnings[0], cause) {
		t.Errorf("%q said %d times, want once as the one warning: %q", cause, n, all)
	}
	for _, r := range st.Handlers {
		if strings.Contains(r.Reason, "\n") {
			t.Errorf("%s: reason not one line: %q", r.Name, r.Reason)
		}
	}
	r := handlerstest.Result(st, "scripts")
	if r.Status != handlers.ResultPartial || !strings.Contains(r.Reason, "not run: ") ||
		!strings.Contains(r.Reason, handlers.SeeStateWarning) {
		t.Errorf("scripts: %s (%s), want partial, one line naming what was not run and why", r.Status, r.Reason)
	}
	for rel := range diskScripts {
		if !strings.Contains(r.Reason, rel) {
			t.Errorf("scripts: the line does not name %s: %s", rel, r.Reason)
		}
	}
	if r := handlerstest.Result(st, "phone-home"); r.Status != handlers.ResultPartial || !strings.Contains(r.Reason, "phone_home's POST") {
		t.Errorf("phone-home: %s (%s), want partial: not posted", r.Status, r.Reason)
	}
}

func TestFaultTheDisk(t *testing.T) {
	needAccountTools(t)
	testenv.Tool(t, "unshare")
	// A first boot on a full state disk: the work that converges is done
	// (the instance is reachable) and not recorded; what must not be done
	// twice is not done; the next boot does what is left, once.
	fullDisk := func(t *testing.T, mount string) {
		in, posts, baked := diskInstance(t)
		code, out, status, statusCode := mountedRun(t, in, mount+"\nchmod 700 ROOT/var/lib/flint\ncp -a "+baked+"/. ROOT/var/lib/flint/\n"+
			"dd if=/dev/zero of=ROOT/var/lib/flint/.fill bs=1k 2>/dev/null || true", diskHandlers)
		if code != 2 || statusCode != 2 {
			t.Fatalf("run exit %d, status exit %d, want 2 (degraded)\n%s\n%s", code, statusCode, out, status)
		}
		wantReachable(t, in, "alice@laptop", "deploy-key")
		wantOnce(t, in)
		wantDoneOnce(t, in, posts, 0, 0)
		st := readStatus(t, in)
		wantSaidOnce(t, st, "no space left on device")
		if !strings.Contains(status, "warning: the state directory cannot be written") {
			t.Errorf("flint status does not say it:\n%s", status)
		}
		for _, name := range []string{"users", "ssh-keys", "host-keys"} {
			if r := handlerstest.Result(st, name); r.Status != handlers.ResultFailed || !strings.Contains(r.Reason, "could not record it") ||
				!strings.Contains(r.Reason, "runs it again") {
				t.Errorf("%s: %s (%s), want failed: not recorded, runs again", name, r.Status, r.Reason)
			}
		}
		for name, what := range map[string]string{"runcmd": "runcmd not stored", "write-files": "/etc/appended not appended to"} {
			if r := handlerstest.Result(st, name); r.Status != handlers.ResultPartial || !strings.Contains(r.Reason, what) {
				t.Errorf("%s: %s (%s), want partial: %s", name, r.Status, r.Reason, what)
			}
		}
		wantNoTemp(t, in)
		if sems, _ := filepath.Glob(filepath.Join(in.Root, "var/lib/flint/instances/*/sem/*")); len(sems) != 0 {
			t.Errorf("recorded on a full disk: %v", sems)
		}
		wantNextBootsOnce(t, in, posts)
	}
	t.Run("a full tmpfs under the state directory", func(t *testing.T) {
		// Directories cost a tmpfs nothing: the instance's directory is
		// made, every file in it fails.
		fullDisk(t, "mount -t tmpfs -o size=64k flint-full ROOT/var/lib/flint")
	})
	t.Run("a full ext4 under the state directory", func(t *testing.T) {
		// Not even the instance's directory can be made.
		testenv.Tool(t, "mkfs.ext4")
		testenv.Tool(t, "losetup")
		img := filepath.Join(t.TempDir(), "state.img")
		if out, err := exec.Command("sh", "-c", "truncate -s 2M "+img+" && mkfs.ext4 -q -F -m 0 "+img).CombinedOutput(); err != nil {
			t.Fatalf("mkfs.ext4: %v\n%s", err, out)
		}
		fullDisk(t, "mount -o loop "+img+" ROOT/var/lib/flint")
	})
	t.Run("a read-only state directory", func(t *testing.T) {
		// A first boot stores runcmd and leaves the scripts for the next
		// boot, which finds the state directory read-only.
		in, posts, _ := diskInstance(t)
		if st, _, err := faultRun(t, in); err != nil || st.State != handlers.StateDone {
			t.Fatalf("first boot: %v %s %q", err, st.State, st.Warnings)
		}
		code, out, status, statusCode := mountedRun(t, in,
			"mount --bind ROOT/var/lib/flint ROOT/var/lib/flint\nmount -o remount,bind,ro ROOT/var/lib/flint", diskHandlers)
		if code != 2 || statusCode != 2 {
			t.Fatalf("run exit %d, status exit %d, want 2 (degraded)\n%s\n%s", code, statusCode, out, status)
		}
		wantReachable(t, in, "alice@laptop", "deploy-key")
		// The first boot appended; the scripts and the POST wait.
		wantDoneOnce(t, in, posts, 0, 1)
		st := readStatus(t, in)
		wantSaidOnce(t, st, "read-only file system")
		if r := handlerstest.Result(st, "scripts"); !strings.Contains(r.Reason, "user-data/runcmd") {
			t.Errorf("scripts: the line does not name runcmd: %s", r.Reason)
		}
		wantNextBootsOnce(t, in, posts)
	})
	// A read-only root: nothing can be provisioned and nothing is tried.
	// The one line goes to stderr (the unit's journal) and, under /run,
	// a tmpfs that stays writable, to the status flint status reads.
	readOnlyRoot := func(t *testing.T, mounts string, recorded bool) {
		in := reachInstance(t)
		os.MkdirAll(filepath.Join(in.Root, "run"), 0o755)
		before := treeOf(t, in.Root)
		code, out, status, statusCode := mountedRun(t, in, "mount --bind ROOT ROOT\nmount -o remount,bind,ro ROOT\n"+mounts, faultHandlers)
		if code != 1 || strings.Count(strings.TrimSpace(out), "\n") != 0 || !strings.Contains(out, "read-only file system: nothing was done") {
			t.Fatalf("exit %d, want 1 and one line saying the root is read-only and nothing was done:\n%s", code, out)
		}
		line := strings.TrimPrefix(strings.TrimSpace(out), "flint: ")
		if recorded {
			if statusCode != 1 || !strings.Contains(status, "status: error\n") || !strings.Contains(status, "error: "+line+"\n") {
				t.Errorf("flint status exit %d, want 1 showing the error %q:\n%s", statusCode, line, status)
			}
		} else if statusCode != 1 || !strings.Contains(status, "no run recorded") {
			t.Errorf("flint status exit %d without a writable /run:\n%s", statusCode, status)
		}
		if after := treeOf(t, in.Root); !slices.Equal(before, after) {
			t.Errorf("the read-only root changed:\n%q\n%q", before, after)
		}
		wantRecovered(t, in)
		wantNoTemp(t, in)
	}
	t.Run("a read-only root", func(t *testing.T) {
		readOnlyRoot(t, "mount -t tmpfs flint-run ROOT/run", true)
	})
	t.Run("a read-only root and run", func(t *testing.T) {
		readOnlyRoot(t, "", false)
	})
	t.Run("a read-only root with a writable /var", func(t *testing.T) {
		// As an image with a read-only / and a writable /var: the chain
		// runs, recorded, and what cannot be written fails on its own.
		in := reachInstance(t)
		os.MkdirAll(filepath.Join(in.Root, "run"), 0o755)
		os.MkdirAll(filepath.Join(in.Root, "var"), 0o755)
		vardir := t.TempDir()
		code, out, status, _ := mountedRun(t, in, "mount --bind ROOT ROOT\nmount -o remount,bind,ro ROOT\n"+
			"mount -t tmpfs flint-run ROOT/run\nmount --bind "+vardir+" ROOT/var", faultHandlers)
		if code != 2 || !strings.Contains(status, "status: degraded") || strings.Contains(status, "state directory") {
			t.Fatalf("exit %d, want 2 (degraded: the chain ran)\n%s\n%s", code, out, status)
		}
		if sems, _ := filepath.Glob(filepath.Join(vardir, "lib/flint/instances/*/sem/*")); len(sems) == 0 {
			t.Errorf("nothing recorded in the writable state directory")
		}
	})
}
