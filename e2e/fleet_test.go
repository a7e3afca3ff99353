package e2e

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flint-dev/flint/internal/testenv"
	"github.com/flint-dev/flint/modules"
)

// fleetServer serves one bundle to a fleet: every third instance's first
// request gets 503 SlowDown with Retry-After, every fifth instance's first
// download is cut halfway. It counts per instance (the ?i= of its URL).
type fleetServer struct {
	bundle []byte
	mu     sync.Mutex
	per    map[string]*fleetCount
}

type fleetCount struct {
	requests, slowdowns, ranges int
	bodies                      int // responses with a body so far
	bytes                       int64
	slowAt                      time.Time
	earlyRetry                  bool // a request came before Retry-After allowed
}

const fleetRetryAfter = time.Second

func (s *fleetServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("i")
	n, _ := strconv.Atoi(id)
	s.mu.Lock()
	c := s.per[id]
	if c == nil {
		c = &fleetCount{}
		s.per[id] = c
	}
	c.requests++
	first := c.requests == 1
	if !c.slowAt.IsZero() && time.Since(c.slowAt) < fleetRetryAfter {
		c.earlyRetry = true
	}
	if r.Header.Get("Range") != "" {
		c.ranges++
	}
	s.mu.Unlock()
	if first && n%3 == 0 {
		s.mu.Lock()
		c.slowdowns++
		c.slowAt = time.Now()
		s.mu.Unlock()
		w.Header().Set("Retry-After", strconv.Itoa(int(fleetRetryAfter/time.Second)))
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>")
		return
	}
	body := s.bundle
	status := http.StatusOK
	if rg := r.Header.Get("Range"); rg != "" {
		from, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(rg, "bytes="), "-"))
		if err != nil || from >= len(body) {
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return
		}
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", from, len(body)-1, len(body)))
		body, status = body[from:], http.StatusPartialContent
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	s.mu.Lock()
	cut := c.bodies == 0 && n%5 == 1
	c.bodies++
	s.mu.Unlock()
	if cut {
		body = body[:len(body)/2]
	}
	written, _ := w.Write(body)
	s.mu.Lock()
	c.bytes += int64(written)
	s.mu.Unlock()
	if cut {
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // the connection drops mid-body
	}
}

// fleetSize is how many installs run at once: a handful in CI,
// FLINT_FLEET_N (bench/fleet.sh sets 50) for the load figures.
func fleetSize(t *testing.T) int {
	if v := os.Getenv("FLINT_FLEET_N"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("FLINT_FLEET_N=%q", v)
		}
		return n
	}
	return 12
}

// TestAFleetInstallingAtOnceCompletesWithinItsBundlePlusResumes runs
// concurrent "flint modules install" processes against one loopback
// server that throttles and cuts some of them: every install completes,
// throttled ones wait at least Retry-After, and none downloads more than
// its bundle plus what a resume repeats.
func TestAFleetInstallingAtOnceCompletesWithinItsBundlePlusResumes(t *testing.T) {
	testenv.Tool(t, "depmod")
	flint := testenv.FlintBinary(t)
	n := fleetSize(t)
	dir := t.TempDir()
	const release = "6.1.0-99-cloud-amd64"
	tree := filepath.Join(dir, "src", release)
	os.MkdirAll(filepath.Join(tree, "kernel"), 0o755)
	noise := make([]byte, 2<<20)
	rand.Read(noise)
	os.WriteFile(filepath.Join(tree, "kernel", "noise.ko"), noise, 0o644)
	os.WriteFile(filepath.Join(tree, "modules.order"), nil, 0o644)
	res, err := modules.Pack(modules.PackOptions{Source: tree, Out: filepath.Join(dir, "b.tar.zst")})
	if err != nil {
		t.Fatal(err)
	}
	bundle, err := os.ReadFile(res.Path)
	if err != nil {
		t.Fatal(err)
	}
	srv := &fleetServer{bundle: bundle, per: map[string]*fleetCount{}}
	ts := httptest.NewServer(srv)
	defer ts.Close()

	durations := make([]time.Duration, n)
	errs := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			root := filepath.Join(dir, "root"+strconv.Itoa(i))
			cmd := exec.Command(flint, "modules", "install", "--root", root, "--release", release, "--no-metadata",
				"--bundle", ts.URL+"/b.tar.zst?i="+strconv.Itoa(i), "--sha256", res.SHA256)
			start := time.Now()
			out, err := cmd.CombinedOutput()
			durations[i] = time.Since(start)
			if err != nil {
				errs[i] = fmt.Sprintf("install %d: %v: %s", i, err, out)
			}
		}()
	}
	wg.Wait()
	for _, e := range errs {
		if e != "" {
			t.Error(e)
		}
	}
	var bytes int64
	slowdowns, resumes := 0, 0
	srv.mu.Lock()
	defer srv.mu.Unlock()
	for i := range n {
		c := srv.per[strconv.Itoa(i)]
		if c == nil {
			t.Errorf("instance %d never asked", i)
			continue
		}
		bytes += c.bytes
		slowdowns += c.slowdowns
		resumes += c.ranges
		// What a resume repeats is at most what was in flight when the
		// connection dropped: bounded by the cut half, far below a bundle.
		if limit := int64(len(bundle)) + int64(c.ranges)*int64(len(bundle))/2; c.bytes > limit {
			t.Errorf("instance %d downloaded %d bytes of a %d-byte bundle", i, c.bytes, len(bundle))
		}
		if c.earlyRetry {
			t.Errorf("instance %d retried before Retry-After", i)
		}
		if i%5 == 1 && c.ranges == 0 {
			t.Errorf("instance %d was cut but did not resume with Range", i)
		}
	}
	sort.Slice(durations, func(a, b int) bool { return durations[a] < durations[b] })
	pct := func(p float64) time.Duration { return durations[int(p*float64(n-1)+0.5)] }
	t.Logf("fleet: %d installs of a %d-byte bundle, %d bytes served (%.2f bundles each), %d SlowDown retries, %d Range resumes, p50 %v, p99 %v",
		n, len(bundle), bytes, float64(bytes)/float64(n)/float64(len(bundle)), slowdowns, resumes,
		pct(0.5).Round(time.Millisecond), pct(0.99).Round(time.Millisecond))
}
