package userdata

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/flint-dev/flint/internal/retry"
)

// Fetcher fetches the document an #include line names.
type Fetcher interface {
	Fetch(ctx context.Context, url string) ([]byte, error)
}

// FetcherFunc adapts a function to Fetcher.
type FetcherFunc func(ctx context.Context, url string) ([]byte, error)

// Fetch calls f.
func (f FetcherFunc) Fetch(ctx context.Context, url string) ([]byte, error) { return f(ctx, url) }

// HTTPFetcher fetches http:// and https:// URLs with a per-attempt
// timeout, capped jittered retries on 5xx, 429 and connection errors, a
// size cap, and redirects only to http(s) without an https→http
// downgrade. Its zero value uses the defaults documented on each field.
type HTTPFetcher struct {
	// Client is used as given when set (its transport and TLS settings),
	// with CheckRedirect replaced by the policy above. nil means a client
	// with a 5 s dial/TLS timeout.
	Client *http.Client
	// Timeout bounds one attempt; 0 means 5 s (cloud-init's value).
	Timeout time.Duration
	// Attempts is the number of tries; 0 means 4.
	Attempts int
	// Backoff is the first retry delay, doubled each time up to 5 s;
	// 0 means 250 ms.
	Backoff time.Duration
	// MaxSize caps a response body; 0 means DefaultMaxSize.
	MaxSize int64

	// The client is built once: attempts and URLs share its connections.
	clientOnce sync.Once
	httpClient *http.Client
}

// HeaderFetcher is a Fetcher that can send request headers
// (write_files source.headers).
type HeaderFetcher interface {
	FetchHeaders(ctx context.Context, url string, headers map[string]string) ([]byte, error)
}

// Fetch implements Fetcher.
func (f *HTTPFetcher) Fetch(ctx context.Context, rawURL string) ([]byte, error) {
	return f.FetchHeaders(ctx, rawURL, nil)
}

// FetchHeaders is Fetch sending headers with each attempt (their values
// may be credentials: they are never part of an error).
func (f *HTTPFetcher) FetchHeaders(ctx context.Context, rawURL string, headers map[string]string) ([]byte, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("include %q: %w", rawURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("include %q: only http and https URLs are fetched", rawURL)
	}
	p := retry.Policy{Attempts: f.Attempts, Base: f.Backoff, Cap: 5 * time.Second}
	if p.Attempts <= 0 {
		p.Attempts = 4
	}
	if p.Base <= 0 {
		p.Base = 250 * time.Millisecond
	}
	var body []byte
	err = retry.Run(ctx, p, func() error {
		var err error
		body, err = f.once(ctx, rawURL, headers)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("include %s: %w", rawURL, err)
	}
	return body, nil
}

func (f *HTTPFetcher) client() *http.Client {
	f.clientOnce.Do(func() { f.httpClient = f.newClient() })
	return f.httpClient
}

func (f *HTTPFetcher) newClient() *http.Client {
	c := http.Client{}
	if f.Client != nil {
		c = *f.Client
	} else {
		c.Transport = &http.Transport{
			Proxy:                 nil, // user-data includes never go through an ambient proxy
			TLSHandshakeTimeout:   5 * time.Second,
			ResponseHeaderTimeout: 5 * time.Second,
			MaxIdleConnsPerHost:   2,
		}
	}
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return fmt.Errorf("more than 5 redirects")
		}
		if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
			return fmt.Errorf("redirect to %s URL refused", req.URL.Scheme)
		}
		if via[len(via)-1].URL.Scheme == "https" && req.URL.Scheme == "http" {
			return fmt.Errorf("redirect from https to http refused")
		}
		return nil
	}
	return &c
}

func (f *HTTPFetcher) once(ctx context.Context, rawURL string, headers map[string]string) ([]byte, error) {
	timeout := f.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := f.client().Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) && strings.Contains(ue.Err.Error(), "redirect") {
			return nil, err
		}
		return nil, retry.Later(err, nil)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		err := fmt.Errorf("HTTP status %d", resp.StatusCode)
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
			return nil, retry.Later(err, resp.Header)
		}
		return nil, err
	}
	max := f.MaxSize
	if max <= 0 {
		max = DefaultMaxSize
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, retry.Later(err, nil)
	}
	if int64(len(body)) > max {
		return nil, fmt.Errorf("response larger than %d bytes: %w", max, ErrTooLarge)
	}
	return body, nil
}

// includeOnceName is cloud-init's cache file name for a URL: its MD5.
func includeOnceName(u string) string {
	sum := md5.Sum([]byte(u))
	return hex.EncodeToString(sum[:])
}

// include processes an #include / #include-once list: one URL per line,
// "#include-once" switching caching on for the URLs after it and
// "#include" switching it off. Each fetched document is processed like
// top-level user-data.
func (p *processor) include(content []byte) error {
	if p.depth >= 8 {
		return fmt.Errorf("#include nested more than 8 deep")
	}
	once := false
	for _, line := range PySplitLines(string(content)) {
		lc := strings.ToLower(line)
		switch {
		case strings.HasPrefix(lc, "#include-once"):
			line = strings.TrimLeftFunc(line[len("#include-once"):], pyIsSpace)
			once = true
		case strings.HasPrefix(lc, "#include"):
			line = strings.TrimLeftFunc(line[len("#include"):], pyIsSpace)
			once = false
		}
		if strings.HasPrefix(line, "#") {
			continue
		}
		u := pyStrip(line)
		if u == "" {
			continue
		}
		body, err := p.fetchInclude(u, once)
		if err != nil {
			return err
		}
		if body == nil {
			continue
		}
		p.depth++
		err = p.process(body)
		p.depth--
		if err != nil {
			return fmt.Errorf("included from %s: %w", u, err)
		}
	}
	return nil
}

func (p *processor) fetchInclude(u string, once bool) ([]byte, error) {
	var cache string
	if once && p.opts.IncludeOnceDir != "" {
		cache = filepath.Join(p.opts.IncludeOnceDir, includeOnceName(u))
		if b, err := readCapped(cache, p.opts.maxSize()); err == nil {
			return b, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("read include-once cache for %s: %w", u, err)
		}
	}
	if p.opts.NoInclude {
		p.warnf("#include of %s not fetched (includes disabled)", u)
		return nil, nil
	}
	if p.includes >= p.opts.maxIncludes() {
		return nil, fmt.Errorf("more than %d #include fetches", p.opts.maxIncludes())
	}
	p.includes++
	if p.fetcher == nil {
		p.fetcher = p.opts.Fetcher
		if p.fetcher == nil {
			p.fetcher = &HTTPFetcher{MaxSize: p.opts.maxSize()}
		}
	}
	body, err := p.fetcher.Fetch(p.ctx, u)
	if err != nil {
		// cloud-init (ERROR_ON_USER_DATA_FAILURE) fails the whole
		// user-data when an include cannot be fetched.
		return nil, err
	}
	if int64(len(body)) > p.opts.maxSize() {
		return nil, fmt.Errorf("include %s: %d bytes: %w", u, len(body), ErrTooLarge)
	}
	if cache != "" {
		if err := writeFileAtomic(cache, body, 0o600); err != nil {
			return nil, fmt.Errorf("cache include-once %s: %w", u, err)
		}
	}
	return body, nil
}

func readCapped(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: %w", path, ErrTooLarge)
	}
	return b, nil
}

// writeFileAtomic replaces path with data: temp file in the same
// directory, fsync, rename, fsync of the directory.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(mode); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
