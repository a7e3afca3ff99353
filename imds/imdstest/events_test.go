package imdstest

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func get(t *testing.T, base, path string) (int, string) {
	t.Helper()
	return do(t, "GET", base+"/latest/"+path, nil)
}

func TestInjectedNoticesAreServedInTheFormatsIMDSUses(t *testing.T) {
	s, ts := serve(t, Options{})
	for _, p := range []string{SpotActionPath, SpotTerminationPath, RebalancePath, LifecyclePath} {
		if code, _ := get(t, ts.URL, p); code != 404 {
			t.Errorf("%s before any notice: %d, want 404", p, code)
		}
	}
	if code, body := get(t, ts.URL, ScheduledPath); code != 200 || body != "[]" {
		t.Errorf("scheduled before any notice: %d %q, want an empty list", code, body)
	}
	before := time.Now().UTC().Truncate(time.Second)
	for _, k := range []string{"spot-terminate", "rebalance", "system-reboot", "instance-stop", "lifecycle-terminated"} {
		if err := s.Inject(Event{Kind: k}); err != nil {
			t.Fatal(err)
		}
	}

	_, body := get(t, ts.URL, SpotActionPath)
	var spot struct{ Action, Time string }
	if err := json.Unmarshal([]byte(body), &spot); err != nil || spot.Action != "terminate" {
		t.Fatalf("instance-action %q: %v", body, err)
	}
	at, err := time.Parse(time.RFC3339, spot.Time)
	if err != nil || at.Sub(before) < SpotLead || at.Sub(before) > SpotLead+2*time.Second || !strings.HasSuffix(spot.Time, "Z") {
		t.Errorf("instance-action time %q: want about two minutes from now in UTC (%v)", spot.Time, err)
	}
	if _, tt := get(t, ts.URL, SpotTerminationPath); tt != spot.Time {
		t.Errorf("termination-time %q, want %q", tt, spot.Time)
	}

	_, body = get(t, ts.URL, RebalancePath)
	var reb map[string]string
	if err := json.Unmarshal([]byte(body), &reb); err != nil || len(reb) != 1 || reb["noticeTime"] == "" {
		t.Errorf("rebalance %q: want {\"noticeTime\": …}", body)
	}

	_, body = get(t, ts.URL, ScheduledPath)
	var sched []map[string]string
	if err := json.Unmarshal([]byte(body), &sched); err != nil || len(sched) != 2 {
		t.Fatalf("scheduled %q: %v", body, err)
	}
	for i, code := range []string{"system-reboot", "instance-stop"} {
		e := sched[i]
		nb, err := time.Parse("2 Jan 2006 15:04:05 GMT", e["NotBefore"])
		if e["Code"] != code || e["State"] != "active" || !strings.HasPrefix(e["EventId"], "instance-event-") || err != nil || nb.Before(before.Add(ScheduledLead)) {
			t.Errorf("scheduled event %d: %v (NotBefore: %v)", i, e, err)
		}
	}
	if sched[0]["EventId"] == sched[1]["EventId"] {
		t.Error("two scheduled events share an EventId")
	}

	if _, body = get(t, ts.URL, LifecyclePath); body != "Terminated" {
		t.Errorf("target-lifecycle-state %q, want Terminated", body)
	}
	if code, tt := get(t, ts.URL, "meta-data/spot/"); code != 200 || tt != "instance-action\ntermination-time" {
		t.Errorf("spot/ listing %d %q", code, tt)
	}
}

func TestASpotStopNoticeHasNoTerminationTime(t *testing.T) {
	s, ts := serve(t, Options{})
	s.Inject(Event{Kind: "spot-stop"})
	if code, body := get(t, ts.URL, SpotActionPath); code != 200 || !strings.Contains(body, `"action":"stop"`) {
		t.Errorf("instance-action: %d %q", code, body)
	}
	if code, _ := get(t, ts.URL, SpotTerminationPath); code != 404 {
		t.Errorf("termination-time for a stop: %d, want 404", code)
	}
}

func TestANoticeForLaterAppearsAtItsTime(t *testing.T) {
	evs, err := ParseEvents("rebalance@+300ms", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	_, ts := serve(t, Options{Events: evs})
	if code, _ := get(t, ts.URL, RebalancePath); code != 404 {
		t.Fatalf("rebalance before its time: %d, want 404", code)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, _ := get(t, ts.URL, RebalancePath)
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the rebalance notice never appeared")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestTheControlEndpointInjectsListsAndClearsNoticesUnlogged(t *testing.T) {
	s, ts := serve(t, Options{})
	if code, body := do(t, "POST", ts.URL+"/_flint/events?event=spot-hibernate;instance-reboot@%2B1h", nil); code != 200 {
		t.Fatalf("POST: %d %s", code, body)
	}
	if code, body := get(t, ts.URL, SpotActionPath); code != 200 || !strings.Contains(body, "hibernate") {
		t.Errorf("instance-action after POST: %d %q", code, body)
	}
	if _, body := do(t, "GET", ts.URL+"/_flint/events", nil); !strings.Contains(body, `"kind":"instance-reboot"`) {
		t.Errorf("pending list %q lacks the reboot an hour away", body)
	}
	for _, bad := range []string{"?event=spot-explode", "?event=rebalance@soon", ""} {
		if code, _ := do(t, "POST", ts.URL+"/_flint/events"+bad, nil); code != 400 {
			t.Errorf("POST %q: %d, want 400", bad, code)
		}
	}
	if code, _ := do(t, "DELETE", ts.URL+"/_flint/events", nil); code != 200 {
		t.Fatalf("DELETE: %d", code)
	}
	if code, _ := get(t, ts.URL, SpotActionPath); code != 404 {
		t.Errorf("instance-action after DELETE: %d, want 404", code)
	}
	if _, body := do(t, "GET", ts.URL+"/_flint/events", nil); strings.TrimSpace(body) != "[]" {
		t.Errorf("pending after DELETE: %q", body)
	}
	for _, r := range s.Log() {
		if strings.HasPrefix(r.Path, ControlPrefix) {
			t.Errorf("control request in the IMDS log: %s", r)
		}
	}
	if n := len(s.Log()); n != 2 {
		t.Errorf("log has %d IMDS requests, want 2", n)
	}
}

func TestParseEvents(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name, spec string
		want       []Event
		err        string
	}{
		{name: "a kind alone appears at once", spec: "spot-stop", want: []Event{{Kind: "spot-stop"}}},
		{name: "a delay counts from now", spec: "rebalance@+30s", want: []Event{{Kind: "rebalance", At: now.Add(30 * time.Second)}}},
		{name: "an absolute time is taken as given", spec: "instance-stop@2026-12-02T13:00:00Z", want: []Event{{Kind: "instance-stop", At: now.Add(time.Hour)}}},
		{name: "several are separated by semicolons or commas", spec: "spot-terminate; lifecycle-terminated,system-reboot", want: []Event{{Kind: "spot-terminate"}, {Kind: "lifecycle-terminated"}, {Kind: "system-reboot"}}},
		{name: "an unknown kind is refused", spec: "spot-explode", err: `unknown kind "spot-explode"`},
		{name: "a bad delay is refused", spec: "rebalance@+soon", err: "bad delay"},
		{name: "a negative delay is refused", spec: "rebalance@+-1s", err: "bad delay"},
		{name: "a bad time is refused", spec: "rebalance@tomorrow", err: "bad time"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseEvents(tc.spec, now)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i].Kind != tc.want[i].Kind || !got[i].At.Equal(tc.want[i].At) {
					t.Errorf("event %d = %v, want %v", i, got[i], tc.want[i])
				}
			}
		})
	}
}
