package imds

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"
)

// AutoEndpoint is the endpoint setting that asks for endpoint mode auto:
// IPv4 first, then IPv6. It is also what an empty setting means when the
// environment names no endpoint or endpoint mode.
const AutoEndpoint = "auto"

// autoV4Timeout bounds the IPv4 connect in endpoint mode auto. IMDS is one
// hop away and answers a connect in well under a millisecond; an IPv6-only
// instance usually refuses the IPv4 connect at once (no route), and this
// bounds the case where the packet is silently lost instead.
const autoV4Timeout = 300 * time.Millisecond

// endpointFor resolves the endpoint setting and reports whether it means
// mode auto: nothing configured (no explicit endpoint, neither
// AWS_EC2_METADATA_SERVICE_ENDPOINT nor …_ENDPOINT_MODE set), or "auto"
// given explicitly. In mode auto the base URL is the IPv4 default until
// a connection shows otherwise.
func endpointFor(explicit string, getenv func(string) string) (*url.URL, bool, error) {
	auto := explicit == AutoEndpoint ||
		(explicit == "" && getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT") == "" && getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE") == "")
	if auto {
		explicit = DefaultEndpoint
	}
	u, err := resolveEndpoint(explicit, getenv)
	return u, auto, err
}

// autoDialer picks the endpoint's address family on the first connection
// that succeeds and keeps it for the client's life: IPv4 with a short
// connect timeout, then IPv6. Until one connects, every dial tries both
// again, so a boot that runs before the network is up still finds it.
type autoDialer struct {
	v4, v6    string // host:port
	v4Timeout time.Duration

	mu     sync.Mutex
	chosen string // "" until a connection succeeded
}

func newAutoDialer() *autoDialer {
	return &autoDialer{v4: defaultIPv4Host + ":80", v6: defaultIPv6Host + ":80", v4Timeout: autoV4Timeout}
}

// dial connects through dialAddr to the remembered address, or probes
// IPv4 then IPv6 when none is remembered yet.
func (a *autoDialer) dial(ctx context.Context, dialAddr func(context.Context, string) (net.Conn, error)) (net.Conn, error) {
	a.mu.Lock()
	chosen := a.chosen
	a.mu.Unlock()
	if chosen != "" {
		return dialAddr(ctx, chosen)
	}
	dl := time.Now().Add(a.v4Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	c, err4 := dialAddr(&deadlineCtx{Context: ctx, deadline: dl}, a.v4)
	if err4 == nil {
		a.remember(a.v4)
		return c, nil
	}
	if ctx.Err() != nil {
		return nil, err4
	}
	c, err6 := dialAddr(ctx, a.v6)
	if err6 == nil {
		a.remember(a.v6)
		return c, nil
	}
	return nil, fmt.Errorf("endpoint mode auto: IPv4 %s: %v; IPv6 %s: %w", a.v4, err4, a.v6, err6)
}

func (a *autoDialer) remember(addr string) {
	a.mu.Lock()
	if a.chosen == "" {
		a.chosen = addr
	}
	a.mu.Unlock()
}

// endpoint returns the base URL base stands for: in mode auto, once a
// connection chose IPv6, the IPv6 default.
func (a *autoDialer) endpoint(base *url.URL) string {
	if a == nil {
		return base.String()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.chosen == a.v6 {
		return DefaultIPv6Endpoint
	}
	return base.String()
}
