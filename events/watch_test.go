package events_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flint-dev/flint/events"
	"github.com/flint-dev/flint/imds"
	"github.com/flint-dev/flint/imds/imdstest"
	"github.com/flint-dev/flint/internal/config"
	"github.com/flint-dev/flint/internal/rootfs"
)

// host serves an emulator on a loopback address that can go away and
// come back on the same port, as IMDS does when it is unreachable.
type host struct {
	t    *testing.T
	emu  *imdstest.Server
	addr string
	mu   sync.Mutex
	srv  *http.Server
}

func newHost(t *testing.T) *host {
	tree, err := imdstest.ParseFixture(imdstest.DefaultFixture)
	if err != nil {
		t.Fatal(err)
	}
	h := &host{t: t, emu: imdstest.New(tree, imdstest.Options{}), addr: "127.0.0.1:0"}
	h.up()
	t.Cleanup(func() { h.down(); h.emu.Close() })
	return h
}

func (h *host) up() {
	ln, err := net.Listen("tcp", h.addr)
	if err != nil {
		h.t.Fatalf("listen %s: %v", h.addr, err)
	}
	h.mu.Lock()
	h.addr = ln.Addr().String()
	h.srv = &http.Server{Handler: h.emu}
	go h.srv.Serve(ln)
	h.mu.Unlock()
}

func (h *host) down() {
	h.mu.Lock()
	h.srv.Close()
	h.mu.Unlock()
}

func (h *host) client(t *testing.T) *imds.Client {
	// Faults here fail at once; generous timeouts keep a loaded machine
	// from turning a slow answer into an IMDSv1 fallback.
	c, err := imds.New(imds.Options{Endpoint: "http://" + h.addr, AttemptTimeout: 5 * time.Second, TokenTimeout: 5 * time.Second, MaxAttempts: 2, MaxBackoff: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// logBuf collects the watcher's log lines.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *logBuf) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }
func (l *logBuf) count(s string) int          { return strings.Count(l.String(), s) }

const recordHook = `#!/bin/sh
printf '%s %s ' "$FLINT_EVENT" "$FLINT_EVENT_TIME" >> hook.log
tr -d '\n' >> hook.log
echo >> hook.log
echo "hook saw $FLINT_EVENT"
`

type rig struct {
	t      *testing.T
	h      *host
	root   *rootfs.Root
	dir    string
	log    *logBuf
	cfg    config.Events
	client *imds.Client
	dry    bool
}

func newRig(t *testing.T, period time.Duration) *rig {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "etc/flint/events.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "etc/flint/events.d/10-record"), []byte(recordHook), 0o755)
	os.WriteFile(filepath.Join(dir, "etc/flint/events.d/20-not-executable"), []byte(recordHook), 0o644)
	root, err := rootfs.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	cfg := config.Default().Events
	p := config.Duration(period)
	cfg.Periods = config.EventPeriods{Spot: p, Rebalance: p, Scheduled: p, Lifecycle: p}
	cfg.HooksDir = "/etc/flint/events.d"
	cfg.HookTimeout = config.Duration(10 * time.Second)
	h := newHost(t)
	return &rig{t: t, h: h, root: root, dir: dir, log: &logBuf{}, cfg: cfg, client: h.client(t)}
}

// start runs a watcher (as after a restart: a new process state, the
// record of this boot read again) until the returned stop is called.
func (r *rig) start() (stop func()) {
	seen, err := events.OpenSeen(r.root, "boot-1")
	if err != nil {
		r.t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(r.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	w := &events.Watcher{
		Metadata: r.client, Config: r.cfg, Seen: seen, Log: log,
		Hooks: &events.Hooks{Root: r.root, Dir: r.cfg.HooksDir, Timeout: time.Duration(r.cfg.HookTimeout), Log: log, DryRun: r.dry},
	}
	for _, a := range r.cfg.Actions {
		if a == "shutdown" {
			w.Shutdown = &events.Shutdown{Command: r.cfg.ShutdownCommand, Log: log, DryRun: r.dry}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Watch(ctx); close(done) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	r.t.Cleanup(stop)
	return stop
}

func (r *rig) hookLines() []string {
	b, _ := os.ReadFile(filepath.Join(r.dir, "hook.log"))
	if len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// waitLines waits until the hook log has n lines, up to within.
func (r *rig) waitLines(n int, within time.Duration) ([]string, time.Duration) {
	start := time.Now()
	for {
		got := r.hookLines()
		if len(got) >= n || time.Since(start) > within {
			return got, time.Since(start)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (r *rig) waitLog(s string, within time.Duration) bool {
	for end := time.Now().Add(within); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if strings.Contains(r.log.String(), s) {
			return true
		}
	}
	return false
}

func TestANoticeReachesTheHookWithinAPeriodOnceAndAgainAfterARestartOnlyWhenNew(t *testing.T) {
	period := time.Second
	r := newRig(t, period)
	stop := r.start()
	time.Sleep(2 * period) // idle first: nothing pending, nothing run
	if got := r.hookLines(); len(got) != 0 {
		t.Fatalf("hooks ran with nothing pending: %q", got)
	}

	r.h.emu.Inject(imdstest.Event{Kind: "spot-stop"})
	got, took := r.waitLines(1, period+time.Second)
	if len(got) != 1 {
		t.Fatalf("the Spot notice did not reach the hook within one period plus 1s (%v): %q\n%s", took, got, r.log)
	}
	t.Logf("the notice reached the hook %v after it was injected (period %v)", took.Round(time.Millisecond), period)
	time.Sleep(3 * period)
	if got = r.hookLines(); len(got) != 1 {
		t.Fatalf("the hook ran %d times for one notice: %q", len(got), got)
	}
	fields := strings.SplitN(got[0], " ", 3)
	var msg events.Message
	if err := json.Unmarshal([]byte(fields[2]), &msg); err != nil {
		t.Fatalf("hook stdin %q: %v", fields[2], err)
	}
	if fields[0] != "spot" || msg.Kind != events.Spot || msg.Action != "stop" || msg.InstanceID != "i-0123456789abcdef0" ||
		msg.Tags["Name"] != "web-1" || !strings.Contains(string(msg.Detail), `"action":"stop"`) || fields[1] != msg.Time.Format(time.RFC3339) {
		t.Errorf("hook got %s %s %+v", fields[0], fields[1], msg)
	}
	if n := r.log.count("hook saw spot"); n != 1 {
		t.Errorf("hook output logged %d times, want 1:\n%s", n, r.log)
	}
	if n := r.log.count("event_time=" + msg.Time.Format(time.RFC3339)); n != 1 {
		t.Errorf("notice logged with its EVENT_TIME %d times, want 1:\n%s", n, r.log)
	}

	// The watcher is restarted; the notice is still served.
	stop()
	stop = r.start()
	time.Sleep(3 * period)
	if got = r.hookLines(); len(got) != 1 {
		t.Fatalf("a restarted watcher ran hooks again for the same notice: %q", got)
	}
	// A new notice after the restart runs the hooks once more.
	r.h.emu.Inject(imdstest.Event{Kind: "rebalance"})
	if got, took = r.waitLines(2, period+time.Second); len(got) != 2 || !strings.HasPrefix(got[1], "rebalance") {
		t.Fatalf("a new notice after a restart: hook lines %q after %v", got, took)
	}
	stop()

	// One token and one connection served the whole run of each watcher.
	log := r.h.emu.Log()
	puts, remotes := 0, map[string]bool{}
	for _, q := range log {
		if q.Method == "PUT" {
			puts++
		}
		remotes[q.Remote] = true
	}
	if puts != 1 || len(remotes) != 1 {
		t.Errorf("%d token requests over %d connections for %d requests, want 1 and 1", puts, len(remotes), len(log))
	}
}

func TestTheWatcherKeepsGoingThroughIMDSFaultsAndReportsEachGapOnce(t *testing.T) {
	period := 200 * time.Millisecond
	r := newRig(t, period)
	r.start()
	time.Sleep(2 * period)

	gap := func(t *testing.T, name string, fault func(), heal func()) {
		t.Helper()
		before := r.log.String()
		fault()
		if !r.waitLog("unreadable", 10*time.Second) {
			t.Fatalf("%s: no gap reported:\n%s", name, r.log)
		}
		time.Sleep(4 * period)
		heal()
		if !r.waitLog("answers again", 10*time.Second) {
			t.Fatalf("%s: the end of the gap was not reported:\n%s", name, r.log)
		}
		time.Sleep(2 * period)
		after := strings.TrimPrefix(r.log.String(), before)
		if n := strings.Count(after, "unreadable"); n != 1 {
			t.Errorf("%s: gap start reported %d times:\n%s", name, n, after)
		}
		if n := strings.Count(after, "answers again"); n != 1 {
			t.Errorf("%s: gap end reported %d times:\n%s", name, n, after)
		}
		for _, l := range strings.Split(after, "\n") {
			if strings.Contains(l, "unreadable") || strings.Contains(l, "answers again") {
				t.Logf("%s: %s", name, l)
			}
		}
		r.log.mu.Lock()
		r.log.b.Reset()
		r.log.mu.Unlock()
	}
	t.Run("503s", func(t *testing.T) {
		gap(t, "503s", func() { r.h.emu.AddFault(imdstest.Fault{Path: "meta-data/*", Status: 503, Count: 12}) }, func() {})
	})
	t.Run("connection resets", func(t *testing.T) {
		gap(t, "resets", func() { r.h.emu.AddFault(imdstest.Fault{Path: "meta-data/*", Reset: true, Count: 12}) }, func() {})
	})
	t.Run("the service gone, a notice arriving meanwhile", func(t *testing.T) {
		gap(t, "gone", func() { r.h.down(); r.h.emu.Inject(imdstest.Event{Kind: "spot-terminate"}) }, r.h.up)
		if got, _ := r.waitLines(1, period+time.Second); len(got) != 1 || !strings.HasPrefix(got[0], "spot") {
			t.Errorf("the notice served during the gap: hook lines %q", got)
		}
	})
	t.Run("token expiry is no gap", func(t *testing.T) {
		puts := func() (n int) {
			for _, q := range r.h.emu.Log() {
				if q.Method == "PUT" {
					n++
				}
			}
			return n
		}
		before := puts()
		r.h.emu.ExpireTokens()
		time.Sleep(5 * period)
		if n := r.log.count("unreadable"); n != 0 {
			t.Errorf("token expiry reported as a gap:\n%s", r.log)
		}
		if n := puts() - before; n != 1 {
			t.Errorf("%d token requests after the token expired, want 1", n)
		}
	})
	if got := r.hookLines(); len(got) != 1 {
		t.Errorf("hook lines after all faults: %q, want the one Spot notice", got)
	}
}

func TestTheShutdownActionRunsItsCommandOnceAndOnlyForInterruptions(t *testing.T) {
	for _, dry := range []bool{false, true} {
		name := map[bool]string{false: "for real", true: "as a dry run"}[dry]
		t.Run(name, func(t *testing.T) {
			r := newRig(t, 100*time.Millisecond)
			r.dry = dry
			marker := filepath.Join(r.dir, "poweroff")
			r.cfg.Actions = []string{"log", "shutdown"}
			// Spot gives two minutes; a margin above that powers off at once.
			r.cfg.ShutdownBefore = config.Duration(3 * time.Minute)
			r.cfg.ShutdownCommand = []string{"/bin/sh", "-c", "echo off >> " + marker}
			r.h.emu.Inject(imdstest.Event{Kind: "system-reboot"})
			stop := r.start()
			time.Sleep(500 * time.Millisecond)
			if _, err := os.Stat(marker); err == nil {
				t.Fatal("a scheduled reboot powered off")
			}
			r.h.emu.Inject(imdstest.Event{Kind: "spot-terminate"})
			r.waitLog("shut", 5*time.Second)
			time.Sleep(500 * time.Millisecond)
			stop()
			b, _ := os.ReadFile(marker)
			switch {
			case dry && (len(b) != 0 || !strings.Contains(r.log.String(), "dry run: would shut down")):
				t.Errorf("dry run: command output %q; log:\n%s", b, r.log)
			case !dry && string(b) != "off\n":
				t.Errorf("shutdown command ran %q times; log:\n%s", b, r.log)
			}
			if n := r.log.count("would run hook"); dry && n != 2 {
				t.Errorf("dry run: %d hooks would have run, want 2 (one per notice)", n)
			}
		})
	}
}

func TestTagsAreNoneWhenTheInstanceDoesNotExposeThem(t *testing.T) {
	h := newHost(t)
	c := h.client(t)
	tags, err := events.Tags(t.Context(), c)
	if err != nil || tags["Name"] != "web-1" || tags["Environment"] != "staging" || len(tags) != 2 {
		t.Fatalf("tags %v, %v", tags, err)
	}
	h.emu.Delete("meta-data/tags")
	tags, err = events.Tags(t.Context(), c)
	if err != nil || tags != nil {
		t.Fatalf("tags without tags/instance: %v, %v; want none and no error", tags, err)
	}
}

func TestTheRecordOfHandledNoticesSurvivesARestartButNotAReboot(t *testing.T) {
	root, err := rootfs.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	s, err := events.OpenSeen(root, "boot-1")
	if err != nil {
		t.Fatal(err)
	}
	if first, err := s.Add("spot:stop@x", time.Now()); !first || err != nil {
		t.Fatalf("first Add: %v %v", first, err)
	}
	if first, _ := s.Add("spot:stop@x", time.Now()); first {
		t.Fatal("second Add of the same notice was first")
	}
	again, err := events.OpenSeen(root, "boot-1")
	if err != nil || !again.Has("spot:stop@x") {
		t.Fatalf("after a restart: has = %v, %v", again.Has("spot:stop@x"), err)
	}
	next, err := events.OpenSeen(root, "boot-2")
	if err != nil || next.Has("spot:stop@x") {
		t.Fatalf("after a reboot: has = %v, %v", next.Has("spot:stop@x"), err)
	}
	os.WriteFile(root.Path(events.SeenPath), []byte("{not json"), 0o644)
	bad, err := events.OpenSeen(root, "boot-1")
	if err == nil || !strings.Contains(err.Error(), "malformed") || strings.Contains(err.Error(), "\n") || bad == nil || bad.Has("spot:stop@x") {
		t.Fatalf("a malformed record: %v", err)
	}
}

func TestAMalformedNoticeIsLoggedOnceAndIsNoGap(t *testing.T) {
	r := newRig(t, 100*time.Millisecond)
	r.h.emu.Set("meta-data/spot/instance-action", []byte("<html>oops</html>"))
	r.start()
	time.Sleep(time.Second)
	if n := r.log.count("malformed notice"); n != 1 {
		t.Errorf("malformed notice logged %d times over 10 polls, want 1:\n%s", n, r.log)
	}
	if n := r.log.count("unreadable"); n != 0 {
		t.Errorf("a malformed answer was reported as a gap:\n%s", r.log)
	}
	if got := r.hookLines(); len(got) != 0 {
		t.Errorf("hooks ran for a malformed notice: %q", got)
	}
}

func TestARestartedWatcherArmsTheShutdownAgainButDoesNotRerunHooks(t *testing.T) {
	r := newRig(t, 100*time.Millisecond)
	marker := filepath.Join(r.dir, "poweroff")
	r.cfg.Actions = []string{"shutdown"}
	// Spot gives two minutes: power off two seconds after the notice.
	r.cfg.ShutdownBefore = config.Duration(2*time.Minute - 2*time.Second)
	r.cfg.ShutdownCommand = []string{"/bin/sh", "-c", "echo off >> " + marker}
	stop := r.start()
	r.h.emu.Inject(imdstest.Event{Kind: "spot-terminate"})
	if !r.waitLog("shutdown scheduled", 5*time.Second) {
		t.Fatalf("no shutdown scheduled:\n%s", r.log)
	}
	stop() // before the shutdown time: the first watcher's timer dies with it
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the shutdown ran before its time")
	}
	r.start()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(marker); err == nil {
			break
		}
	}
	time.Sleep(500 * time.Millisecond)
	if b, _ := os.ReadFile(marker); string(b) != "off\n" {
		t.Errorf("shutdown command output %q after a restart, want one run:\n%s", b, r.log)
	}
	if got := r.hookLines(); len(got) != 1 {
		t.Errorf("hook lines %q, want the one run before the restart", got)
	}
}
