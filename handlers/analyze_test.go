package handlers

import (
	"strings"
	"testing"
	"time"
)

// Time spent in handlers is the time during which one ran: a handler
// beside the chain adds only what stuck out of the others.
func TestBlameCountsTimeBesideTheChainOnce(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 13, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	st := &Status{State: StateDone, InstanceID: "i-1", Started: t0, DurationMS: 1000, Ready: at(520), Handlers: []Result{
		{Name: "a", Status: ResultOK, Started: at(100), DurationMS: 100},
		{Name: "net", Status: ResultOK, Started: at(200), DurationMS: 250, Beside: true}, // 200-450
		{Name: "b", Status: ResultOK, Started: at(210), DurationMS: 140},                 // 210-350
		{Name: "c", Status: ResultOK, Started: at(400), DurationMS: 100},                 // 400-500
		{Name: "d", Status: ResultSkipped},
		{Name: "e", Status: ResultOK, Started: at(600), DurationMS: 50},
	}}
	if got := WallMS(st.Handlers); got != 450 {
		t.Errorf("WallMS = %v, want 450 (100-500, 600-650)", got)
	}
	out := Blame(st)
	for _, want := range []string{"ok (beside the chain)", "5 handlers ran in 450.000 ms; the whole run took 1000.000 ms (550.000 ms outside handlers",
		"READY=1 (sshd may start) 520.000 ms after the run started"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
}
