package imds

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// remotes serves body on every path and records the client address of
// each request, so tests see which connection carried what.
type remotes struct {
	mu    sync.Mutex
	addrs []string
	body  string
}

func (r *remotes) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.addrs = append(r.addrs, req.RemoteAddr)
	r.mu.Unlock()
	io.WriteString(w, r.body)
}

func (r *remotes) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.addrs...)
}

func v1Client(t *testing.T, endpoint string, opts Options) *Client {
	t.Helper()
	opts.Endpoint, opts.Mode = endpoint, ModeV1
	opts.Getenv = func(string) string { return "" }
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.hc.Transport.(*connTransport); !ok {
		t.Fatalf("an http endpoint got transport %T, want *connTransport", c.hc.Transport)
	}
	return c
}

func TestAnIdleConnectionTheServerClosedIsRedialedWithoutARetry(t *testing.T) {
	h := &remotes{body: "i-1"}
	ts := httptest.NewServer(h)
	defer ts.Close()
	var notes []string
	c := v1Client(t, ts.URL, Options{Logf: func(f string, a ...any) { notes = append(notes, f) }})
	for i := range 2 {
		if b, err := c.Get(context.Background(), "meta-data/instance-id"); err != nil || string(b) != "i-1" {
			t.Fatalf("Get %d = %q, %v", i, b, err)
		}
		ts.CloseClientConnections() // the idle connection dies under the client
	}
	if addrs := h.seen(); len(addrs) != 2 || addrs[0] == addrs[1] {
		t.Errorf("requests came from %v, want two different connections", addrs)
	}
	if got := c.Stats().Requests; got != 2 {
		t.Errorf("client counted %d requests, want 2 (the redial is not an attempt)", got)
	}
	if len(notes) != 0 {
		t.Errorf("a redial of a stale connection was logged as a retry: %q", notes)
	}
}

func TestABodyNotReadToItsEndClosesItsConnection(t *testing.T) {
	h := &remotes{body: strings.Repeat("x", 4096)}
	ts := httptest.NewServer(h)
	defer ts.Close()
	c := v1Client(t, ts.URL, Options{MaxResponseBytes: 100, MaxAttempts: 1})
	if _, err := c.Get(context.Background(), "meta-data/big"); err == nil || !strings.Contains(err.Error(), "larger than 100 bytes") {
		t.Fatalf("oversized answer: err = %v, want a size refusal", err)
	}
	h.body = "small"
	if b, err := c.Get(context.Background(), "meta-data/small"); err != nil || string(b) != "small" {
		t.Fatalf("next Get = %q, %v", b, err)
	}
	if addrs := h.seen(); len(addrs) != 2 || addrs[0] == addrs[1] {
		t.Errorf("requests came from %v: the connection with an unread body was reused", addrs)
	}
}

func TestConnectionCloseFromTheServerIsHonoured(t *testing.T) {
	h := &remotes{body: "v"}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		h.ServeHTTP(w, r)
	}))
	defer ts.Close()
	c := v1Client(t, ts.URL, Options{})
	for range 2 {
		if _, err := c.Get(context.Background(), "meta-data/x"); err != nil {
			t.Fatal(err)
		}
	}
	if addrs := h.seen(); len(addrs) != 2 || addrs[0] == addrs[1] {
		t.Errorf("requests came from %v, want a new connection after Connection: close", addrs)
	}
}

// loopback listens on a free port of 127.0.0.1 for the test's duration.
func loopback(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// silent accepts connections, reads what they send and never answers.
func silent(t *testing.T) string {
	t.Helper()
	ln := loopback(t)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(io.Discard, conn); conn.Close() }()
		}
	}()
	return "http://" + ln.Addr().String()
}

func TestCancellationInterruptsAnAttemptThatWaitsForAnAnswer(t *testing.T) {
	// The attempt may wait an hour: only the cancellation can end it
	// before the test binary's own timeout does.
	c := v1Client(t, silent(t), Options{AttemptTimeout: time.Hour, MaxAttempts: 1})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err := c.Get(ctx, "meta-data/instance-id")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestAnUnansweredAttemptEndsAtItsOwnDeadline(t *testing.T) {
	c := v1Client(t, silent(t), Options{AttemptTimeout: 50 * time.Millisecond, MaxAttempts: 2, MaxBackoff: time.Millisecond})
	_, err := c.Get(context.Background(), "meta-data/instance-id")
	if !errors.Is(err, errAttemptTimeout) || !strings.Contains(err.Error(), "gave up after 2 attempts") {
		t.Fatalf("err = %v, want two attempts that each got no answer in time", err)
	}
}

func TestWaitingForABusyConnectionSlotEndsAtTheDeadline(t *testing.T) {
	ts := httptest.NewServer(&remotes{body: "v"})
	defer ts.Close()
	tr := newConnTransport(1)
	req := func(ctx context.Context) *http.Request {
		r, err := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/latest/meta-data/x", nil)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	held, err := tr.RoundTrip(req(context.Background()))
	if err != nil {
		t.Fatal(err)
	}
	ctx := &deadlineCtx{Context: context.Background(), deadline: time.Now().Add(50 * time.Millisecond)}
	if _, err := tr.RoundTrip(req(ctx)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second request while the only slot is held: err = %v, want DeadlineExceeded", err)
	}
	io.Copy(io.Discard, held.Body)
	held.Body.Close()
	resp, err := tr.RoundTrip(req(context.Background()))
	if err != nil {
		t.Fatalf("request after the slot was given back: %v", err)
	}
	resp.Body.Close()
}

func TestTheTransportWritesWhatIMDSExpects(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan string, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		br := bufio.NewReader(conn)
		var head strings.Builder
		for {
			line, err := br.ReadString('\n')
			head.WriteString(line)
			if err != nil || line == "\r\n" {
				break
			}
		}
		got <- head.String()
		io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\ntoken")
	}()
	c, err := New(Options{Endpoint: "http://" + ln.Addr().String(), Mode: ModeV2Only, Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.fetchToken(context.Background()); err != nil {
		t.Fatal(err)
	}
	head := <-got
	for _, want := range []string{
		"PUT /latest/api/token HTTP/1.1\r\n",
		"Host: " + ln.Addr().String() + "\r\n",
		"Content-Length: 0\r\n",
		"X-Aws-Ec2-Metadata-Token-Ttl-Seconds: 21600\r\n",
		"User-Agent: flint\r\n",
	} {
		if !strings.Contains(head, want) {
			t.Errorf("request head lacks %q:\n%s", want, head)
		}
	}
}

func TestAConnectionIdleTooLongIsNotReused(t *testing.T) {
	h := &remotes{body: "v"}
	ts := httptest.NewServer(h)
	defer ts.Close()
	c := v1Client(t, ts.URL, Options{})
	c.hc.Transport.(*connTransport).maxIdle = 0 // every idle connection is too old
	for range 2 {
		if _, err := c.Get(context.Background(), "meta-data/x"); err != nil {
			t.Fatal(err)
		}
	}
	if addrs := h.seen(); len(addrs) != 2 || addrs[0] == addrs[1] {
		t.Errorf("requests came from %v, want a new connection after the idle limit", addrs)
	}
}

// scripted serves raw HTTP: each accepted connection gets the next
// script, which reads requests and writes what it wants.
func scripted(t *testing.T, scripts ...func(br *bufio.Reader, c net.Conn)) string {
	t.Helper()
	ln := loopback(t)
	go func() {
		for _, script := range scripts {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				script(bufio.NewReader(c), c)
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

func readRequest(br *bufio.Reader) bool {
	req, err := http.ReadRequest(br)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, req.Body)
	return true
}

func TestWhatAServerSendsOnAnIdleConnectionIsNotTakenForTheNextAnswer(t *testing.T) {
	answered, sent := make(chan struct{}), make(chan struct{})
	endpoint := scripted(t,
		func(br *bufio.Reader, c net.Conn) {
			readRequest(br)
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nv")
			// Then, once the client has put the connection back, and
			// unasked, what some servers send before they close an idle
			// connection.
			<-answered
			io.WriteString(c, "HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
			close(sent)
			readRequest(br) // a client that reused the connection would be answered by the 408 above
		},
		func(br *bufio.Reader, c net.Conn) {
			readRequest(br)
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nw")
		})
	var notes []string
	c := v1Client(t, endpoint, Options{Logf: func(f string, a ...any) { notes = append(notes, f) }})
	if b, err := c.Get(context.Background(), "meta-data/x"); err != nil || string(b) != "v" {
		t.Fatalf("first Get = %q, %v", b, err)
	}
	close(answered)
	<-sent
	time.Sleep(20 * time.Millisecond) // let the 408 reach the client's socket
	if b, err := c.Get(context.Background(), "meta-data/x"); err != nil || string(b) != "w" {
		t.Fatalf("second Get = %q, %v; want the answer from a new connection", b, err)
	}
	if len(notes) != 0 {
		t.Errorf("the stale connection cost a retry: %q", notes)
	}
}

func TestAnOversizedResponseHeaderIsRefusedAndNotRetried(t *testing.T) {
	var mu sync.Mutex
	requests := 0
	big := func(br *bufio.Reader, c net.Conn) {
		if readRequest(br) {
			mu.Lock()
			requests++
			mu.Unlock()
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Padding: "+strings.Repeat("a", 200<<10)+"\r\nContent-Length: 1\r\n\r\nv")
	}
	c := v1Client(t, scripted(t, big, big, big, big), Options{MaxBackoff: time.Millisecond})
	_, err := c.Get(context.Background(), "meta-data/x")
	if !errors.Is(err, errHeaderTooLarge) {
		t.Fatalf("err = %v, want the header refused", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if requests != 1 {
		t.Errorf("the server was asked %d times, want 1", requests)
	}
}
