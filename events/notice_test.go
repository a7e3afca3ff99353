package events

import (
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	seen := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		kind   Kind
		body   string
		ids    []string
		action string
		time   string
		err    string
	}{
		{name: "a Spot stop gives its action and time", kind: Spot, body: `{"action": "stop", "time": "2017-09-18T08:22:00Z"}`,
			ids: []string{"spot:stop@2017-09-18T08:22:00Z"}, action: "stop", time: "2017-09-18T08:22:00Z"},
		{name: "a rebalance recommendation gives its notice time", kind: Rebalance, body: `{"noticeTime": "2020-10-27T08:22:00Z"}`,
			ids: []string{"rebalance@2020-10-27T08:22:00Z"}, action: "rebalance-recommendation", time: "2020-10-27T08:22:00Z"},
		{name: "an active scheduled event gives its code and NotBefore", kind: Scheduled,
			body: `[{"NotBefore" : "21 Jan 2019 09:00:43 GMT", "Code" : "system-reboot", "Description" : "scheduled reboot", "EventId" : "instance-event-0d59937288b749b32", "NotAfter" : "21 Jan 2019 09:17:23 GMT", "State" : "active"}]`,
			ids:  []string{"scheduled:instance-event-0d59937288b749b32@2019-01-21T09:00:43Z"}, action: "system-reboot", time: "2019-01-21T09:00:43Z"},
		{name: "completed and canceled scheduled events are not pending", kind: Scheduled,
			body: `[{"NotBefore":"21 Jan 2019 09:00:43 GMT","Code":"system-reboot","EventId":"instance-event-1","State":"completed"},{"NotBefore":"21 Jan 2019 09:00:43 GMT","Code":"instance-stop","EventId":"instance-event-2","State":"canceled"}]`},
		{name: "an empty scheduled list gives nothing", kind: Scheduled, body: `[]`},
		{name: "InService gives nothing", kind: Lifecycle, body: "InService"},
		{name: "Terminated is a notice at the time it was seen", kind: Lifecycle, body: "Terminated\n",
			ids: []string{"lifecycle:Terminated"}, action: "Terminated", time: "2026-12-02T12:00:00Z"},
		{name: "a Spot body that is not JSON is refused", kind: Spot, body: `<html>`, err: "not a Spot instance action"},
		{name: "a Spot time that is not RFC 3339 is refused", kind: Spot, body: `{"action":"stop","time":"soon"}`, err: `bad time "soon"`},
		{name: "a scheduled event without an EventId is refused", kind: Scheduled, body: `[{"Code":"system-reboot"}]`, err: "lacks Code or EventId"},
		{name: "a scheduled event with a bad NotBefore is refused", kind: Scheduled, body: `[{"Code":"system-reboot","EventId":"e","NotBefore":"tomorrow"}]`, err: "bad NotBefore"},
		{name: "a lifecycle state with control characters is refused", kind: Lifecycle, body: "Termi\x1bnated", err: "not a lifecycle state"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns, err := Parse(tc.kind, []byte(tc.body), seen)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("err = %v, want one line with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(ns) != len(tc.ids) {
				t.Fatalf("got %d notices %+v, want %v", len(ns), ns, tc.ids)
			}
			for i, n := range ns {
				if n.ID != tc.ids[i] || n.Action != tc.action || n.Time.UTC().Format(time.RFC3339) != tc.time || n.Kind != tc.kind {
					t.Errorf("notice %+v, want id %s action %s time %s", n, tc.ids[i], tc.action, tc.time)
				}
				if len(n.Detail) == 0 || strings.Contains(string(n.Detail), "\n") {
					t.Errorf("detail %q: want the served JSON on one line", n.Detail)
				}
			}
		})
	}
}

func TestShutdownAt(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	in := func(d time.Duration) time.Time { return now.Add(d) }
	for _, tc := range []struct {
		name string
		n    Notice
		ok   bool
		at   time.Time
	}{
		{"a Spot stop powers off the margin before its time", Notice{Kind: Spot, Action: "stop", Time: in(2 * time.Minute)}, true, in(90 * time.Second)},
		{"a Spot notice closer than the margin powers off now", Notice{Kind: Spot, Action: "terminate", Time: in(10 * time.Second)}, true, now},
		{"a scheduled instance-stop powers off before it", Notice{Kind: Scheduled, Action: "instance-stop", Time: in(time.Hour)}, true, in(time.Hour - 30*time.Second)},
		{"a scheduled retirement powers off before it", Notice{Kind: Scheduled, Action: "instance-retirement", Time: in(time.Hour)}, true, in(time.Hour - 30*time.Second)},
		{"a scheduled reboot does not power off", Notice{Kind: Scheduled, Action: "system-reboot", Time: in(time.Hour)}, false, time.Time{}},
		{"a rebalance recommendation does not power off", Notice{Kind: Rebalance, Time: now}, false, time.Time{}},
		{"the lifecycle state Terminated powers off now", Notice{Kind: Lifecycle, Action: "Terminated", Time: now}, true, now},
		{"a warm pool stop powers off now", Notice{Kind: Lifecycle, Action: "Warmed:Stopped", Time: now}, true, now},
		{"a warm pool running state does not power off", Notice{Kind: Lifecycle, Action: "Warmed:Running", Time: now}, false, time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			at, ok := ShutdownAt(tc.n, 30*time.Second, now)
			if ok != tc.ok || !at.Equal(tc.at) {
				t.Fatalf("ShutdownAt = %v, %v; want %v, %v", at, ok, tc.at, tc.ok)
			}
		})
	}
}
