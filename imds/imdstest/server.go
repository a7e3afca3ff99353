package imdstest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Versions are the dated API versions the emulator serves besides "latest".
// Each serves the same tree: the emulator models the protocol, not the
// history of which key appeared in which version.
var Versions = []string{
	"1.0", "2007-01-19", "2007-03-01", "2007-08-29", "2007-10-10", "2007-12-15",
	"2008-02-01", "2008-09-01", "2009-04-04", "2011-01-01", "2011-05-01", "2012-01-12",
	"2014-02-25", "2014-11-05", "2015-10-20", "2016-04-19", "2016-06-30", "2016-09-02",
	"2018-03-28", "2018-08-17", "2018-09-24", "2019-10-01", "2020-10-27", "2021-01-03",
	"2021-03-23",
}

const (
	tokenPath = "/latest/api/token"
	hdrToken  = "X-Aws-Ec2-Metadata-Token"
	hdrTTL    = "X-Aws-Ec2-Metadata-Token-Ttl-Seconds" // asked for, and answered with
)

// Options shape the emulator's behaviour.
type Options struct {
	// V2Only refuses requests without a valid token (HttpTokens=required).
	V2Only bool
	// Faults are checked in order for every request; see Fault.
	Faults []Fault
	// LogLimit bounds the request log (the oldest half is dropped when it
	// is reached); 0 keeps every entry, as tests want.
	LogLimit int
	// OnRequest is called with each request's log entry once it is answered.
	OnRequest func(Request)
	// Events are notices to serve, each from its time on (see Inject).
	Events []Event
}

// Request is one entry of the request log.
type Request struct {
	Method string
	Path   string
	// Remote is the client's address: equal values mean one connection.
	Remote string
	// Token says what the request carried: "" (none), "valid", "invalid" or "expired".
	Token string
	// TTL is the TTL header of a token PUT, as sent.
	TTL    string
	Status int
	// Fault names the fault that answered, if any ("status", "reset", "drop").
	Fault string
}

// String renders the entry as "METHOD PATH STATUS", the form tests compare.
func (r Request) String() string {
	return r.Method + " " + r.Path + " " + strconv.Itoa(r.Status)
}

// Server is the emulator. It is an http.Handler; serve it with
// httptest.NewServer in tests or http.Serve on a listener.
type Server struct {
	mu     sync.RWMutex
	tree   *Tree
	v2only bool
	faults []*fault
	tokens map[string]time.Time
	log    []Request
	limit  int
	notify func(Request)
	now    func() time.Time
	// pending holds the notices still to appear (see Inject).
	pending map[*time.Timer]Event
	// release unblocks dropped requests when the server closes.
	release chan struct{}
	closed  sync.Once
}

// New returns an emulator serving tree.
func New(tree *Tree, opts Options) *Server {
	s := &Server{
		tree:    tree,
		v2only:  opts.V2Only,
		tokens:  map[string]time.Time{},
		now:     time.Now,
		release: make(chan struct{}),
		limit:   opts.LogLimit,
		notify:  opts.OnRequest,
		pending: map[*time.Timer]Event{},
	}
	for _, f := range opts.Faults {
		s.faults = append(s.faults, &fault{Fault: f})
	}
	for _, e := range opts.Events {
		s.Inject(e)
	}
	return s
}

// Close releases requests held by "drop" faults and cancels notices still
// to appear.
func (s *Server) Close() {
	s.closed.Do(func() { close(s.release) })
	s.stopEvents()
}

// Log returns a copy of the request log.
func (s *Server) Log() []Request {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return append([]Request(nil), s.log...)
}

// ResetLog empties the request log.
func (s *Server) ResetLog() {
	s.mu.Lock()
	s.log = nil
	s.mu.Unlock()
}

// ExpireTokens makes every token issued so far expire now.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	for k := range s.tokens {
		s.tokens[k] = time.Time{}
	}
	s.mu.Unlock()
}

// AddFault appends a fault at run time.
func (s *Server) AddFault(f Fault) {
	s.mu.Lock()
	s.faults = append(s.faults, &fault{Fault: f})
	s.mu.Unlock()
}

// ClearFaults removes every fault: the service recovers.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	s.faults = nil
	s.mu.Unlock()
}

// Set changes or adds a leaf (path below the version root, e.g.
// "meta-data/instance-id").
func (s *Server) Set(path string, value []byte) {
	s.mu.Lock()
	s.tree.Set(path, value)
	s.mu.Unlock()
}

// Delete removes an entry (leaf or directory).
func (s *Server) Delete(path string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tree.Delete(path)
}

func (s *Server) record(r Request) {
	s.mu.Lock()
	if s.limit > 0 && len(s.log) >= s.limit {
		s.log = append(s.log[:0], s.log[len(s.log)/2:]...)
	}
	s.log = append(s.log, r)
	s.mu.Unlock()
	if s.notify != nil {
		s.notify(r)
	}
}

// ServeHTTP implements the IMDS protocol.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, ControlPrefix) {
		s.control(w, r)
		return
	}
	entry := Request{Method: r.Method, Path: r.URL.Path, Remote: r.RemoteAddr}
	if r.URL.RawQuery != "" {
		entry.Path += "?" + r.URL.RawQuery
	}
	entry.TTL = r.Header.Get(hdrTTL)
	entry.Token = s.tokenState(r.Header.Get(hdrToken), r.Header[http.CanonicalHeaderKey(hdrToken)] != nil)

	if f := s.matchFault(r.Method, r.URL.Path); f != nil {
		entry.Fault = f.kind()
		if f.Latency > 0 {
			select {
			case <-time.After(f.Latency):
			case <-r.Context().Done():
			case <-s.release:
			}
		}
		switch {
		case f.Truncate:
			s.truncated(w, r, entry, f.Reset)
			return
		case f.Drop:
			entry.Status = 0
			s.record(entry)
			// Like a token PUT that dies at the hop limit: no answer ever comes.
			select {
			case <-r.Context().Done():
			case <-s.release:
			}
			resetConn(w)
			return
		case f.Reset:
			entry.Status = 0
			s.record(entry)
			resetConn(w)
			return
		case f.Status != 0:
			if f.RetryAfter != "" {
				w.Header().Set("Retry-After", f.RetryAfter)
			}
			entry.Status = f.Status
			s.record(entry)
			http.Error(w, http.StatusText(f.Status), f.Status)
			return
		}
	}
	entry.Status = s.serve(w, r, entry.Token)
	s.record(entry)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, tok string) int {
	w.Header().Set("Server", "EC2ws")
	if r.Header.Get("X-Forwarded-For") != "" {
		return reply(w, http.StatusForbidden, nil)
	}
	if r.URL.Path == tokenPath {
		if r.Method != http.MethodPut {
			return reply(w, http.StatusMethodNotAllowed, nil)
		}
		ttl, err := strconv.Atoi(r.Header.Get(hdrTTL))
		if err != nil || ttl < 1 || ttl > 21600 {
			return reply(w, http.StatusBadRequest, nil)
		}
		b := make([]byte, 24)
		rand.Read(b)
		token := "AQAE" + hex.EncodeToString(b)
		s.mu.Lock()
		s.tokens[token] = s.now().Add(time.Duration(ttl) * time.Second)
		s.mu.Unlock()
		w.Header().Set(hdrTTL, strconv.Itoa(ttl))
		return reply(w, http.StatusOK, []byte(token))
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return reply(w, http.StatusMethodNotAllowed, nil)
	}
	switch tok {
	case "invalid", "expired":
		return reply(w, http.StatusUnauthorized, nil)
	case "":
		if s.v2only {
			return reply(w, http.StatusUnauthorized, nil)
		}
	}
	path := r.URL.Path
	if path == "/" || path == "" {
		return reply(w, http.StatusOK, []byte(strings.Join(append(append([]string(nil), Versions...), "latest"), "\n")))
	}
	rest := strings.TrimPrefix(path, "/")
	version, sub, _ := strings.Cut(rest, "/")
	if version != "latest" && !knownVersion(version) {
		return reply(w, http.StatusNotFound, nil)
	}
	s.mu.RLock()
	n, ok := s.tree.Lookup(sub)
	var body []byte
	if ok {
		if n.IsDir() {
			body = n.Listing(strings.Trim(sub, "/") == "")
		} else {
			body = n.Value
		}
	}
	s.mu.RUnlock()
	if !ok {
		return reply(w, http.StatusNotFound, nil)
	}
	return reply(w, http.StatusOK, body)
}

func knownVersion(v string) bool {
	for _, x := range Versions {
		if x == v {
			return true
		}
	}
	return false
}

func reply(w http.ResponseWriter, code int, body []byte) int {
	if body == nil && code != http.StatusOK {
		body = []byte(errorPage(code))
		w.Header().Set("Content-Type", "text/html")
	} else {
		w.Header().Set("Content-Type", "text/plain")
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	w.Write(body)
	return code
}

// errorPage mimics the small HTML bodies IMDS sends with errors.
func errorPage(code int) string {
	t := strconv.Itoa(code) + " - " + http.StatusText(code)
	return "<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>\n" +
		"<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Transitional//EN\"\n" +
		"\t\"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd\">\n" +
		"<html xmlns=\"http://www.w3.org/1999/xhtml\" xml:lang=\"en\" lang=\"en\">\n" +
		" <head>\n  <title>" + t + "</title>\n </head>\n <body>\n  <h1>" + t + "</h1>\n </body>\n</html>\n"
}

func (s *Server) tokenState(tok string, present bool) string {
	if !present {
		return ""
	}
	s.mu.RLock()
	exp, ok := s.tokens[tok]
	s.mu.RUnlock()
	switch {
	case !ok:
		return "invalid"
	case !s.now().Before(exp):
		return "expired"
	}
	return "valid"
}

// truncated answers as serve would, but sends only half the body before
// closing the connection (abruptly when reset). The entry is logged before
// the client can see the answer.
func (s *Server) truncated(w http.ResponseWriter, r *http.Request, entry Request, reset bool) {
	rec := &bufferedResponse{header: http.Header{}}
	code := s.serve(rec, r, entry.Token)
	entry.Status = code
	s.record(entry)
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	c, bw, err := hj.Hijack()
	if err != nil {
		return
	}
	defer c.Close()
	if tc, ok := c.(*net.TCPConn); ok && reset {
		tc.SetLinger(0)
	}
	fmt.Fprintf(bw, "HTTP/1.1 %d %s\r\n", code, http.StatusText(code))
	rec.header.Set("Content-Length", strconv.Itoa(rec.body.Len()))
	rec.header.Set("Connection", "close")
	rec.header.Write(bw)
	bw.WriteString("\r\n")
	bw.Write(rec.body.Bytes()[:rec.body.Len()/2])
	bw.Flush()
}

// bufferedResponse keeps an answer for truncated to cut.
type bufferedResponse struct {
	header http.Header
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header         { return b.header }
func (b *bufferedResponse) Write(p []byte) (int, error) { return b.body.Write(p) }
func (b *bufferedResponse) WriteHeader(int)             {}

// resetConn closes the client's connection abruptly (RST where possible).
func resetConn(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	c, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}
