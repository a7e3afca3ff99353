package handlers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/handlers/builtin"
	"github.com/flint-dev/flint/handlers/handlerstest"
	"github.com/flint-dev/flint/imds/imdstest"
)

// instance is an emulator serving the fixture, and a temp root, for
// runs of the built-in chain.
type instance = handlerstest.Instance

func newInstance(t testing.TB) *instance { return handlerstest.New(t, builtin.Catalog()) }

// run runs the chain in-process (but for the network handler).
func run(t *testing.T, in *instance, mod func(*handlers.Setup)) *handlers.Status {
	t.Helper()
	st, _ := in.Run(t, mod)
	return st
}

// chain is run with hostname as the only built-in: tests of the chain's
// mechanics, whatever other handlers the chain has.
func chain(t *testing.T, in *instance, mod func(*handlers.Setup)) *handlers.Status {
	return run(t, in, func(s *handlers.Setup) {
		s.Skip = otherBuiltins("hostname")
		if mod != nil {
			mod(s)
		}
	})
}

// otherBuiltins names every built-in handler but keep.
func otherBuiltins(keep ...string) []string {
	var out []string
	for _, name := range builtin.Catalog().Names() {
		if !slices.Contains(keep, name) {
			out = append(out, name)
		}
	}
	return out
}

// statuses renders the results of hostname and the exec plug-ins.
func statuses(st *handlers.Status) string {
	var s []string
	for _, r := range st.Handlers {
		if slices.Contains(otherBuiltins("hostname"), r.Name) {
			continue
		}
		s = append(s, r.Name+"="+r.Status)
	}
	return strings.Join(s, " ")
}

func TestFrequenciesAcrossBootsAndInstances(t *testing.T) {
	in := newInstance(t)
	in.Config(t, "handlers:\n  exec_frequency: per-instance\n")
	in.Plugin(t, "10-per-instance", `echo ran >> "$FLINT_ROOT/runs"`+"\n")

	st := chain(t, in, nil)
	if got := statuses(st); got != "hostname=ok 10-per-instance=ok" || st.State != handlers.StateDone {
		t.Fatalf("first boot: %s (%s)", got, st.State)
	}
	st = chain(t, in, nil)
	if got := statuses(st); got != "hostname=ok 10-per-instance=skipped" {
		t.Fatalf("reboot of the same instance: %s", got)
	}
	if n := in.CountRuns("runs"); n != 1 {
		t.Fatalf("per-instance plug-in ran %d times on one instance", n)
	}
	// An image baked from this instance boots as a new one.
	in.Emu.Set("meta-data/instance-id", []byte("i-0fedcba9876543210"))
	st = chain(t, in, nil)
	if got := statuses(st); got != "hostname=ok 10-per-instance=ok" || st.Previous != "i-0123456789abcdef0" {
		t.Fatalf("new instance: %s (previous %q)", got, st.Previous)
	}
	link, _ := os.Readlink(filepath.Join(in.Root, "var/lib/flint/instance"))
	if link != "instances/i-0fedcba9876543210" {
		t.Errorf("instance link = %q", link)
	}
	st = chain(t, in, func(s *handlers.Setup) { s.Force = true })
	if got := statuses(st); got != "hostname=ok 10-per-instance=ok" {
		t.Fatalf("--force: %s", got)
	}
	st = chain(t, in, func(s *handlers.Setup) { s.Only = []string{"hostname"} })
	if got := statuses(st); got != "hostname=ok 10-per-instance=skipped" {
		t.Fatalf("--only hostname: %s", got)
	}
	st = chain(t, in, func(s *handlers.Setup) { s.Skip = append(s.Skip, "hostname"); s.Force = true })
	if got := statuses(st); got != "hostname=skipped 10-per-instance=ok" {
		t.Fatalf("--skip hostname: %s", got)
	}
	if n := in.CountRuns("runs"); n != 4 {
		t.Fatalf("plug-in ran %d times, want 4 (first boot, new instance, --force, --skip --force)", n)
	}
	for _, f := range []string{"var/lib/flint", "var/lib/flint/instances/i-0fedcba9876543210/results.json"} {
		fi, err := os.Stat(filepath.Join(in.Root, f))
		if err != nil || fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s: %v, mode %v: state must not be readable by others", f, err, fi.Mode().Perm())
		}
	}
}

func TestFailingHungAndChattyPluginsAreReportedAndTheChainGoesOn(t *testing.T) {
	in := newInstance(t)
	in.Config(t, "handlers:\n  exec_timeout: 1s\n")
	in.Plugin(t, "10-fails", "echo about to fail; exit 3\n")
	in.Plugin(t, "20-hangs", "sleep 60\n")
	in.Plugin(t, "30-chatty", "head -c 5000000 /dev/zero | tr '\\0' x\n")
	in.Plugin(t, "40-fine", `cat > "$FLINT_ROOT/input.json"`+"\n")
	st := chain(t, in, nil)
	if got := statuses(st); got != "hostname=ok 10-fails=failed 20-hangs=failed 30-chatty=ok 40-fine=ok" {
		t.Fatalf("statuses: %s", got)
	}
	if st.State != handlers.StateDegraded || st.ExitCode() != 2 {
		t.Errorf("state %s exit %d, want degraded/2", st.State, st.ExitCode())
	}
	if r := handlerstest.Result(st, "10-fails").Reason; !strings.Contains(r, "exited with status 3") {
		t.Errorf("failure reason %q", r)
	}
	if r := handlerstest.Result(st, "20-hangs").Reason; !strings.Contains(r, "timed out after 1s") {
		t.Errorf("hang reason %q", r)
	}
	if n := strings.Join(handlerstest.Result(st, "30-chatty").Notes, " "); !strings.Contains(n, "bytes dropped") {
		t.Errorf("chatty notes %q", n)
	}
	fi, err := os.Stat(filepath.Join(in.Root, handlers.OutputLogPath))
	if err != nil || fi.Size() > handlers.PerProcessCap+64<<10 || fi.Mode().Perm() != 0o640 {
		t.Errorf("output log: %v, %d bytes, mode %v; want bounded and 0640", err, fi.Size(), fi.Mode().Perm())
	}
	var input map[string]any
	b, _ := os.ReadFile(filepath.Join(in.Root, "input.json"))
	if err := json.Unmarshal(b, &input); err != nil || input["instance_id"] != "i-0123456789abcdef0" {
		t.Errorf("plug-in stdin %s: %v", b, err)
	}
	if md, _ := input["metadata"].(map[string]any); md["placement/region"] != "eu-west-1" {
		t.Errorf("plug-in metadata %v", input["metadata"])
	}
}

func TestRequiredHandlerStopsTheChain(t *testing.T) {
	in := newInstance(t)
	in.Config(t, "handlers:\n  required: [10-fails]\n")
	in.Plugin(t, "10-fails", "exit 1\n")
	in.Plugin(t, "20-after", "true\n")
	st := chain(t, in, nil)
	if got := statuses(st); got != "hostname=ok 10-fails=failed 20-after=not-run" || st.ExitCode() != 1 {
		t.Fatalf("statuses %s, exit %d", got, st.ExitCode())
	}
}

func TestPluginsArePlannedNotRunWithoutLive(t *testing.T) {
	in := newInstance(t)
	in.Plugin(t, "10-x", `touch "$FLINT_ROOT/ran"`+"\n")
	st := chain(t, in, func(s *handlers.Setup) { s.Live = false })
	if got := statuses(st); got != "hostname=ok 10-x=planned" {
		t.Fatalf("statuses %s", got)
	}
	if _, err := os.Stat(filepath.Join(in.Root, "ran")); err == nil {
		t.Fatal("a plug-in ran without --live")
	}
	// Planned is not done: the live run does it.
	st = chain(t, in, nil)
	if got := statuses(st); got != "hostname=ok 10-x=ok" {
		t.Fatalf("live run after a planned one: %s", got)
	}
}

func TestBadConfigIsOneLineNamingTheFile(t *testing.T) {
	in := newInstance(t)
	for _, tc := range []struct{ doc, want string }{
		{"imds:\n  mode: v2-only\nbogus: 1\n", "flint.yaml:3: unknown key \"bogus\""},
		{"handlers:\n  exec_timeout: [1]\n", "flint.yaml:2:"},
		{"hostname: {manage_etc_hosts: maybe}\n", "flint.yaml:1:"},
		{"imds: [\n", "flint.yaml:"},
	} {
		in.Config(t, tc.doc)
		var told []string
		_, err := handlers.Execute(context.Background(), handlers.Setup{Root: in.Root, Endpoint: in.URL, Catalog: builtin.Catalog(), Skip: otherBuiltins("hostname"), Stderr: &bytes.Buffer{},
			Notify: func(s string) { told = append(told, s) }})
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("config %q: err = %v, want one line with %q", tc.doc, err, tc.want)
		}
		// `systemctl status flint` shows the line too, and the boot goes on.
		if err != nil && !slices.Equal(told, []string{"STATUS=error: " + err.Error(), "READY=1"}) {
			t.Errorf("config %q: systemd told %q, want the error's line, then READY=1", tc.doc, told)
		}
		st, rerr := handlers.ReadStatusDir(in.Root)
		if rerr != nil || st.State != handlers.StateError {
			t.Errorf("status after a config error: %+v %v", st, rerr)
		}
	}
}

func TestIMDSOutageIsAnErrorStatusNotAHang(t *testing.T) {
	in := newInstance(t)
	in.Config(t, "imds:\n  deadline: 1s\n")
	in.Emu.AddFault(imdstest.Fault{Status: 503})
	begin := time.Now()
	_, err := handlers.Execute(context.Background(), handlers.Setup{Root: in.Root, Endpoint: in.URL, Catalog: builtin.Catalog(), Skip: otherBuiltins("hostname"), Stderr: &bytes.Buffer{}})
	if err == nil || !strings.Contains(err.Error(), "instance id") {
		t.Fatalf("err = %v", err)
	}
	if time.Since(begin) > 30*time.Second {
		t.Fatal("the boot deadline was not honoured")
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	in := newInstance(t)
	var plan bytes.Buffer
	run(t, in, func(s *handlers.Setup) { s.DryRun = true; s.Stdout = &plan })
	if !strings.Contains(plan.String(), "hostname: host name web-1 (fqdn web-1.example.internal)") {
		t.Errorf("plan: %q", plan.String())
	}
	ents, _ := os.ReadDir(in.Root)
	for _, e := range ents {
		if !slices.Contains([]string{"bin", "dev", "proc", "sys", "tmp"}, e.Name()) {
			t.Errorf("dry run wrote %s", e.Name())
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(in.Root, "tmp")); len(ents) > 0 {
		t.Errorf("dry run wrote tmp/%s", ents[0].Name())
	}
	// After a real boot, the plan knows what already ran.
	run(t, in, nil)
	plan.Reset()
	st := run(t, in, func(s *handlers.Setup) { s.DryRun = true; s.Stdout = &plan })
	if r := handlerstest.Result(st, "write-files"); r.Status != handlers.ResultSkipped {
		t.Errorf("dry run after a boot: write-files %s, want skipped (already ran)", r.Status)
	}
}

func TestTemplatedUserDataSeesTheInstanceMetadata(t *testing.T) {
	in := newInstance(t)
	in.Emu.Set("user-data", []byte("## template: jinja\n#cloud-config\nhostname: web-{{ v1.instance_id }}\nfqdn: web-{{ v1.instance_id }}.{{ v1.region }}.example\n"))
	st := run(t, in, func(s *handlers.Setup) { s.Only = []string{"hostname"} })
	if got := handlerstest.Result(st, "hostname"); got.Status != handlers.ResultOK {
		t.Fatalf("hostname: %+v", got)
	}
	b, _ := os.ReadFile(filepath.Join(in.Root, "etc/hostname"))
	if string(b) != "web-i-0123456789abcdef0\n" {
		t.Errorf("etc/hostname = %q", b)
	}
	hosts, _ := os.ReadFile(filepath.Join(in.Root, "etc/hosts"))
	if !strings.Contains(string(hosts), "web-i-0123456789abcdef0.eu-west-1.example") {
		t.Errorf("etc/hosts = %q", hosts)
	}
}

func TestTheIMDSDeadlineDoesNotCutTheChainShort(t *testing.T) {
	in := newInstance(t)
	in.Config(t, "imds:\n  deadline: 1s\nhandlers:\n  exec_timeout: 1m\n")
	in.Plugin(t, "10-slow", "sleep 2\n")
	st := chain(t, in, nil)
	if r := handlerstest.Result(st, "10-slow"); r.Status != handlers.ResultOK {
		t.Fatalf("a 2 s plug-in under a 1 s IMDS deadline: %s (%s)", r.Status, r.Reason)
	}
}

func TestUserDataIsFetchedAndParsedOncePerRun(t *testing.T) {
	in := newInstance(t)
	var fetches atomic.Int64
	inc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		w.Write([]byte("#cloud-config\nhostname: included\n"))
	}))
	defer inc.Close()
	in.Emu.Set("user-data", []byte("#include\n"+inc.URL+"/cc\n"))
	st := run(t, in, nil)
	if r := handlerstest.Result(st, "hostname"); r.Status != handlers.ResultOK {
		t.Fatalf("hostname: %+v", r)
	}
	if n := fetches.Load(); n != 1 {
		t.Errorf("the #include was fetched %d times in one run, want 1", n)
	}
	if b, _ := os.ReadFile(filepath.Join(in.Root, "etc/hostname")); string(b) != "included\n" {
		t.Errorf("etc/hostname = %q", b)
	}
}

func TestAPluginThatLeavesADaemonRunningSucceeds(t *testing.T) {
	in := newInstance(t)
	in.Plugin(t, "10-daemon", "sleep 5 &\necho started\n")
	st := chain(t, in, nil)
	if r := handlerstest.Result(st, "10-daemon"); r.Status != handlers.ResultOK || !strings.Contains(strings.Join(r.Notes, " "), "background process") {
		t.Fatalf("10-daemon: %s %q %q", r.Status, r.Reason, r.Notes)
	}
}

func TestAnImageRootCannotRedirectFlintsWritesOrPlugInsToTheHost(t *testing.T) {
	in := newInstance(t)
	outside := t.TempDir()
	// var/log points at a host directory; a plug-in is a symlink to a host
	// program.
	os.MkdirAll(filepath.Join(in.Root, "var"), 0o755)
	os.Symlink(outside, filepath.Join(in.Root, "var/log"))
	os.WriteFile(filepath.Join(outside, "evil"), []byte("#!/bin/sh\ntouch \"$FLINT_ROOT/evil-ran\"\n"), 0o755)
	os.MkdirAll(filepath.Join(in.Root, "etc/flint/handlers.d"), 0o755)
	os.Symlink(filepath.Join(outside, "evil"), filepath.Join(in.Root, "etc/flint/handlers.d/10-link"))
	in.Plugin(t, "20-real", "echo from-the-image\n")
	st := chain(t, in, nil)
	if got := statuses(st); got != "hostname=ok 20-real=ok" {
		t.Errorf("statuses %s: the symlinked plug-in must not be in the chain", got)
	}
	if _, err := os.Stat(filepath.Join(in.Root, "evil-ran")); err == nil {
		t.Error("a plug-in symlinked to a host file ran")
	}
	if _, err := os.Stat(filepath.Join(outside, "flint-output.log")); err == nil {
		t.Error("the output log was written through var/log's symlink onto the host")
	}
}

func TestWhenIMDSIsGonePerBootWorkRunsFromTheMetadataTheLastBootKept(t *testing.T) {
	in := newInstance(t)
	in.Config(t, "imds:\n  deadline: 1s\nhandlers:\n  exec_frequency: per-boot\n")
	in.Plugin(t, "10-per-boot", `cat >> "$FLINT_ROOT/plugin-input"; echo >> "$FLINT_ROOT/plugin-input"`+"\n")
	keep := func(s *handlers.Setup) { s.Skip = otherBuiltins("hostname", "timezone") }

	// The first boot reads the service and keeps what it read; timezone
	// (per-instance) is left for later.
	st := run(t, in, func(s *handlers.Setup) { keep(s); s.Skip = append(s.Skip, "timezone") })
	if st.State != handlers.StateDone {
		t.Fatalf("first boot: %s %q", st.State, st.Warnings)
	}
	snap := filepath.Join(in.Root, "var/lib/flint/instances/i-0123456789abcdef0", handlers.MetadataFile)
	fi, err := os.Stat(snap)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("kept metadata: %v (mode %v), want a 0600 file", err, fi.Mode().Perm())
	}

	// The service is gone: every request hangs past the deadline.
	in.Emu.AddFault(imdstest.Fault{Drop: true})
	os.WriteFile(filepath.Join(in.Root, "etc/hostname"), []byte("stale\n"), 0o644)
	var notified []string
	st, logs := in.Run(t, func(s *handlers.Setup) {
		keep(s)
		s.Notify = func(l string) { notified = append(notified, l) }
	})
	if st.State != handlers.StateDegraded || st.InstanceID != "i-0123456789abcdef0" {
		t.Fatalf("boot without IMDS: %s %q %q\n%s", st.State, st.InstanceID, st.Error, logs)
	}
	if !slices.ContainsFunc(st.Warnings, func(w string) bool {
		return strings.HasPrefix(w, "metadata service unreachable for 1s; per-boot work ran from the metadata kept at ")
	}) {
		t.Errorf("warnings %q do not say the service was unreachable", st.Warnings)
	}
	if !slices.Contains(notified, "READY=1") {
		t.Errorf("systemd was not told READY: %q", notified)
	}
	if r := handlerstest.Result(st, "10-per-boot"); r.Status != handlers.ResultOK {
		t.Errorf("per-boot plug-in: %s (%s)", r.Status, r.Reason)
	}
	if r := handlerstest.Result(st, "timezone"); r.Status != handlers.ResultNotRun || !strings.Contains(r.Reason, "metadata service") {
		t.Errorf("per-instance handler ran from kept metadata: %s (%s)", r.Status, r.Reason)
	}
	if got := strings.TrimSpace(in.ReadFile(t, "etc/hostname")); got == "stale" {
		t.Errorf("hostname did not run from the kept metadata")
	}
	// The plug-in got the same placement both times: the second from the
	// kept values.
	inputs := strings.Split(strings.TrimSpace(in.ReadFile(t, "plugin-input")), "\n")
	if len(inputs) != 2 {
		t.Fatalf("plug-in ran %d times, want 2", len(inputs))
	}
	var first, second struct{ Metadata map[string]string }
	json.Unmarshal([]byte(inputs[0]), &first)
	json.Unmarshal([]byte(inputs[1]), &second)
	if first.Metadata["instance-type"] == "" || first.Metadata["instance-type"] != second.Metadata["instance-type"] {
		t.Errorf("plug-in metadata: first %v, second %v", first.Metadata, second.Metadata)
	}
	// The kept file is not replaced by a run that used it.
	if fi2, _ := os.Stat(snap); !fi2.ModTime().Equal(fi.ModTime()) {
		t.Error("a run from the kept metadata rewrote it")
	}

	// A service that refuses connections is gone too.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	st, logs = in.Run(t, func(s *handlers.Setup) { keep(s); s.Endpoint = closed })
	if st.State != handlers.StateDegraded || handlerstest.Result(st, "10-per-boot").Status != handlers.ResultOK {
		t.Fatalf("boot with IMDS refusing connections: %s %q\n%s", st.State, st.Warnings, logs)
	}

	// Without a kept snapshot the run fails as before, with one line.
	bare := newInstance(t)
	bare.Config(t, "imds:\n  deadline: 1s\n")
	bare.Emu.AddFault(imdstest.Fault{Drop: true})
	_, err = handlers.Execute(context.Background(), handlers.Setup{Root: bare.Root, Endpoint: bare.URL, Catalog: builtin.Catalog(),
		Skip: otherBuiltins("hostname"), Stderr: &bytes.Buffer{}, Getenv: func(string) string { return "" }})
	if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "no earlier boot kept metadata") {
		t.Fatalf("without kept metadata: %v", err)
	}
}

func TestTheKeptMetadataHoldsNoUserDataOrCredentials(t *testing.T) {
	in := newInstance(t)
	in.Emu.Set("user-data", []byte("#cloud-config\nchpasswd:\n  list: |\n    root:Sup3rSecretPw\n"))
	run(t, in, nil)
	b, err := os.ReadFile(filepath.Join(in.Root, "var/lib/flint/instance", handlers.MetadataFile))
	if err != nil {
		t.Fatal(err)
	}
	var snap struct{ Values map[string]string }
	if err := json.Unmarshal(b, &snap); err != nil || snap.Values["meta-data/instance-id"] == "" {
		t.Fatalf("kept metadata %s: %v", b, err)
	}
	for _, bad := range []string{"Sup3rSecretPw", "SecretAccessKey", `"Token"`, `"user-data"`} {
		if strings.Contains(string(b), bad) {
			t.Errorf("kept metadata holds %s", bad)
		}
	}
}
