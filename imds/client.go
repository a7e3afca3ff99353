// Package imds speaks the EC2 instance metadata protocol: endpoint
// resolution, the IMDSv2 token lifecycle (with IMDSv1 fallback where
// allowed), retries with capped jittered backoff, response caps, and typed
// reads of the values flint needs. It knows nothing of handlers; the
// emulator in imds/imdstest serves the same protocol for tests.
package imds

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flint-dev/flint/internal/retry"
)

// Endpoints used when nothing else is configured. On an instance these
// addresses are the metadata service; anywhere else a packet to them
// leaves the machine, so tests reach them only inside a network
// namespace they made.
const (
	DefaultEndpoint     = "http://" + defaultIPv4Host
	DefaultIPv6Endpoint = "http://" + defaultIPv6Host

	defaultIPv4Host = "169.254.169.254"
	defaultIPv6Host = "[fd00:ec2::254]"
)

// Mode selects which protocol versions the client may use.
type Mode int

const (
	// ModeV2Preferred asks for a token and falls back to IMDSv1 when the
	// token PUT is answered 404/405 or gets no answer (hop limit 1). A 403
	// never falls back: the endpoint is disabled.
	ModeV2Preferred Mode = iota
	// ModeV2Only requires a token (HttpTokens=required semantics).
	ModeV2Only
	// ModeV1 never asks for a token.
	ModeV1
)

// ParseMode parses "v2-preferred", "v2-only" or "v1".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "v2-preferred", "":
		return ModeV2Preferred, nil
	case "v2-only":
		return ModeV2Only, nil
	case "v1":
		return ModeV1, nil
	}
	return 0, fmt.Errorf("unknown IMDS mode %q (want v2-preferred, v2-only or v1)", s)
}

func (m Mode) String() string {
	switch m {
	case ModeV2Only:
		return "v2-only"
	case ModeV1:
		return "v1"
	}
	return "v2-preferred"
}

// Options configure a Client. The zero value is usable: it resolves the
// endpoint from the environment like the AWS SDKs.
type Options struct {
	// Endpoint is the base URL ("http://169.254.169.254"), or "auto".
	// Empty: taken from AWS_EC2_METADATA_SERVICE_ENDPOINT, else from
	// AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE (IPv4 or IPv6), else mode
	// auto: the IPv4 default when it connects within a moment, else the
	// IPv6 one, whichever connected first kept for the client's life.
	Endpoint string
	// Mode chooses v2-preferred (zero), v2-only or v1.
	// AWS_EC2_METADATA_V1_DISABLED=true turns v2-preferred into v2-only.
	Mode Mode
	// TokenTTL is the lifetime asked for each token (default 6h, max 6h).
	TokenTTL time.Duration
	// AttemptTimeout bounds one HTTP exchange (default 2s).
	AttemptTimeout time.Duration
	// TokenTimeout bounds one token PUT (default 1s); a PUT that gets no
	// answer in time is taken as the hop-limit case.
	TokenTimeout time.Duration
	// MaxAttempts bounds the attempts per request (default 4). Negative
	// means no bound other than the context's deadline (the boot path).
	MaxAttempts int
	// MaxBackoff caps the wait between attempts (default 2s).
	MaxBackoff time.Duration
	// MaxResponseBytes caps a response body (default 1 MiB).
	MaxResponseBytes int64
	// Getenv reads the environment (default os.Getenv).
	Getenv func(string) string
	// Logf receives one-line notes (fallback to v1, retries). It never
	// receives tokens or values.
	Logf func(format string, args ...any)
	// Transport replaces the HTTP transport (tests).
	Transport http.RoundTripper
}

// Client reads instance metadata. It is safe for concurrent use; all
// requests share one small keep-alive pool and one token.
type Client struct {
	base      *url.URL
	hc        *http.Client
	mode      Mode
	ttl       time.Duration
	attemptTO time.Duration
	tokenTO   time.Duration
	policy    retry.Policy
	maxBytes  int64
	logf      func(string, ...any)
	disabled  bool
	auto      *autoDialer // endpoint mode auto; nil otherwise

	tokMu  sync.Mutex
	token  string
	expiry time.Time
	v1     bool // fell back to IMDSv1 for the rest of this client's life
	// v1Timeout: the fallback came from an unanswered PUT, which a 401
	// later shows was only slow.
	v1Timeout bool
	// tokErr is the last token failure, shared until tokErrUntil.
	tokErr      error
	tokErrUntil time.Time

	puts, gets atomic.Int64
}

// Stats counts the HTTP exchanges a client made.
type Stats struct {
	TokenRequests int64
	Requests      int64
}

// New builds a client; it sends nothing until the first read.
func New(opts Options) (*Client, error) {
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	c := &Client{
		mode:      opts.Mode,
		ttl:       opts.TokenTTL,
		attemptTO: opts.AttemptTimeout,
		tokenTO:   opts.TokenTimeout,
		maxBytes:  opts.MaxResponseBytes,
		logf:      opts.Logf,
	}
	if c.ttl == 0 {
		c.ttl = 6 * time.Hour
	}
	if c.ttl < time.Second || c.ttl > 6*time.Hour {
		return nil, fmt.Errorf("IMDS token TTL %v is out of range (1s to 6h)", c.ttl)
	}
	if c.attemptTO <= 0 {
		c.attemptTO = 2 * time.Second
	}
	if c.tokenTO <= 0 {
		c.tokenTO = time.Second
	}
	c.policy = retry.Policy{Attempts: opts.MaxAttempts, Base: 100 * time.Millisecond, Cap: opts.MaxBackoff, Name: "imds"}
	if c.policy.Attempts == 0 {
		c.policy.Attempts = 4
	}
	if c.policy.Cap <= 0 {
		c.policy.Cap = 2 * time.Second
	}
	if c.maxBytes <= 0 {
		c.maxBytes = 1 << 20
	}
	if c.logf == nil {
		c.logf = func(string, ...any) {}
	} else {
		c.policy.Logf = c.logf
	}
	if b, _ := strconv.ParseBool(getenv("AWS_EC2_METADATA_DISABLED")); b {
		c.disabled = true
	}
	if b, _ := strconv.ParseBool(getenv("AWS_EC2_METADATA_V1_DISABLED")); b && c.mode == ModeV2Preferred {
		c.mode = ModeV2Only
	}
	endpoint, auto, err := endpointFor(opts.Endpoint, getenv)
	if err != nil {
		return nil, err
	}
	c.base = endpoint
	tr := opts.Transport
	if tr == nil && endpoint.Scheme == "http" {
		ct := newConnTransport(4)
		if auto {
			ct.auto = newAutoDialer()
			c.auto = ct.auto
		}
		tr = ct
	}
	if tr == nil {
		tr = &http.Transport{
			// IMDS is link-local: a proxy from the environment must never see it.
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: c.attemptTO, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        4,
			MaxIdleConnsPerHost: 4,
			MaxConnsPerHost:     4,
			IdleConnTimeout:     30 * time.Second,
			DisableCompression:  true,
		}
	}
	c.hc = &http.Client{
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	return c, nil
}

func resolveEndpoint(explicit string, getenv func(string) string) (*url.URL, error) {
	raw, from := explicit, "endpoint"
	if raw == "" {
		raw, from = getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT"), "AWS_EC2_METADATA_SERVICE_ENDPOINT"
	}
	if raw == "" {
		switch mode := getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE"); strings.ToLower(mode) {
		case "", "ipv4":
			raw = DefaultEndpoint
		case "ipv6":
			raw = DefaultIPv6Endpoint
		default:
			return nil, fmt.Errorf("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE=%q: want IPv4 or IPv6", mode)
		}
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.Fragment != "" || strings.Trim(u.Path, "/") != "" {
		return nil, fmt.Errorf("%s %q is not a metadata endpoint URL (want http://HOST[:PORT])", from, raw)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("%s %q has a bad port", from, raw)
		}
	}
	u.Path = ""
	return u, nil
}

// Endpoint returns the base URL in use (in mode auto, the one chosen so far).
func (c *Client) Endpoint() string { return c.auto.endpoint(c.base) }

// Stats returns how many token and data requests the client sent.
func (c *Client) Stats() Stats {
	return Stats{TokenRequests: c.puts.Load(), Requests: c.gets.Load()}
}

// Get returns the body at path. A path without a leading "/" is relative to
// "/latest/" ("meta-data/instance-id"); with one it is taken from the
// server root ("/2021-03-23/meta-data/ami-id"). A 404 returns an error
// wrapping ErrNotFound.
func (c *Client) Get(ctx context.Context, path string) ([]byte, error) {
	if c.disabled {
		return nil, fmt.Errorf("GET %s: %w (AWS_EC2_METADATA_DISABLED is set)", path, ErrDisabled)
	}
	u, err := c.url(path)
	if err != nil {
		return nil, err
	}
	return c.get(ctx, path, u)
}

// List returns the entries of a listing at path, one per line, as served
// (directories end in "/", public keys read "0=name"). A line with control
// characters or an embedded "/" is refused as malformed.
func (c *Client) List(ctx context.Context, path string) ([]string, error) {
	b, err := c.Get(ctx, path)
	if err != nil {
		return nil, err
	}
	return parseListing(path, b)
}

func parseListing(path string, b []byte) ([]string, error) {
	var out []string
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			continue
		}
		name := strings.TrimSuffix(line, "/")
		if name == "" || strings.Contains(name, "/") || strings.IndexFunc(line, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
			return nil, fmt.Errorf("listing %s: malformed line %d %q", path, i+1, truncate(line, 60))
		}
		out = append(out, line)
	}
	return out, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func (c *Client) url(path string) (string, error) {
	if err := CheckPath(path); err != nil {
		return "", err
	}
	p := path
	if !strings.HasPrefix(p, "/") {
		p = "/latest/" + p
	}
	u := *c.base
	u.Path = p
	return u.String(), nil
}

func (c *Client) get(ctx context.Context, path, u string) ([]byte, error) {
	var out []byte
	refreshed := false
	err := retry.Run(ctx, c.policy, func() error {
		for {
			tok, err := c.getToken(ctx)
			if err != nil {
				return err
			}
			body, status, hdr, err := c.exchange(ctx, http.MethodGet, u, tok, c.attemptTO, nil)
			c.gets.Add(1)
			switch {
			case err != nil:
				return err
			case status == http.StatusOK:
				out = body
				return nil
			case status == http.StatusNotFound:
				return fmt.Errorf("GET %s: %w", path, ErrNotFound)
			case status == http.StatusUnauthorized && tok != "" && !refreshed:
				// Expired or revoked token: one new token, then the same request.
				c.dropToken(tok)
				refreshed = true
				continue
			case status == http.StatusUnauthorized && tok == "" && !refreshed && c.retryV2():
				refreshed = true
				continue
			case status == http.StatusUnauthorized && tok == "":
				return fmt.Errorf("GET %s: IMDS answered 401 without a token: the instance requires IMDSv2 but no token could be obtained", path)
			case status == http.StatusTooManyRequests || status >= 500:
				return retry.Later(&StatusError{Method: "GET", Path: path, Code: status}, hdr)
			default:
				return &StatusError{Method: "GET", Path: path, Code: status}
			}
		}
	})
	return out, err
}

// exchange performs one HTTP request with its own timeout and reads a
// capped body. Transport failures come back marked for
// another attempt (retry.Later).
func (c *Client) exchange(ctx context.Context, method, u, tok string, timeout time.Duration, hdr map[string]string) ([]byte, int, http.Header, error) {
	actx, cancel := c.attemptContext(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, method, u, nil)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("%s %s: %w", method, u, err)
	}
	req.Header.Set("User-Agent", "flint")
	if tok != "" {
		req.Header.Set("X-aws-ec2-metadata-token", tok)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.hc.Do(req)
	if errors.Is(err, errHeaderTooLarge) {
		return nil, 0, nil, fmt.Errorf("%s %s: %w", method, u, errHeaderTooLarge)
	}
	if err != nil {
		return nil, 0, nil, c.transportErr(ctx, actx, method, u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.maxBytes+1))
	if err != nil {
		return nil, 0, nil, c.transportErr(ctx, actx, method, u, fmt.Errorf("reading body: %w", err))
	}
	if int64(len(body)) > c.maxBytes {
		return nil, 0, nil, fmt.Errorf("%s %s: response larger than %d bytes, refused", method, u, c.maxBytes)
	}
	return body, resp.StatusCode, resp.Header, nil
}

// attemptContext bounds one attempt. The connection transport enforces
// the deadline on the socket itself, so its attempts get a context that
// carries the deadline without arming a timer: arming one wakes another
// thread of the runtime, which on a one-shot command costs more than the
// exchange.
func (c *Client) attemptContext(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := c.hc.Transport.(*connTransport); ok {
		return &deadlineCtx{Context: ctx, deadline: time.Now().Add(d)}, func() {}
	}
	return context.WithTimeout(ctx, d)
}

// errAttemptTimeout marks an attempt that ran out of its own time while the
// caller's context was still live.
var errAttemptTimeout = errors.New("no answer in time")

func (c *Client) transportErr(ctx, actx context.Context, method, u string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s %s: %w", method, u, ctx.Err())
	}
	if actx.Err() != nil {
		return retry.Later(fmt.Errorf("%s %s: %w", method, u, errAttemptTimeout), nil)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return retry.Later(fmt.Errorf("%s %s: %w", method, u, err), nil)
}
