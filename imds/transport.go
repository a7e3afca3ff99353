package imds

import (
	"bufio"
	"context"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// connTransport is the client's HTTP/1.1 transport for a plain-http
// endpoint: up to a few keep-alive connections, each request written and
// its answer read on the calling goroutine.
//
// net/http's Transport dials on a goroutine of its own and serves each
// connection with a reader and a writer goroutine, so every exchange hands
// off between threads. For a one-shot command such as `flint query -i`
// those hand-offs cost more than the exchanges themselves. IMDS needs
// none of what they buy: one host, no proxy, no TLS, no HTTP/2, no
// compression, small bodies.
//
// Deadlines come from the request's context and are set on the socket;
// cancellation of the context interrupts a blocked read or write. A
// connect is bounded by the deadline alone: watching the context during
// it would cost the goroutine hand-off this transport exists to avoid,
// and the deadline is one attempt's (two seconds at most by default).
type connTransport struct {
	dialer  net.Dialer
	slots   chan struct{} // one per request in flight, each on its own connection
	maxIdle time.Duration // idle longer, a connection is closed, not reused
	auto    *autoDialer   // endpoint mode auto: picks the address family

	mu   sync.Mutex
	idle []*persistConn
}

type persistConn struct {
	conn      net.Conn
	cap       *capReader // between conn and br: bounds a response header
	br        *bufio.Reader
	bw        *bufio.Writer
	idleSince time.Time
}

func newPersistConn(c net.Conn) *persistConn {
	cr := &capReader{r: c, n: math.MaxInt64}
	return &persistConn{conn: c, cap: cr, br: bufio.NewReaderSize(cr, 4096), bw: bufio.NewWriterSize(c, 1024)}
}

// maxHeaderBytes bounds a response's status line and header. IMDS sends
// a few hundred bytes; the body is capped by the client.
const maxHeaderBytes = 64 << 10

// errHeaderTooLarge ends an answer whose header does not fit maxHeaderBytes.
var errHeaderTooLarge = errors.New("response header larger than 64 KiB, refused")

// capReader reads from r until n bytes have gone, then fails.
type capReader struct {
	r io.Reader
	n int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.n <= 0 {
		return 0, errHeaderTooLarge
	}
	if int64(len(p)) > c.n {
		p = p[:c.n]
	}
	n, err := c.r.Read(p)
	c.n -= int64(n)
	return n, err
}

func newConnTransport(maxConns int) *connTransport {
	return &connTransport{
		dialer: net.Dialer{KeepAlive: 30 * time.Second},
		slots:  make(chan struct{}, maxConns),
		// net/http's IdleConnTimeout for this client was the same: a
		// long-running command must not meet a peer that forgot it.
		maxIdle: 30 * time.Second,
	}
}

// aLongTimeAgo is a deadline in the past: setting it stops a blocked
// read or write at once.
var aLongTimeAgo = time.Unix(1, 0)

// RoundTrip sends req on an idle connection or a new one. A reused
// connection that the server closed while it sat idle fails before any
// answer arrives; the request then goes once more on a fresh connection,
// which is safe because every IMDS request (GET, token PUT) is idempotent.
func (t *connTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	if req.Body != nil {
		req.Body.Close()
		return nil, errors.New("imds transport: requests carry no body")
	}
	if err := t.acquire(ctx); err != nil {
		return nil, err
	}
	pc := t.takeIdle()
	reused := pc != nil
	for {
		if pc == nil {
			c, err := t.dial(ctx, hostPort(req))
			if err != nil {
				<-t.slots
				return nil, ctxErr(ctx, err)
			}
			pc = newPersistConn(c)
		}
		resp, err := t.exchange(ctx, pc, req)
		if err == nil {
			return resp, nil
		}
		pc.conn.Close()
		pc = nil
		var ne net.Error
		if reused && ctx.Err() == nil && !(errors.As(err, &ne) && ne.Timeout()) && !errors.Is(err, errHeaderTooLarge) {
			reused = false
			continue
		}
		<-t.slots
		return nil, ctxErr(ctx, err)
	}
}

// dial connects to addr, or in endpoint mode auto to the address family
// the auto dialer picks for it.
func (t *connTransport) dial(ctx context.Context, addr string) (net.Conn, error) {
	if t.auto != nil && addr == t.auto.v4 {
		return t.auto.dial(ctx, t.dialAddr)
	}
	return t.dialAddr(ctx, addr)
}

// dialAddr connects to addr within ctx's deadline: directly when addr is a
// literal address, else through net.Dialer.
func (t *connTransport) dialAddr(ctx context.Context, addr string) (net.Conn, error) {
	deadline, _ := ctx.Deadline()
	if c, handled, err := dialDirect(addr, deadline); handled {
		return c, err
	}
	d := t.dialer
	d.Deadline = deadline
	return d.DialContext(context.WithoutCancel(ctx), "tcp", addr)
}

// acquire takes a connection slot, waiting no longer than ctx allows.
func (t *connTransport) acquire(ctx context.Context) error {
	select {
	case t.slots <- struct{}{}:
		return nil
	default:
	}
	var expired <-chan time.Time
	if dl, ok := ctx.Deadline(); ok {
		timer := time.NewTimer(time.Until(dl))
		defer timer.Stop()
		expired = timer.C
	}
	select {
	case t.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-expired:
		return context.DeadlineExceeded
	}
}

// exchange writes req and reads the response header; the body is read
// through the returned response, which gives the connection back when it
// is closed.
func (t *connTransport) exchange(ctx context.Context, pc *persistConn, req *http.Request) (*http.Response, error) {
	dl, _ := ctx.Deadline() // zero: none
	if err := pc.conn.SetDeadline(dl); err != nil {
		return nil, err
	}
	// Cancellation (a signal) must stop a blocked read.
	stop := context.AfterFunc(ctx, func() { pc.conn.SetDeadline(aLongTimeAgo) })
	err := req.Write(pc.bw)
	if err == nil {
		err = pc.bw.Flush()
	}
	var resp *http.Response
	if err == nil {
		pc.cap.n = maxHeaderBytes - int64(pc.br.Buffered())
		resp, err = http.ReadResponse(pc.br, req)
		pc.cap.n = math.MaxInt64
	}
	if err != nil {
		stop()
		return nil, err
	}
	resp.Body = &connBody{t: t, pc: pc, body: resp.Body, stop: stop, reuse: !resp.Close, eof: resp.Body == http.NoBody}
	return resp, nil
}

// ctxErr reports a failure that cancellation caused as the context's
// error.
func ctxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	return err
}

// takeIdle returns the most recently used idle connection that is still
// fit for a request; those idle too long, or with something to read (an
// end of file, a 408 the server sent while it waited), are closed.
func (t *connTransport) takeIdle() *persistConn {
	for {
		t.mu.Lock()
		n := len(t.idle)
		if n == 0 {
			t.mu.Unlock()
			return nil
		}
		pc := t.idle[n-1]
		t.idle = t.idle[:n-1]
		t.mu.Unlock()
		if time.Since(pc.idleSince) < t.maxIdle && quiet(pc.conn) {
			return pc
		}
		pc.conn.Close()
	}
}

// quiet reports whether nothing waits to be read on an idle connection:
// no data and no end of file. It peeks without blocking.
func quiet(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	ok = false
	var b [1]byte
	err = rc.Read(func(fd uintptr) bool {
		_, _, rerr := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		ok = rerr == unix.EAGAIN
		return true // never wait
	})
	return err == nil && ok
}

// release ends a request: the connection goes back to the idle list when
// its answer was read whole and the server keeps it open, else it is
// closed.
func (t *connTransport) release(pc *persistConn, keep bool) {
	if keep && pc.br.Buffered() == 0 && pc.conn.SetDeadline(time.Time{}) == nil {
		pc.idleSince = time.Now()
		t.mu.Lock()
		t.idle = append(t.idle, pc)
		t.mu.Unlock()
	} else {
		pc.conn.Close()
	}
	<-t.slots
}

// CloseIdleConnections closes the connections no request is using
// (http.Client.CloseIdleConnections calls it).
func (t *connTransport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	t.mu.Unlock()
	for _, pc := range idle {
		pc.conn.Close()
	}
}

func hostPort(req *http.Request) string {
	port := req.URL.Port()
	if port == "" {
		port = "80"
	}
	return net.JoinHostPort(req.URL.Hostname(), port)
}

// connBody is a response body that hands its connection back on Close.
type connBody struct {
	t     *connTransport
	pc    *persistConn
	body  io.ReadCloser
	stop  func() bool
	reuse bool
	eof   bool
	once  sync.Once
}

func (b *connBody) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

func (b *connBody) Close() error {
	b.once.Do(func() {
		// stop reports false when cancellation fired and broke the
		// connection's deadline. A body not read to its end is not
		// drained: its connection is closed instead, so an oversized
		// answer costs nothing more.
		live := b.stop()
		if b.eof {
			b.body.Close()
		}
		b.t.release(b.pc, b.reuse && b.eof && live)
	})
	return nil
}

// deadlineCtx is ctx with an earlier deadline that no timer enforces: the
// transport sets it on the socket, and Err reports it once it has passed.
// Done is the parent's, so only connTransport, which never waits on Done
// for the deadline, may be handed one.
type deadlineCtx struct {
	context.Context
	deadline time.Time
}

func (c *deadlineCtx) Deadline() (time.Time, bool) {
	if pd, ok := c.Context.Deadline(); ok && pd.Before(c.deadline) {
		return pd, true
	}
	return c.deadline, true
}

func (c *deadlineCtx) Err() error {
	if err := c.Context.Err(); err != nil {
		return err
	}
	if dl, _ := c.Deadline(); !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}
