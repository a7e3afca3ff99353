// Package retry is flint's one retry policy: capped, jittered exponential
// backoff, one rule for a server's Retry-After, and a deadline check, shared
// by the metadata client, kernel-module bundle downloads and user-data
// #include fetches.
//
// An operation marks the failures worth another attempt with Later; any
// other error ends the run at once. The first attempt costs nothing beyond
// the call: no timer is armed and nothing is allocated until a wait is
// needed, because the metadata client's one-shot commands start, read one
// value and exit.
package retry

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MaxAfter caps how long a server's Retry-After is followed: a day-long
// answer must neither hang sshd's AuthorizedKeysCommand nor a boot. A
// server asking for longer is asked again after MaxAfter.
const MaxAfter = 20 * time.Second

// ErrPastDeadline is the reason a run stops when its next wait would
// outlive the context's deadline: it fails at once instead of sleeping
// into a failure.
var ErrPastDeadline = errors.New("would pass the deadline")

// Policy says how often and how patiently an operation is retried.
type Policy struct {
	// Attempts bounds the attempts of one run, the first included; 0 and 1
	// mean a single attempt. Negative means no bound but the context's
	// deadline.
	Attempts int
	// Base is the ceiling of the first wait; each later ceiling doubles,
	// up to Cap. A wait is drawn between half its ceiling and the ceiling,
	// so that clients failing together do not retry together.
	Base time.Duration
	// Cap bounds the backoff ceiling (not a Retry-After, which MaxAfter
	// bounds). Zero means no cap.
	Cap time.Duration
	// Logf, when set, is told of each wait as "NAME: retrying in D".
	Logf func(format string, args ...any)
	// Name prefixes Logf's notes.
	Name string
}

// Error marks a failure worth another attempt. It is recognised only as
// the error an operation returns, never inside another error's chain: an
// inner run that already gave up has spent its attempts, and an outer run
// must not multiply them.
type Error struct {
	Err error
	// After is the server's Retry-After, 0 if it sent none.
	After time.Duration
}

func (e *Error) Error() string { return e.Err.Error() }

// Unwrap returns the failure itself.
func (e *Error) Unwrap() error { return e.Err }

// Later marks err as worth another attempt, after at least the server's
// Retry-After header h (nil for none).
func Later(err error, h http.Header) error {
	e := &Error{Err: err}
	if h != nil {
		e.After = After(h.Get("Retry-After"), time.Now())
	}
	return e
}

// After reads a Retry-After value, in seconds or as an HTTP-date (RFC 9110
// 10.2.3), as the wait it asks for at now, capped at MaxAfter. Anything
// else, and a date already past, is 0: no wish beyond the backoff.
func After(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	n, err := strconv.ParseInt(v, 10, 64)
	switch {
	case err == nil && n > 0:
		return time.Duration(min(n, int64(MaxAfter/time.Second))) * time.Second
	case err == nil:
		return 0
	case errors.Is(err, strconv.ErrRange) && v[0] != '-':
		return MaxAfter
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, min(t.Sub(now), MaxAfter))
	}
	return 0
}

// Run calls op until it succeeds, fails with an error that is not an
// *Error, the attempts run out or the next wait would pass the deadline.
func Run(ctx context.Context, p Policy, op func() error) error {
	for attempt := 1; ; attempt++ {
		err := op()
		if err == nil {
			return nil
		}
		if err = p.Wait(ctx, attempt, err); err != nil {
			return err
		}
	}
}

// Wait is one step of Run, for callers whose loop is more than a retry
// (a download that resumes where it broke off): after the failed attempt
// number attempt, it sleeps until the next attempt and returns nil, or
// returns the error that ends the run. That error unwraps to the failure
// and, when the context or its deadline ended the run, to the reason too.
func (p Policy) Wait(ctx context.Context, attempt int, err error) error {
	re, ok := err.(*Error)
	if !ok {
		return err
	}
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%w (then %w)", re.Err, cerr)
	}
	if p.Attempts >= 0 && attempt >= max(p.Attempts, 1) {
		return fmt.Errorf("%w (gave up after %d attempts)", re.Err, attempt)
	}
	d := max(p.backoff(attempt), re.After)
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
		return fmt.Errorf("%w (then retry in %v %w)", re.Err, d.Round(time.Millisecond), ErrPastDeadline)
	}
	if p.Logf != nil {
		p.Logf("%s: retrying in %v", p.Name, d.Round(time.Millisecond))
	}
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w (then %w)", re.Err, ctx.Err())
	}
}

// backoff draws the wait after attempt failures: the ceiling Base·2^(n-1),
// capped at Cap, half of it fixed and half random.
func (p Policy) backoff(attempt int) time.Duration {
	ceil := p.Base
	for i := 1; i < attempt && ceil < time.Hour && (p.Cap <= 0 || ceil < p.Cap); i++ {
		ceil *= 2
	}
	if p.Cap > 0 {
		ceil = min(ceil, p.Cap)
	}
	if ceil <= 0 {
		return 0
	}
	return ceil/2 + rand.N(ceil/2+1)
}
