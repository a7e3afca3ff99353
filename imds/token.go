package imds

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/flint-dev/flint/internal/retry"
)

// getToken returns the token to send, "" for IMDSv1. Callers that arrive
// while a token is being fetched wait for that fetch instead of sending a
// second PUT: one token per run.
func (c *Client) getToken(ctx context.Context) (string, error) {
	if c.mode == ModeV1 {
		return "", nil
	}
	c.tokMu.Lock()
	defer c.tokMu.Unlock()
	if c.v1 {
		return "", nil
	}
	// Refresh a little before expiry so no request carries a token that
	// dies in flight.
	margin := min(c.ttl/10, time.Minute)
	if c.token != "" && time.Until(c.expiry) > margin {
		return c.token, nil
	}
	c.token = ""
	if c.tokErr != nil && time.Now().Before(c.tokErrUntil) {
		// Requests that queued behind a failed PUT share its answer
		// instead of each sending their own round of PUTs.
		return "", c.tokErr
	}
	tok, ttl, err := c.fetchToken(ctx)
	if err != nil {
		var fb *fallback
		if errors.As(err, &fb) && c.mode == ModeV2Preferred {
			c.logf("imds: token request %s; using IMDSv1", fb.why)
			c.v1 = true
			c.v1Timeout = fb.timeout
			return "", nil
		}
		if ctx.Err() == nil {
			c.tokErr, c.tokErrUntil = err, time.Now().Add(tokenErrorHold)
		}
		return "", err
	}
	c.tokErr = nil
	c.token, c.expiry = tok, time.Now().Add(ttl)
	return tok, nil
}

// tokenErrorHold is how long a failed token request answers for the
// requests that were waiting on it.
const tokenErrorHold = time.Second

// retryV2 undoes a fallback to IMDSv1 that a slow token PUT caused, once:
// a 401 without a token proves the endpoint is up and wants tokens, so the
// PUT was slow (early boot), not lost to the hop limit. It reports whether
// the caller should try again with a token.
func (c *Client) retryV2() bool {
	c.tokMu.Lock()
	defer c.tokMu.Unlock()
	if !c.v1 || !c.v1Timeout {
		return false
	}
	c.v1, c.v1Timeout = false, false
	c.tokErr = nil
	c.logf("imds: IMDSv1 refused (401); asking for a token again")
	return true
}

// dropToken forgets tok after a 401 so the next request fetches a new one;
// a token another goroutine already replaced is left alone.
func (c *Client) dropToken(tok string) {
	c.tokMu.Lock()
	if c.token == tok {
		c.token = ""
	}
	c.tokMu.Unlock()
}

// fallback is the token failure that allows IMDSv1 in v2-preferred mode.
type fallback struct {
	why     string
	timeout bool // no answer in time, rather than a 404/405
}

func (f *fallback) Error() string { return f.why }

func (c *Client) fetchToken(ctx context.Context) (string, time.Duration, error) {
	u, _ := c.url("api/token")
	ttl := strconv.Itoa(int(c.ttl / time.Second))
	hdr := map[string]string{"X-aws-ec2-metadata-token-ttl-seconds": ttl}
	var tok string
	var got time.Duration
	err := retry.Run(ctx, c.policy, func() error {
		body, status, rh, err := c.exchange(ctx, http.MethodPut, u, "", c.tokenTO, hdr)
		c.puts.Add(1)
		switch {
		case errors.Is(err, errAttemptTimeout):
			// An unanswered PUT is what a hop limit of 1 looks like from a
			// container: the GETs may still work over IMDSv1.
			if c.mode == ModeV2Only {
				return fmt.Errorf("PUT /latest/api/token: no answer within %v (is the instance's metadata hop limit too low?); v2-only mode forbids IMDSv1", c.tokenTO)
			}
			return &fallback{why: fmt.Sprintf("got no answer within %v", c.tokenTO), timeout: true}
		case err != nil:
			return err
		case status == http.StatusOK:
			tok = strings.TrimSpace(string(body))
			if tok == "" || strings.ContainsAny(tok, "\r\n") {
				return fmt.Errorf("PUT /latest/api/token: IMDS returned a malformed token")
			}
			got = c.ttl
			if s, err := strconv.Atoi(rh.Get("X-aws-ec2-metadata-token-ttl-seconds")); err == nil && s > 0 && time.Duration(s)*time.Second < got {
				got = time.Duration(s) * time.Second
			}
			return nil
		case status == http.StatusForbidden:
			return fmt.Errorf("PUT /latest/api/token: IMDS answered 403: %w", ErrDisabled)
		case status == http.StatusNotFound || status == http.StatusMethodNotAllowed:
			if c.mode == ModeV2Only {
				return fmt.Errorf("PUT /latest/api/token: IMDS answered %d: this endpoint has no IMDSv2 and v2-only mode forbids IMDSv1", status)
			}
			return &fallback{why: fmt.Sprintf("answered %d", status)}
		case status == http.StatusBadRequest:
			return fmt.Errorf("PUT /latest/api/token: IMDS answered 400: token TTL %s seconds refused", ttl)
		case status == http.StatusTooManyRequests || status >= 500:
			return retry.Later(&StatusError{Method: "PUT", Path: "/latest/api/token", Code: status}, rh)
		}
		return &StatusError{Method: "PUT", Path: "/latest/api/token", Code: status}
	})
	return tok, got, err
}
