package retry

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestRetryAfterIsReadInSecondsOrAsADateAndCapped(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name, in string
		want     time.Duration
	}{
		{"whole seconds", "3", 3 * time.Second},
		{"seconds with blanks", " 3 ", 3 * time.Second},
		{"zero", "0", 0},
		{"a negative number", "-1", 0},
		{"a date five seconds ahead", "Wed, 02 Dec 2026 12:00:05 GMT", 5 * time.Second},
		{"a date in the past", "Wed, 21 Oct 2015 07:28:00 GMT", 0},
		{"a day in seconds is capped", "86400", MaxAfter},
		{"a huge number is capped", "99999999999999999999", MaxAfter},
		{"a huge negative number", "-99999999999999999999", 0},
		{"a date a day ahead is capped", "Thu, 03 Dec 2026 12:00:00 GMT", MaxAfter},
		{"a fraction", "1.5", 0},
		{"garbage", "soon", 0},
		{"nothing", "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := After(tc.in, now); got != tc.want {
				t.Errorf("After(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestBackoffDoublesUpToTheCapWithHalfOfItRandom(t *testing.T) {
	p := Policy{Base: 100 * time.Millisecond, Cap: time.Second}
	for attempt, ceil := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 4: 800 * time.Millisecond, 5: time.Second, 1000: time.Second} {
		for range 50 {
			if d := p.backoff(attempt); d < ceil/2 || d > ceil {
				t.Fatalf("backoff(%d) = %v, want between %v and %v", attempt, d, ceil/2, ceil)
			}
		}
	}
	if d := (Policy{}).backoff(3); d != 0 {
		t.Errorf("a zero policy waits %v", d)
	}
}

func TestRunStopsAtTheFirstErrorNotMarkedForRetry(t *testing.T) {
	calls := 0
	final := errors.New("404")
	err := Run(context.Background(), Policy{Attempts: 5}, func() error {
		calls++
		if calls < 3 {
			return Later(errors.New("503"), nil)
		}
		return final
	})
	if err != final || calls != 3 {
		t.Fatalf("Run = %v after %d calls, want the unmarked error after 3", err, calls)
	}
}

func TestRunGivesUpAfterItsAttemptsWithTheLastFailure(t *testing.T) {
	calls := 0
	cause := errors.New("503")
	err := Run(context.Background(), Policy{Attempts: 3}, func() error {
		calls++
		return Later(cause, nil)
	})
	if calls != 3 || !errors.Is(err, cause) || !strings.Contains(err.Error(), "gave up after 3 attempts") {
		t.Fatalf("Run = %v after %d calls", err, calls)
	}
	var re *Error
	if errors.As(err, &re) {
		t.Errorf("a run that gave up still carries its retry mark: an outer run would multiply the attempts")
	}
}

func TestAMarkInsideAnotherErrorIsFinal(t *testing.T) {
	calls := 0
	err := Run(context.Background(), Policy{Attempts: 4}, func() error {
		calls++
		return fmt.Errorf("token: %w", Later(errors.New("503"), nil))
	})
	if calls != 1 || err == nil {
		t.Fatalf("Run = %v after %d calls, want one call", err, calls)
	}
}

func TestAWaitPastTheDeadlineFailsAtOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	begin := time.Now()
	err := Run(ctx, Policy{Attempts: -1}, func() error { return &Error{Err: errors.New("429"), After: 5 * time.Second} })
	if !errors.Is(err, ErrPastDeadline) || !strings.Contains(err.Error(), "429 (then retry in 5s would pass the deadline)") {
		t.Fatalf("Run = %v", err)
	}
	if ctx.Err() != nil || time.Since(begin) > 500*time.Millisecond {
		t.Errorf("Run slept towards the deadline instead of failing at once")
	}
}

func TestACancelledRunSaysSo(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	err := Run(ctx, Policy{Attempts: -1, Base: time.Hour}, func() error {
		if calls++; calls == 1 {
			time.AfterFunc(20*time.Millisecond, cancel)
		}
		return Later(errors.New("503"), nil)
	})
	if !errors.Is(err, context.Canceled) || calls != 1 {
		t.Fatalf("Run = %v after %d calls", err, calls)
	}
}

func TestTheFirstAttemptAllocatesNothing(t *testing.T) {
	ctx := context.Background()
	p := Policy{Attempts: 4, Base: time.Millisecond}
	op := func() error { return nil }
	if n := testing.AllocsPerRun(100, func() { Run(ctx, p, op) }); n != 0 {
		t.Errorf("a first attempt that succeeds allocates %v times", n)
	}
}

func TestWaitLogsEachRetry(t *testing.T) {
	var notes []string
	p := Policy{Attempts: 2, Name: "imds", Logf: func(f string, a ...any) { notes = append(notes, fmt.Sprintf(f, a...)) }}
	Run(context.Background(), p, func() error { return &Error{Err: errors.New("503")} })
	if len(notes) != 1 || notes[0] != "imds: retrying in 0s" {
		t.Errorf("notes %q", notes)
	}
}
