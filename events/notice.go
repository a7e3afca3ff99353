// Package events watches instance metadata for notices that the instance
// will be interrupted or needs attention: Spot interruptions, rebalance
// recommendations, scheduled maintenance events and Auto Scaling
// lifecycle states.
//
// Parsing a served body into notices (notice.go) and deciding when to
// power off (ShutdownAt) are pure. The edges are thin: the record of
// notices already handled in this boot (seen.go), the hooks and built-in
// actions run for a new one (action.go), and the poll loop (watch.go),
// which reads through an imds.Client and leaves tokens, retries and the
// endpoint to it.
package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Kind names a notice path.
type Kind string

// The four kinds of notice, one per metadata path.
const (
	Spot      Kind = "spot"
	Rebalance Kind = "rebalance"
	Scheduled Kind = "scheduled"
	Lifecycle Kind = "lifecycle"
)

// Kinds lists the kinds in the order they are polled and printed.
var Kinds = []Kind{Spot, Rebalance, Scheduled, Lifecycle}

// Path returns the metadata path (relative to /latest/) of kind k.
func (k Kind) Path() string {
	switch k {
	case Spot:
		return "meta-data/spot/instance-action"
	case Rebalance:
		return "meta-data/events/recommendations/rebalance"
	case Scheduled:
		return "meta-data/events/maintenance/scheduled"
	case Lifecycle:
		return "meta-data/autoscaling/target-lifecycle-state"
	}
	return ""
}

// Notice is one pending notice.
type Notice struct {
	// ID identifies the notice across polls and restarts of the watcher:
	// the same notice served again has the same ID; a new one has another.
	ID   string `json:"id"`
	Kind Kind   `json:"kind"`
	// Action is what will happen: the Spot action (terminate, stop,
	// hibernate), the scheduled event's code (system-reboot,
	// instance-stop, …), the lifecycle state (Terminated, Warmed:Stopped,
	// …) or "rebalance-recommendation".
	Action string `json:"action"`
	// Time is when it happens: the Spot action's time, the scheduled
	// event's NotBefore, the rebalance notice's time, or when a lifecycle
	// state was first seen (IMDS gives none).
	Time time.Time `json:"time"`
	// Detail is the notice as IMDS served it: the JSON object, or for a
	// lifecycle state the state as a JSON string.
	Detail json.RawMessage `json:"detail"`
}

// scheduledTime is the layout of NotBefore/NotAfter in scheduled events.
const scheduledTime = "2 Jan 2006 15:04:05 MST"

// Parse turns the body served at k's path into the notices it holds. A
// body that holds none (an empty scheduled list, the state InService)
// gives none; seen is the time to give notices that carry no time of
// their own (lifecycle states). A malformed body is an error naming k.
func Parse(k Kind, body []byte, seen time.Time) ([]Notice, error) {
	switch k {
	case Spot:
		var v struct{ Action, Time string }
		if err := json.Unmarshal(body, &v); err != nil || v.Action == "" {
			return nil, fmt.Errorf("%s: not a Spot instance action {\"action\",\"time\"}: %s", k.Path(), brief(body))
		}
		t, err := time.Parse(time.RFC3339, v.Time)
		if err != nil {
			return nil, fmt.Errorf("%s: bad time %q", k.Path(), v.Time)
		}
		return []Notice{{ID: "spot:" + v.Action + "@" + v.Time, Kind: k, Action: v.Action, Time: t, Detail: compact(body)}}, nil
	case Rebalance:
		var v struct {
			NoticeTime string `json:"noticeTime"`
		}
		if err := json.Unmarshal(body, &v); err != nil || v.NoticeTime == "" {
			return nil, fmt.Errorf("%s: not a rebalance recommendation {\"noticeTime\"}: %s", k.Path(), brief(body))
		}
		t, err := time.Parse(time.RFC3339, v.NoticeTime)
		if err != nil {
			return nil, fmt.Errorf("%s: bad noticeTime %q", k.Path(), v.NoticeTime)
		}
		return []Notice{{ID: "rebalance@" + v.NoticeTime, Kind: k, Action: "rebalance-recommendation", Time: t, Detail: compact(body)}}, nil
	case Scheduled:
		var list []json.RawMessage
		if err := json.Unmarshal(body, &list); err != nil {
			return nil, fmt.Errorf("%s: not a list of scheduled events: %s", k.Path(), brief(body))
		}
		var out []Notice
		for i, raw := range list {
			var v struct{ Code, EventId, NotBefore, State string }
			if err := json.Unmarshal(raw, &v); err != nil || v.Code == "" || v.EventId == "" {
				return nil, fmt.Errorf("%s: event %d lacks Code or EventId: %s", k.Path(), i, brief(raw))
			}
			// Completed and canceled events stay listed for a while;
			// only active ones are pending.
			if v.State != "" && v.State != "active" {
				continue
			}
			t, err := time.Parse(scheduledTime, v.NotBefore)
			if err != nil {
				return nil, fmt.Errorf("%s: event %s: bad NotBefore %q", k.Path(), v.EventId, v.NotBefore)
			}
			out = append(out, Notice{ID: "scheduled:" + v.EventId + "@" + t.UTC().Format(time.RFC3339),
				Kind: k, Action: v.Code, Time: t.UTC(), Detail: compact(raw)})
		}
		return out, nil
	case Lifecycle:
		state := strings.TrimSpace(string(body))
		if state == "" || strings.ContainsFunc(state, func(r rune) bool { return r < 0x20 || r == 0x7f }) || len(state) > 64 {
			return nil, fmt.Errorf("%s: not a lifecycle state: %s", k.Path(), brief(body))
		}
		if state == "InService" {
			return nil, nil
		}
		d, _ := json.Marshal(state)
		return []Notice{{ID: "lifecycle:" + state, Kind: k, Action: state, Time: seen.UTC().Truncate(time.Second), Detail: d}}, nil
	}
	return nil, fmt.Errorf("unknown notice kind %q", k)
}

// compact returns a valid JSON body on one line, as hooks and the
// journal get it.
func compact(b []byte) json.RawMessage {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return append(json.RawMessage(nil), b...)
	}
	return buf.Bytes()
}

// brief quotes the start of a body for an error line.
func brief(b []byte) string {
	s := string(b)
	if len(s) > 60 {
		s = s[:60] + "…"
	}
	return fmt.Sprintf("%q", s)
}

// ShutdownAt reports whether notice n means the instance goes away (a
// Spot interruption, a scheduled stop or retirement, a lifecycle state
// that terminates or warms the instance) and if so when to power off:
// before seconds ahead of the notice's time, but not before now.
// Reboots, maintenance and rebalance recommendations do not shut down.
func ShutdownAt(n Notice, before time.Duration, now time.Time) (time.Time, bool) {
	switch n.Kind {
	case Spot:
	case Scheduled:
		if n.Action != "instance-stop" && n.Action != "instance-retirement" {
			return time.Time{}, false
		}
	case Lifecycle:
		if n.Action != "Terminated" && !strings.HasPrefix(n.Action, "Warmed:") {
			return time.Time{}, false
		}
		if n.Action == "Warmed:Running" {
			return time.Time{}, false
		}
	default:
		return time.Time{}, false
	}
	at := n.Time.Add(-before)
	if at.Before(now) {
		at = now
	}
	return at, true
}
