package modules

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"
)

// reqLog records what a test server was asked.
type reqLog struct {
	mu   sync.Mutex
	reqs []string
}

func (l *reqLog) add(r *http.Request) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := r.Method + " " + r.URL.Path
	if rg := r.Header.Get("Range"); rg != "" {
		s += " " + rg
	}
	l.reqs = append(l.reqs, s)
	return len(l.reqs)
}

func (l *reqLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.reqs...)
}

// serveBundle is a server for one bundle whose behaviour on the n-th
// request (1-based) the test decides; nil means serve normally with
// http.ServeContent (which honours Range).
func serveBundle(t *testing.T, body []byte, on func(n int, w http.ResponseWriter, r *http.Request) bool) (*httptest.Server, *reqLog) {
	log := &reqLog{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := log.add(r)
		if on != nil && on(n, w, r) {
			return
		}
		http.ServeContent(w, r, "b.tar.gz", time.Time{}, bytes.NewReader(body))
	}))
	t.Cleanup(srv.Close)
	return srv, log
}

func httpInstall(t *testing.T, f *Fetcher, b Bundle) (Result, error) {
	t.Helper()
	in := &Installer{Root: filepath.Join(t.TempDir(), "root"), Release: rel, Depmod: fakeDepmod, Open: f.Open, NoSync: true}
	return in.Install(context.Background(), b)
}

func fastFetcher(srv *httptest.Server) *Fetcher {
	return &Fetcher{Client: srv.Client(), Backoff: time.Millisecond}
}

func TestDownloadResumesWithRangeWhereTheConnectionDropped(t *testing.T) {
	body := compress(t, FormatTarGz, makeTar(t, crashBundleTree("new", 50)))
	half := len(body) / 2
	srv, log := serveBundle(t, body, func(n int, w http.ResponseWriter, r *http.Request) bool {
		if n != 1 {
			return false
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.Header().Set("ETag", `"v1"`)
		w.WriteHeader(http.StatusOK)
		w.Write(body[:half])
		w.(http.Flusher).Flush()
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close()
		return true
	})
	b := Bundle{URL: srv.URL + "/b.tar.gz", SHA256: digest(body), Pinned: true}
	if _, err := httpInstall(t, fastFetcher(srv), b); err != nil {
		t.Fatal(err)
	}
	got := log.get()
	if len(got) != 2 || got[0] != "GET /b.tar.gz" || !strings.HasPrefix(got[1], "GET /b.tar.gz bytes=") {
		t.Fatalf("requests %q, want a full GET then one Range GET", got)
	}
	var off int
	fmt.Sscanf(strings.TrimPrefix(got[1], "GET /b.tar.gz bytes="), "%d-", &off)
	if off == 0 || off > half {
		t.Fatalf("resumed at %d, received %d", off, half)
	}
}

func TestDownloadSkipsAheadWhenTheServerIgnoresRange(t *testing.T) {
	body := compress(t, FormatTarGz, makeTar(t, crashBundleTree("new", 50)))
	srv, log := serveBundle(t, body, func(n int, w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.WriteHeader(http.StatusOK)
		if n == 1 {
			w.Write(body[:len(body)/3])
			w.(http.Flusher).Flush()
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
			return true
		}
		w.Write(body) // no Range support: the whole object again
		return true
	})
	if _, err := httpInstall(t, fastFetcher(srv), Bundle{URL: srv.URL + "/b.tar.gz", SHA256: digest(body), Pinned: true}); err != nil {
		t.Fatal(err)
	}
	if n := len(log.get()); n != 2 {
		t.Fatalf("%d requests, want 2", n)
	}
}

func TestDownloadRetriesServerErrorsButNotClientErrors(t *testing.T) {
	body := compress(t, FormatTarGz, makeTar(t, goodTree(rel, "new")))
	for _, tc := range []struct {
		name     string
		statuses []int // answers before a normal one; 0 = normal
		retries  int
		wantReqs int
		wantErr  string
	}{
		{"two 503s then success installs", []int{503, 503}, 5, 3, ""},
		{"a 429 is retried", []int{429}, 5, 2, ""},
		{"persistent 500s give up after the retries", []int{500, 500, 500, 500}, 2, 3, "gave up after 3 attempts"},
		{"a 404 is final", []int{404}, 5, 1, "HTTP 404"},
		{"a 403 is final", []int{403}, 5, 1, "HTTP 403"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, log := serveBundle(t, body, func(n int, w http.ResponseWriter, r *http.Request) bool {
				if n <= len(tc.statuses) {
					w.WriteHeader(tc.statuses[n-1])
					return true
				}
				return false
			})
			f := fastFetcher(srv)
			f.Retries = tc.retries
			_, err := httpInstall(t, f, Bundle{URL: srv.URL + "/b.tar.gz", SHA256: digest(body), Pinned: true})
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("got %v, want error %q", err, tc.wantErr)
			}
			if got := len(log.get()); got != tc.wantReqs {
				t.Fatalf("%d requests, want %d: %q", got, tc.wantReqs, log.get())
			}
		})
	}
}

func TestPlainHTTPNeedsAPinnedDigest(t *testing.T) {
	body := compress(t, FormatTarGz, makeTar(t, goodTree(rel, "new")))
	srv, log := serveBundle(t, body, nil)
	b := Bundle{URL: srv.URL + "/b.tar.gz", SHA256: digest(body)}
	if _, err := httpInstall(t, fastFetcher(srv), b); err == nil || !strings.Contains(err.Error(), "pinned") {
		t.Fatalf("unpinned http: %v", err)
	}
	if n := len(log.get()); n != 0 {
		t.Fatalf("an unpinned http bundle was requested %d times", n)
	}
	b.Pinned = true
	if _, err := httpInstall(t, fastFetcher(srv), b); err != nil {
		t.Fatalf("pinned http: %v", err)
	}
}

func TestHTTPSRedirectToPlainHTTPIsRefused(t *testing.T) {
	body := compress(t, FormatTarGz, makeTar(t, goodTree(rel, "new")))
	plain, plainLog := serveBundle(t, body, nil)
	tls := httptest.NewTLSServer(http.RedirectHandler(plain.URL+"/b.tar.gz", http.StatusFound))
	defer tls.Close()
	f := &Fetcher{Client: tls.Client(), Backoff: time.Millisecond}
	_, err := httpInstall(t, f, Bundle{URL: tls.URL + "/b.tar.gz", SHA256: digest(body)})
	if err == nil || !strings.Contains(err.Error(), "refusing redirect") {
		t.Fatalf("got %v", err)
	}
	if n := len(plainLog.get()); n != 0 {
		t.Fatalf("the plain HTTP server was asked %d times", n)
	}
}

func TestProgressOffATerminalIsQuietAndPeriodic(t *testing.T) {
	body := compress(t, FormatTarGz, makeTar(t, crashBundleTree("new", 200)))
	srv, _ := serveBundle(t, body, nil)
	install := func() []string {
		var out bytes.Buffer
		f := fastFetcher(srv)
		f.Progress = &out
		if _, err := httpInstall(t, f, Bundle{URL: srv.URL + "/b.tar.gz", SHA256: digest(body), Pinned: true}); err != nil {
			t.Fatal(err)
		}
		return strings.Split(strings.TrimSpace(out.String()), "\n")
	}
	// A download that ends before the first period writes its end only.
	if lines := install(); len(lines) != 1 || !strings.Contains(lines[0], ": done (") {
		t.Fatalf("a quick download's progress: %q", lines)
	}
	// With no period, a line at each 10 % step, then the end: read in
	// small pieces, as a slow network delivers.
	old := progressEvery
	progressEvery = 0
	t.Cleanup(func() { progressEvery = old })
	var out bytes.Buffer
	f := &Fetcher{Progress: &out}
	r := f.withProgress(io.NopCloser(iotest.OneByteReader(bytes.NewReader(make([]byte, 1000)))), "b.tar.gz", 1000)
	if _, err := io.Copy(io.Discard, r); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 11 || !strings.Contains(lines[0], ": 10% ") || !strings.Contains(lines[9], ": 100% ") || !strings.Contains(lines[10], ": done (") {
		t.Fatalf("progress lines:\n%s", out.String())
	}
}

func TestS3WithoutARegionIsAClearError(t *testing.T) {
	_, err := (&Fetcher{}).Open(context.Background(), Bundle{URL: "s3://b/k.tar.gz", SHA256: strings.Repeat("a", 64)})
	if err == nil || !strings.Contains(err.Error(), "region") {
		t.Fatalf("got %v", err)
	}
}

func TestContentRangeParsing(t *testing.T) {
	for in, want := range map[string][3]int64{
		"bytes 100-199/200": {100, 200, 1},
		"bytes 5-9/*":       {5, -1, 1},
		"bytes */200":       {0, 0, 0},
		"items 1-2/3":       {0, 0, 0},
		"":                  {0, 0, 0},
	} {
		s, tot, ok := parseContentRange(in)
		if ok != (want[2] == 1) || ok && (s != want[0] || tot != want[1]) {
			t.Errorf("parseContentRange(%q) = %d, %d, %v", in, s, tot, ok)
		}
	}
}

func TestProgressOnATerminalRedrawsOneLine(t *testing.T) {
	body := compress(t, FormatTarGz, makeTar(t, crashBundleTree("new", 50)))
	srv, _ := serveBundle(t, body, nil)
	var out bytes.Buffer
	f := fastFetcher(srv)
	f.Progress, f.TTY = &out, true
	if _, err := httpInstall(t, f, Bundle{URL: srv.URL + "/b.tar.gz", SHA256: digest(body), Pinned: true}); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	if !strings.HasPrefix(s, "\rfetch ") || !strings.HasSuffix(s, "100% "+mb(int64(len(body)))+"/"+mb(int64(len(body)))+"\n") || strings.Count(s, "\n") != 1 {
		t.Fatalf("terminal progress %q", s)
	}
}

func TestAPresignedURLNeverAppearsInAnError(t *testing.T) {
	f := &Fetcher{Backoff: time.Millisecond}
	b := Bundle{URL: "http://127.0.0.1:1/b.tar.gz?X-Amz-Credential=AKIAEXAMPLE&X-Amz-Security-Token=SECRETTOKEN&X-Amz-Signature=abc",
		SHA256: strings.Repeat("0", 64), Pinned: true}
	_, err := httpInstall(t, f, b)
	if err == nil {
		t.Fatal("a fetch from a closed port succeeded")
	}
	for _, secret := range []string{"SECRETTOKEN", "X-Amz-Signature", "AKIAEXAMPLE"} {
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("error %q reveals %s", err, secret)
		}
	}
}
