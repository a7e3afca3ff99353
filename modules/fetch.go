package modules

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/flint-dev/flint/internal/retry"
)

// Fetcher opens bundles and their side files (manifest, digest, signature)
// from file://, https://, http:// (only for pinned digests) and s3:// URLs.
// The zero value works for file:// and public HTTP(S).
type Fetcher struct {
	// Client is the HTTP client; nil means one with sane timeouts that
	// refuses redirects to plain HTTP.
	Client *http.Client
	// Credentials sign s3:// requests (SigV4); normally the instance role's
	// credentials from metadata. Nil sends s3:// requests unsigned (public
	// buckets).
	Credentials CredentialsProvider
	// Region of s3:// buckets; required for s3:// URLs.
	Region string
	// S3Endpoint replaces https://<bucket>.s3.<region>.amazonaws.com with
	// <S3Endpoint>/<bucket> (path style): S3-compatible stores and tests.
	S3Endpoint string
	// Retries is how many consecutive failures a download survives
	// (default 5); each retry resumes with a Range request.
	Retries int
	// Backoff is the first retry delay (default 500ms), doubled each time up
	// to 15s, with jitter.
	Backoff time.Duration
	// Progress receives progress reports; nil for none. On a terminal
	// (TTY) one line is redrawn, otherwise one line per 10%.
	Progress io.Writer
	TTY      bool
}

// Open returns the bundle's bytes as one stream. A broken HTTP transfer is
// resumed transparently where it stopped.
func (f *Fetcher) Open(ctx context.Context, b Bundle) (io.ReadCloser, error) {
	u, err := url.Parse(b.URL)
	if err != nil {
		return nil, fmt.Errorf("bundle URL %q: %w", redactURL(b.URL), err)
	}
	switch u.Scheme {
	case "file":
		fh, err := os.Open(u.Path)
		if err != nil {
			return nil, fmt.Errorf("open bundle: %w", err)
		}
		size := int64(-1)
		if fi, err := fh.Stat(); err == nil {
			size = fi.Size()
		}
		return f.withProgress(fh, redactURL(b.URL), size), nil
	case "http":
		if !b.Pinned {
			return nil, fmt.Errorf("bundle %s: plain http:// needs a sha256 pinned in the configuration or a signed manifest", redactURL(b.URL))
		}
	case "https", "s3":
	default:
		return nil, fmt.Errorf("bundle URL %s: unsupported scheme %q (want file, https, http or s3)", redactURL(b.URL), u.Scheme)
	}
	s, err := f.newStream(ctx, u, b.Pinned)
	if err != nil {
		return nil, err
	}
	if err := s.connect(); err != nil {
		return nil, err
	}
	return f.withProgress(s, redactURL(b.URL), s.size), nil
}

// Get fetches a small side file (manifest, digest, signature) whole, up to
// max bytes. Plain HTTP is allowed only when allowHTTP (the caller verifies
// the content by other means).
func (f *Fetcher) Get(ctx context.Context, rawURL string, max int64, allowHTTP bool) ([]byte, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("URL %q: %w", redactURL(rawURL), err)
	}
	var r io.ReadCloser
	switch u.Scheme {
	case "file":
		fh, err := os.Open(u.Path)
		if err != nil {
			return nil, err
		}
		r = fh
	case "http", "https", "s3":
		if u.Scheme == "http" && !allowHTTP {
			return nil, fmt.Errorf("%s: plain http:// is not trusted here; use https:// or pin a digest", redactURL(rawURL))
		}
		s, err := f.newStream(ctx, u, allowHTTP)
		if err != nil {
			return nil, err
		}
		if err := s.connect(); err != nil {
			return nil, err
		}
		r = s
	default:
		return nil, fmt.Errorf("URL %s: unsupported scheme %q", redactURL(rawURL), u.Scheme)
	}
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", redactURL(rawURL), err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("get %s: larger than %d bytes", redactURL(rawURL), max)
	}
	return b, nil
}

// client applies flint's redirect policy to the configured or default
// client: at most 5 hops, and never from HTTPS down to plain HTTP unless the
// content is verified by a pinned digest.
func (f *Fetcher) client(allowHTTP bool) *http.Client {
	var c http.Client
	if f.Client != nil {
		c = *f.Client
	} else {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.ResponseHeaderTimeout = 30 * time.Second
		c.Transport = tr
	}
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return redirectError{errors.New("too many redirects")}
		}
		if req.URL.Scheme != "https" && !allowHTTP {
			return redirectError{fmt.Errorf("refusing redirect to %s", redactURL(req.URL.String()))}
		}
		return nil
	}
	return &c
}

// redirectError is a refused redirect: final, not worth a retry.
type redirectError struct{ error }

func (e redirectError) Unwrap() error { return e.error }

type httpStream struct {
	f       *Fetcher
	ctx     context.Context
	client  *http.Client
	url     string
	display string
	sign    *s3Target
	body    io.ReadCloser
	off     int64
	size    int64 // -1 unknown
	etag    string
	fails   int
}

type s3Target struct{ region string }

func (f *Fetcher) newStream(ctx context.Context, u *url.URL, allowHTTP bool) (*httpStream, error) {
	s := &httpStream{f: f, ctx: ctx, client: f.client(allowHTTP), url: u.String(), display: redactURL(u.String()), size: -1}
	if u.Scheme == "s3" {
		if f.Region == "" {
			return nil, fmt.Errorf("%s: the S3 region is unknown (set modules.s3_region)", s.display)
		}
		// The key goes on the wire encoded as the signature encodes it.
		key := s3EscapePath(strings.TrimPrefix(u.Path, "/"))
		if f.S3Endpoint != "" {
			s.url = strings.TrimSuffix(f.S3Endpoint, "/") + "/" + u.Host + "/" + key
		} else {
			s.url = "https://" + u.Host + ".s3." + f.Region + ".amazonaws.com/" + key
		}
		s.sign = &s3Target{region: f.Region}
	}
	return s, nil
}

func (s *httpStream) connect() error {
	for {
		err := s.open()
		if err == nil {
			return nil
		}
		if werr := s.wait(err); werr != nil {
			return werr
		}
	}
}

// wait sleeps before the next attempt, or returns the error that ends the
// download. Attempts count consecutive failures: bytes that came through
// reset the count (Read).
func (s *httpStream) wait(err error) error {
	if _, ok := err.(*retry.Error); ok {
		s.fails++
	}
	p := retry.Policy{Attempts: s.f.Retries + 1, Base: s.f.Backoff, Cap: 15 * time.Second}
	if s.f.Retries == 0 {
		p.Attempts = 6
	}
	if s.f.Retries < 0 {
		p.Attempts = 1
	}
	if p.Base == 0 {
		p.Base = 500 * time.Millisecond
	}
	return p.Wait(s.ctx, s.fails, err)
}

func (s *httpStream) open() error {
	req, err := http.NewRequestWithContext(s.ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", s.display, err)
	}
	if s.off > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(s.off, 10)+"-")
		if s.etag != "" {
			req.Header.Set("If-Range", s.etag)
		}
	}
	if s.sign != nil && s.f.Credentials != nil {
		if err := signS3(s.ctx, req, s.f.Credentials, s.sign.region); err != nil {
			return fmt.Errorf("sign GET %s: %w", s.display, err)
		}
	}
	resp, err := s.client.Do(req)
	if err != nil {
		if s.ctx.Err() != nil {
			return s.ctx.Err()
		}
		var re redirectError
		if errors.As(err, &re) {
			return fmt.Errorf("GET %s: %w", s.display, re.error)
		}
		// *url.Error repeats the whole URL, query included: a presigned
		// URL's signature and session token would end up in the status
		// file and the journal. s.display is the redacted form.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return retry.Later(fmt.Errorf("GET %s: %w", s.display, err), nil)
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		if s.off == 0 {
			s.size = resp.ContentLength
			s.etag = resp.Header.Get("ETag")
		} else {
			// The server ignored Range (or If-Range said the object
			// changed, which the digest will catch): skip what we have.
			if _, err := io.CopyN(io.Discard, resp.Body, s.off); err != nil {
				resp.Body.Close()
				return retry.Later(fmt.Errorf("GET %s: %w", s.display, err), nil)
			}
		}
	case resp.StatusCode == http.StatusPartialContent && s.off > 0:
		start, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != s.off {
			resp.Body.Close()
			return fmt.Errorf("GET %s: server resumed at the wrong offset (%q, want %d)", s.display, resp.Header.Get("Content-Range"), s.off)
		}
		if total >= 0 {
			s.size = total
		}
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && s.off > 0 && s.off == s.size:
		resp.Body.Close()
		s.body = http.NoBody
		return nil
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout:
		resp.Body.Close()
		return retry.Later(fmt.Errorf("GET %s: HTTP %d", s.display, resp.StatusCode), resp.Header)
	default:
		err := statusError(resp)
		resp.Body.Close()
		return fmt.Errorf("GET %s: %w", s.display, err)
	}
	s.body = resp.Body
	return nil
}

func parseContentRange(v string) (start, total int64, ok bool) {
	v, found := strings.CutPrefix(v, "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, tot, found := strings.Cut(v, "/")
	if !found {
		return 0, 0, false
	}
	first, _, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	start, err := strconv.ParseInt(first, 10, 64)
	if err != nil {
		return 0, 0, false
	}
	total = -1
	if tot != "*" {
		if total, err = strconv.ParseInt(tot, 10, 64); err != nil {
			return 0, 0, false
		}
	}
	return start, total, true
}

func (s *httpStream) Read(p []byte) (int, error) {
	for {
		if s.body == nil {
			if err := s.open(); err != nil {
				if werr := s.wait(err); werr != nil {
					return 0, werr
				}
				continue
			}
		}
		n, err := s.body.Read(p)
		s.off += int64(n)
		if n > 0 {
			s.fails = 0
		}
		if err == nil {
			return n, nil
		}
		if err == io.EOF && (s.size < 0 || s.off >= s.size) {
			return n, io.EOF
		}
		s.body.Close()
		s.body = nil
		if s.ctx.Err() != nil {
			return n, s.ctx.Err()
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		if werr := s.wait(retry.Later(fmt.Errorf("GET %s at byte %d: %w", s.display, s.off, err), nil)); werr != nil {
			return n, werr
		}
		if n > 0 {
			return n, nil
		}
	}
}

func (s *httpStream) Close() error {
	if s.body != nil {
		return s.body.Close()
	}
	return nil
}

// signS3 signs req for S3 with SigV4. The payload of a GET is empty, but
// S3 accepts UNSIGNED-PAYLOAD and the header must say which was signed.
func signS3(ctx context.Context, req *http.Request, cp CredentialsProvider, region string) error {
	creds, err := cp.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("instance role credentials: %w", err)
	}
	const payload = "UNSIGNED-PAYLOAD"
	req.Header.Set("X-Amz-Content-Sha256", payload)
	signV4(req, creds, payload, "s3", region, time.Now())
	return nil
}

type progressReader struct {
	r       io.ReadCloser
	w       io.Writer
	tty     bool
	name    string
	size    int64
	n       int64
	nextPct int64
	last    time.Time
	start   time.Time
	ended   bool // the final report is out; later EOFs stay quiet
}

// progressEvery spaces the progress lines written off a terminal (the
// journal): a download that ends sooner writes only its final line.
var progressEvery = 5 * time.Second

func (f *Fetcher) withProgress(r io.ReadCloser, name string, size int64) io.ReadCloser {
	if f.Progress == nil {
		return r
	}
	now := time.Now()
	return &progressReader{r: r, w: f.Progress, tty: f.TTY, name: name, size: size, nextPct: 10, start: now, last: now}
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	if p.ended {
		return n, err
	}
	if err == io.EOF {
		p.ended = true
	}
	switch {
	case p.tty:
		if now := time.Now(); now.Sub(p.last) > 200*time.Millisecond || err == io.EOF {
			p.last = now
			if p.size > 0 {
				fmt.Fprintf(p.w, "\rfetch %s: %3d%% %s/%s", p.name, p.n*100/p.size, mb(p.n), mb(p.size))
			} else {
				fmt.Fprintf(p.w, "\rfetch %s: %s", p.name, mb(p.n))
			}
			if err == io.EOF {
				fmt.Fprintln(p.w)
			}
		}
	case err == io.EOF:
		fmt.Fprintf(p.w, "fetch %s: done (%s in %s)\n", p.name, mb(p.n), time.Since(p.start).Round(time.Millisecond))
	case p.size > 0:
		// Quiet, periodic lines: at a 10 % step, no sooner than
		// progressEvery after the last line.
		if p.n*100 >= p.nextPct*p.size && time.Since(p.last) >= progressEvery {
			p.last = time.Now()
			fmt.Fprintf(p.w, "fetch %s: %d%% (%s of %s)\n", p.name, p.n*100/p.size, mb(p.n), mb(p.size))
			p.nextPct = p.n*100/p.size/10*10 + 10
		}
	}
	return n, err
}

func (p *progressReader) Close() error { return p.r.Close() }

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }
