package builtin

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/handlers/handlerstest"
	"github.com/flint-dev/flint/imds/imdstest"
	"github.com/flint-dev/flint/internal/rootfs"
)

// The fault matrix: every kind of path the boot reads, answered with every
// kind of failure, then a boot without the fault. Each scenario checks the
// reachability invariant, what was written, what is marked done, the
// report, and that the next boot finishes what was left, once.

// faultHandlers are the handlers a fault scenario runs: every one that
// reads the paths below but network and kernel-modules, which change the
// host (the network interfaces' scenario checks the chain around them).
var faultHandlers = []string{"write-files", "hostname", "users", "ssh-keys", "host-keys", "runcmd"}

// faultKinds are the failures each path is given.
var faultKinds = []struct {
	name  string
	fault imdstest.Fault
}{
	{"404", imdstest.Fault{Status: 404}},
	{"500", imdstest.Fault{Status: 500}},
	{"503-retry-after", imdstest.Fault{Status: 503, RetryAfter: "1"}},
	{"429", imdstest.Fault{Status: 429}},
	{"reset", imdstest.Fault{Reset: true}},
	{"reset-mid-body", imdstest.Fault{Truncate: true, Reset: true}},
	{"truncated-body", imdstest.Fault{Truncate: true}},
	// Beyond imds.deadline (2s): the read gives up at the deadline.
	{"hang", imdstest.Fault{Latency: 30 * time.Second}},
}

// faultPath is one kind of path and what its loss may cost.
type faultPath struct {
	name, path string
	// affected are the handlers allowed to end other than ok or skipped
	// while the path is unreadable; every other one must be unaffected.
	affected []string
	// keys are the public keys installed while the path is unreadable.
	keys []string
	// userData is false when the path's loss stops user-data's work.
	userData bool
	// ud replaces the instance's user-data when set.
	ud string
	// optional tells no handler of the matrix needs the path.
	optional bool
	// network is the result of the network handler's plan (a dry run,
	// which changes nothing here) while the path is unreadable; "" when
	// the handler does not read it.
	network string
}

var faultPaths = []faultPath{
	{name: "user-data", path: "user-data", affected: []string{"users", "ssh-keys", "write-files", "runcmd", "hostname", "host-keys"},
		keys: []string{"alice@laptop", "deploy-key"}},
	{name: "key-listing", path: "meta-data/public-keys/", affected: []string{"users", "ssh-keys"}, userData: true},
	{name: "mac-listing", path: "meta-data/network/interfaces/macs/",
		keys: []string{"alice@laptop", "deploy-key"}, userData: true, optional: true, network: handlers.ResultFailed},
	// The fixture's interface is not attached in the test's namespace: an
	// unreadable interface concerns no link here, so the plan holds no
	// change and no error (network's own tests cover attached ENIs).
	{name: "interfaces", path: "meta-data/network/interfaces/macs/*/*",
		keys: []string{"alice@laptop", "deploy-key"}, userData: true, optional: true, network: handlers.ResultPlanned},
	{name: "leaf", path: "meta-data/local-hostname", affected: []string{"hostname"},
		keys: []string{"alice@laptop", "deploy-key"}, userData: true},
	{name: "one-key", path: "meta-data/public-keys/1/openssh-key", affected: []string{"users", "ssh-keys"},
		keys: []string{"alice@laptop"}, userData: true},
	// Templates read the identity document; the region and zone have
	// the meta-data's placement to fall back on, so the file is the same.
	{name: "identity-document", path: "dynamic/instance-identity/document",
		keys: []string{"alice@laptop", "deploy-key"}, userData: true, optional: true,
		ud: "## template: jinja\n" + strings.Replace(reachUserData, "content: written once",
			"content: written {% if v1.region == 'eu-west-1' and v1.availability_zone == 'eu-west-1a' %}once{% endif %}", 1)},
}

// faultRun runs the matrix's handlers in-process and returns the status,
// its output and the run's error.
func faultRun(t *testing.T, in *instance) (*handlers.Status, string, error) {
	t.Helper()
	var out bytes.Buffer
	s := in.Setup(&out, &out)
	s.Only = faultHandlers
	st, err := handlers.Execute(context.Background(), s)
	return st, out.String(), err
}

func TestFaultMatrixEveryPathEveryFailure(t *testing.T) {
	needAccountTools(t)
	// The scenarios mostly wait for the deadline: run several at once
	// whatever -parallel says (t.Run may be called from many goroutines).
	var wg sync.WaitGroup
	slots := make(chan struct{}, 8)
	defer wg.Wait()
	for _, p := range faultPaths {
		for _, k := range faultKinds {
			wg.Add(1)
			slots <- struct{}{}
			go func() {
				defer func() { <-slots; wg.Done() }()
				t.Run(p.name+"/"+k.name, func(t *testing.T) { faultScenario(t, p, k.fault) })
			}()
		}
	}
}

// faultScenario is one cell of the matrix: f on p, then a boot without it.
func faultScenario(t *testing.T, p faultPath, f imdstest.Fault) {
	f.Path = p.path
	in := reachInstance(t)
	if p.ud != "" {
		in.Emu.Set("user-data", []byte(p.ud))
	}
	in.Emu.AddFault(f)
	st, out, err := faultRun(t, in)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	// 404 says the value does not exist: no fault, nothing to
	// finish later, and what does exist is in place.
	absent := f.Status == 404
	keys := p.keys
	if absent {
		keys = map[string][]string{"key-listing": nil, "one-key": {"alice@laptop"}}[p.name]
		if keys == nil && p.name != "key-listing" {
			keys = []string{"alice@laptop", "deploy-key"}
		}
	}
	wantReachable(t, in, keys...)
	wantReport(t, in, st, out)
	if absent {
		in.Emu.ClearFaults()
		st, out, err := faultRun(t, in)
		if err != nil || st.State != handlers.StateDone || len(st.Warnings) != 0 {
			t.Fatalf("boot after: %v %s %q\n%s", err, st.State, st.Warnings, out)
		}
		wantAtMostOnce(t, in)
		return
	}
	degraded := false
	for _, r := range st.Handlers {
		if r.Status == handlers.ResultOK || r.Status == handlers.ResultSkipped {
			continue
		}
		degraded = true
		if !slices.Contains(p.affected, r.Name) {
			t.Errorf("%s: %s (%s): the path does not concern it\n%s", r.Name, r.Status, r.Reason, out)
		}
		if r.Status != handlers.ResultPartial && r.Status != handlers.ResultFailed && r.Status != handlers.ResultNotRun {
			t.Errorf("%s: %s", r.Name, r.Status)
		}
	}
	if want := map[bool]string{true: handlers.StateDegraded, false: handlers.StateDone}[degraded]; st.State != want {
		t.Errorf("state %s with warnings %q, want %s\n%s", st.State, st.Warnings, want, out)
	}
	if !p.optional && len(p.affected) > 0 && !degraded {
		t.Errorf("nothing reports the unreadable %s\n%s", p.path, out)
	}
	_, markerErr := os.Stat(filepath.Join(in.Root, "etc/reach-marker"))
	if p.userData != (markerErr == nil) {
		t.Errorf("write_files ran: %v, want %v", markerErr == nil, p.userData)
	}
	if p.userData != strings.Contains(in.ReadFile(t, "etc/passwd"), "\ncarol:") {
		t.Errorf("user-data's user made: %v, want %v", !p.userData, p.userData)
	}

	if p.network != "" {
		wantNetworkPlan(t, in, p.network)
	}
	// The service recovers: the next boot finishes, once.
	in.Emu.ClearFaults()
	wantRecovered(t, in)
	if p.network != "" {
		wantNetworkPlan(t, in, handlers.ResultPlanned)
	}
}

// wantNetworkPlan dry-runs the network handler, which reads every
// interface, and checks its result.
func wantNetworkPlan(t *testing.T, in *instance, want string) {
	t.Helper()
	var out bytes.Buffer
	s := in.Setup(&out, &out)
	s.DryRun, s.Only = true, []string{"network"}
	st, err := handlers.Execute(context.Background(), s)
	if err != nil {
		t.Fatalf("network plan: %v\n%s", err, out.String())
	}
	if r := handlerstest.Result(st, "network"); r.Status != want || strings.Contains(r.Reason, "\n") {
		t.Errorf("network plan: %s (%q), want %s", r.Status, r.Reason, want)
	}
}

// wantReport checks the report of a run: status.json says what the
// returned status says, each warning is one line given once, and the
// fault's own words appear once at most.
func wantReport(t *testing.T, in *instance, st *handlers.Status, out string) {
	t.Helper()
	root, err := rootfs.Open(in.Root)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	disk, err := handlers.ReadStatus(root)
	if err != nil {
		t.Fatal(err)
	}
	if disk.State != st.State || !slices.Equal(disk.Warnings, st.Warnings) || len(disk.Handlers) != len(st.Handlers) {
		t.Errorf("status.json %s %q, the run %s %q", disk.State, disk.Warnings, st.State, st.Warnings)
	}
	seen := map[string]bool{}
	for _, w := range st.Warnings {
		if strings.Contains(w, "\n") || seen[w] {
			t.Errorf("warning %q repeated or not one line", w)
		}
		seen[w] = true
	}
	for _, r := range st.Handlers {
		if r.Reason == "" || strings.HasPrefix(r.Reason, "not selected") {
			continue
		}
		if strings.Contains(r.Reason, "\n") {
			t.Errorf("%s: reason not one line: %q", r.Name, r.Reason)
		}
	}
	// A line that carries the failed request itself (its URL) says what
	// the warnings or another handler already said: once is enough.
	said := 0
	for _, line := range append(append([]string(nil), st.Warnings...), reasons(st)...) {
		if strings.Contains(line, "127.0.0.1") || strings.Contains(line, "GET ") {
			said++
		}
	}
	if said > 1 {
		t.Errorf("the failed request is reported %d times: %q %q", said, st.Warnings, reasons(st))
	}
}

func reasons(st *handlers.Status) []string {
	var out []string
	for _, r := range st.Handlers {
		if r.Reason != "" {
			out = append(out, r.Reason)
		}
	}
	return out
}

// wantRecovered runs a boot on a healthy service and a third one after it:
// the second ends done with everything in place once, the third has
// nothing left to do.
func wantRecovered(t *testing.T, in *instance) {
	t.Helper()
	st, out, err := faultRun(t, in)
	if err != nil || st.State != handlers.StateDone || len(st.Warnings) != 0 {
		t.Fatalf("boot after the fault: %v %s %q\n%s", err, st.State, st.Warnings, out)
	}
	for _, r := range st.Handlers {
		if r.Status != handlers.ResultOK && r.Status != handlers.ResultSkipped {
			t.Errorf("boot after the fault: %s %s (%s)", r.Name, r.Status, r.Reason)
		}
	}
	wantReachable(t, in, "alice@laptop", "deploy-key")
	wantOnce(t, in)
	st, out, err = faultRun(t, in)
	if err != nil || st.State != handlers.StateDone {
		t.Fatalf("third boot: %v %s\n%s", err, st.State, out)
	}
	for _, name := range []string{"users", "ssh-keys", "write-files"} {
		if r := handlerstest.Result(st, name); r.Status != handlers.ResultSkipped {
			t.Errorf("third boot %s: %s (%s), want skipped", name, r.Status, r.Reason)
		}
	}
	wantOnce(t, in)
}

// wantAtMostOnce checks that nothing the boot makes is there twice.
func wantAtMostOnce(t *testing.T, in *instance) {
	t.Helper()
	passwd := "\n" + in.ReadFile(t, "etc/passwd")
	for _, u := range []string{"admin", "carol"} {
		if n := strings.Count(passwd, "\n"+u+":"); n > 1 {
			t.Errorf("%s appears %d times in passwd", u, n)
		}
	}
	ak, _ := os.ReadFile(filepath.Join(in.Root, "home/admin/.ssh/authorized_keys"))
	for _, k := range []string{"alice@laptop", "deploy-key"} {
		if n := strings.Count(string(ak), k); n > 1 {
			t.Errorf("key %s installed %d times", k, n)
		}
	}
}

// wantOnce checks that what the boot makes is there exactly once.
func wantOnce(t *testing.T, in *instance) {
	t.Helper()
	if got := in.ReadFile(t, "etc/reach-marker"); got != "written once" {
		t.Errorf("reach-marker %q", got)
	}
	passwd := "\n" + in.ReadFile(t, "etc/passwd")
	for _, u := range []string{"admin", "carol"} {
		if n := strings.Count(passwd, "\n"+u+":"); n != 1 {
			t.Errorf("%s appears %d times in passwd", u, n)
		}
	}
	ak := in.ReadFile(t, "home/admin/.ssh/authorized_keys")
	for _, k := range []string{"alice@laptop", "deploy-key"} {
		if n := strings.Count(ak, k); n != 1 {
			t.Errorf("key %s installed %d times", k, n)
		}
	}
	if h := strings.TrimSpace(in.ReadFile(t, "etc/hostname")); h == "" {
		t.Error("no hostname")
	}
}

// lateService serves the instance's emulator on a loopback port that
// refuses connections until after: the metadata service coming up late.
func lateService(t *testing.T, in *instance, after time.Duration) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	srv := &http.Server{Handler: in.Emu}
	done := make(chan struct{})
	timer := time.AfterFunc(after, func() {
		defer close(done)
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("late listener: %v", err)
			return
		}
		srv.Serve(l)
	})
	t.Cleanup(func() {
		if timer.Stop() {
			return
		}
		srv.Close()
		<-done
	})
	in.URL = "http://" + addr
}

func TestFaultTheServiceItself(t *testing.T) {
	needAccountTools(t)
	for _, tc := range []struct {
		name string
		// setup breaks the service for the first boot.
		setup func(t *testing.T, in *instance)
		// config is added to the matrix's configuration.
		config string
		// fails tells the first boot cannot start: nothing is readable.
		fails bool
		// check looks at the emulator's log of the first boot.
		check func(t *testing.T, log []imdstest.Request)
	}{{
		// The hop limit: the token PUT never comes back; v2-preferred
		// reads with IMDSv1.
		name: "token PUT dropped falls back to v1",
		setup: func(t *testing.T, in *instance) {
			in.Emu.AddFault(imdstest.Fault{Path: "api/token", Method: "PUT", Drop: true})
		},
		check: func(t *testing.T, log []imdstest.Request) {
			v1 := 0
			for _, r := range log {
				if r.Method == "GET" && r.Token == "" && r.Status == 200 {
					v1++
				}
			}
			if v1 == 0 {
				t.Errorf("no IMDSv1 read after the dropped PUT: %v", log)
			}
		},
	}, {
		// IMDS turned off for the instance: nothing to read, nothing done.
		name: "token PUT 403 is IMDS disabled",
		setup: func(t *testing.T, in *instance) {
			in.Emu.AddFault(imdstest.Fault{Path: "api/token", Method: "PUT", Status: 403})
		},
		fails: true,
	}, {
		// The token expires while the run reads: a new one is fetched
		// and the run goes on. The user-data, which the handlers before
		// hostname wait for, is held back so that the host name is read
		// after the expiry (the keys handlers read early).
		name: "token expiry mid-run",
		setup: func(t *testing.T, in *instance) {
			in.Emu.AddFault(imdstest.Fault{Path: "user-data", Latency: 300 * time.Millisecond})
			stop := make(chan struct{})
			t.Cleanup(func() { close(stop) })
			go func() {
				for {
					select {
					case <-stop:
						return
					case <-time.After(5 * time.Millisecond):
					}
					for _, r := range in.Emu.Log() {
						if strings.HasSuffix(r.Path, "meta-data/instance-id") {
							in.Emu.ExpireTokens()
							return
						}
					}
				}
			}()
		},
		check: func(t *testing.T, log []imdstest.Request) {
			expired, puts := false, 0
			for _, r := range log {
				expired = expired || r.Token == "expired"
				if r.Method == "PUT" {
					puts++
				}
			}
			if !expired || puts < 2 {
				t.Errorf("want a read with the expired token, then a new token: %v", log)
			}
		},
	}, {
		// The service comes up seconds after the boot starts.
		name:   "the service absent for the first seconds",
		setup:  func(t *testing.T, in *instance) { lateService(t, in, 2500*time.Millisecond) },
		config: "imds:\n  deadline: 8s\n",
		check: func(t *testing.T, log []imdstest.Request) {
			if len(log) == 0 {
				t.Error("nothing read")
			}
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			in := reachInstance(t)
			if tc.config != "" {
				in.Config(t, acctConfig+tc.config)
			}
			tc.setup(t, in)
			st, out, err := faultRun(t, in)
			wantReport(t, in, st, out)
			if tc.fails {
				if err == nil || st.State != handlers.StateError || strings.Contains(st.Error, "\n") {
					t.Fatalf("first boot: %v, %s %q, want one error line\n%s", err, st.State, st.Error, out)
				}
				if _, err := os.Stat(filepath.Join(in.Root, "home/admin")); err == nil {
					t.Error("a handler ran without the metadata")
				}
			} else {
				if err != nil || st.State != handlers.StateDone || len(st.Warnings) != 0 {
					t.Fatalf("first boot: %v, %s %q\n%s", err, st.State, st.Warnings, out)
				}
				wantReachable(t, in, "alice@laptop", "deploy-key")
				wantOnce(t, in)
			}
			if tc.check != nil {
				tc.check(t, in.Emu.Log())
			}
			in.Emu.ClearFaults()
			if tc.fails {
				wantRecovered(t, in)
				return
			}
			// Nothing was left: the next boot does nothing again.
			st, out, err = faultRun(t, in)
			if err != nil || st.State != handlers.StateDone {
				t.Fatalf("next boot: %v %s\n%s", err, st.State, out)
			}
			wantOnce(t, in)
		})
	}
}

func readStatus(t *testing.T, in *instance) *handlers.Status {
	t.Helper()
	root, err := rootfs.Open(in.Root)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	st, err := handlers.ReadStatus(root)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// treeOf lists the files below dir with their sizes.
func treeOf(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		out = append(out, fmt.Sprintf("%s %v %d", strings.TrimPrefix(p, dir), fi.Mode(), fi.Size()))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// wantNoTemp checks that no atomic write was left half done.
func wantNoTemp(t *testing.T, in *instance) {
	t.Helper()
	for _, f := range treeOf(t, in.Root) {
		if strings.Contains(f, "flint-tmp") {
			t.Errorf("left behind: %s", f)
		}
	}
}
