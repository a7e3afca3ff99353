package retry_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flint-dev/flint/imds"
	"github.com/flint-dev/flint/internal/retry"
	"github.com/flint-dev/flint/modules"
	"github.com/flint-dev/flint/userdata"
)

// callers are the three users of the policy, each reading one document
// from url the way it does in flint.
var callers = []struct {
	name  string
	fetch func(ctx context.Context, url string) ([]byte, error)
}{
	{"imds", func(ctx context.Context, url string) ([]byte, error) {
		c, err := imds.New(imds.Options{Endpoint: url, Mode: imds.ModeV1, MaxBackoff: time.Millisecond})
		if err != nil {
			return nil, err
		}
		return c.Get(ctx, "meta-data/instance-id")
	}},
	{"a kernel-module bundle download", func(ctx context.Context, url string) ([]byte, error) {
		return (&modules.Fetcher{Backoff: time.Millisecond}).Get(ctx, url+"/latest/meta-data/instance-id", 1<<10, true)
	}},
	{"a user-data #include", func(ctx context.Context, url string) ([]byte, error) {
		return (&userdata.HTTPFetcher{Backoff: time.Millisecond}).Fetch(ctx, url+"/latest/meta-data/instance-id")
	}},
}

// busyOnce answers its first request 503 with the Retry-After header
// retryAfter returns, then "i-1".
func busyOnce(t *testing.T, retryAfter func() string) (url string, requests *atomic.Int32) {
	requests = new(atomic.Int32)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) == 1 {
			w.Header().Set("Retry-After", retryAfter())
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "i-1")
	}))
	t.Cleanup(srv.Close)
	return srv.URL, requests
}

func TestTheThreeCallersWaitAsLongAsRetryAfterAsks(t *testing.T) {
	for _, form := range []struct {
		name  string
		value func() string
	}{
		{"in seconds", func() string { return "1" }},
		// The date has whole seconds: two ahead is a wait of over one.
		{"as an HTTP-date", func() string { return time.Now().Add(2 * time.Second).UTC().Format(http.TimeFormat) }},
	} {
		for _, c := range callers {
			t.Run(form.name+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				url, requests := busyOnce(t, form.value)
				begin := time.Now()
				b, err := c.fetch(context.Background(), url)
				if err != nil || string(b) != "i-1" {
					t.Fatalf("got %q, %v", b, err)
				}
				// A lower bound is behaviour (the server asked for a
				// second or more), not a speed target.
				if waited := time.Since(begin); waited < 900*time.Millisecond {
					t.Errorf("retried after %v; the server asked for at least a second", waited)
				}
				if n := requests.Load(); n != 2 {
					t.Errorf("%d requests, want 2", n)
				}
			})
		}
	}
}

func TestTheThreeCallersRefuseAWaitPastTheDeadline(t *testing.T) {
	for _, c := range callers {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			url, requests := busyOnce(t, func() string { return "30" })
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			_, err := c.fetch(ctx, url)
			if !errors.Is(err, retry.ErrPastDeadline) || !strings.Contains(err.Error(), "503") ||
				!strings.Contains(err.Error(), "retry in 20s would pass the deadline") {
				t.Fatalf("err = %v; want the 503 and the capped 20 s wait refused", err)
			}
			if ctx.Err() != nil {
				t.Errorf("waited for the deadline instead of failing at once")
			}
			if n := requests.Load(); n != 1 {
				t.Errorf("%d requests, want 1", n)
			}
		})
	}
}
