package imdstest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// Paths of the notices the emulator can inject, below the version root.
const (
	SpotActionPath      = "meta-data/spot/instance-action"
	SpotTerminationPath = "meta-data/spot/termination-time"
	RebalancePath       = "meta-data/events/recommendations/rebalance"
	ScheduledPath       = "meta-data/events/maintenance/scheduled"
	LifecyclePath       = "meta-data/autoscaling/target-lifecycle-state"
)

// Lead times the emulator gives its notices, as EC2 does: a Spot
// interruption comes two minutes before the action; scheduled events are
// given here an hour ahead (EC2 gives days, which no test wants to wait).
const (
	SpotLead      = 2 * time.Minute
	ScheduledLead = time.Hour
)

// scheduledTime is the format of NotBefore/NotAfter in scheduled events.
const scheduledTime = "2 Jan 2006 15:04:05 GMT" // GMT is literal: EC2 writes it so

// Event is a notice the emulator serves from At on.
type Event struct {
	// Kind names the notice: spot-terminate, spot-stop, spot-hibernate,
	// rebalance, a scheduled event code (instance-reboot, system-reboot,
	// system-maintenance, instance-retirement, instance-stop), or
	// lifecycle-STATE (lifecycle-terminated, lifecycle-warmed-stopped, …).
	Kind string
	// At is when the notice appears; zero means at once.
	At time.Time
}

var scheduledCodes = map[string]string{
	"instance-reboot":     "The instance is scheduled for a reboot",
	"system-reboot":       "scheduled reboot",
	"system-maintenance":  "Scheduled system maintenance",
	"instance-retirement": "The instance is running on degraded hardware",
	"instance-stop":       "The instance is scheduled to be stopped",
}

// EventKinds lists the kinds ParseEvents accepts, for help texts.
func EventKinds() string {
	codes := make([]string, 0, len(scheduledCodes))
	for c := range scheduledCodes {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	return "spot-terminate, spot-stop, spot-hibernate, rebalance, " + strings.Join(codes, ", ") + ", lifecycle-terminated, lifecycle-warmed-stopped, lifecycle-warmed-hibernated, lifecycle-warmed-running, lifecycle-inservice"
}

func lifecycleState(kind string) (string, bool) {
	s, ok := strings.CutPrefix(kind, "lifecycle-")
	if !ok {
		return "", false
	}
	switch s {
	case "terminated":
		return "Terminated", true
	case "inservice":
		return "InService", true
	case "warmed-stopped":
		return "Warmed:Stopped", true
	case "warmed-hibernated":
		return "Warmed:Hibernated", true
	case "warmed-running":
		return "Warmed:Running", true
	case "warmed-terminated":
		return "Warmed:Terminated", true
	}
	return "", false
}

func knownKind(kind string) bool {
	switch kind {
	case "spot-terminate", "spot-stop", "spot-hibernate", "rebalance":
		return true
	}
	if _, ok := scheduledCodes[kind]; ok {
		return true
	}
	_, ok := lifecycleState(kind)
	return ok
}

// ParseEvents parses the --event syntax of `flint emulate`: notices
// separated by ";" or ",", each KIND or KIND@WHEN, where WHEN is "+DURATION"
// from now or an RFC 3339 time:
//
//	spot-stop@+30s
//	rebalance;instance-stop@2026-12-02T18:00:00Z
func ParseEvents(spec string, now time.Time) ([]Event, error) {
	var out []Event
	for _, item := range strings.FieldsFunc(spec, func(r rune) bool { return r == ';' || r == ',' }) {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		kind, when, hasWhen := strings.Cut(item, "@")
		kind = strings.ToLower(strings.TrimSpace(kind))
		if !knownKind(kind) {
			return nil, fmt.Errorf("event %q: unknown kind %q (want %s)", item, kind, EventKinds())
		}
		e := Event{Kind: kind}
		if hasWhen {
			if d, ok := strings.CutPrefix(when, "+"); ok {
				dur, err := time.ParseDuration(d)
				if err != nil || dur < 0 {
					return nil, fmt.Errorf("event %q: bad delay %q (want e.g. +30s)", item, when)
				}
				e.At = now.Add(dur)
			} else {
				t, err := time.Parse(time.RFC3339, when)
				if err != nil {
					return nil, fmt.Errorf("event %q: bad time %q (want +30s or an RFC 3339 time)", item, when)
				}
				e.At = t
			}
		}
		out = append(out, e)
	}
	return out, nil
}

// Inject schedules e: its notice is served from e.At on (at once when
// that has passed).
func (s *Server) Inject(e Event) error {
	if !knownKind(e.Kind) {
		return fmt.Errorf("unknown event kind %q (want %s)", e.Kind, EventKinds())
	}
	d := time.Until(e.At)
	if e.At.IsZero() || d <= 0 {
		s.apply(e, s.now())
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		s.mu.Lock()
		delete(s.pending, t)
		s.mu.Unlock()
		s.apply(e, e.At)
	})
	s.pending[t] = e
	return nil
}

// ClearEvents withdraws every notice served or still to come.
func (s *Server) ClearEvents() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for t := range s.pending {
		t.Stop()
	}
	clear(s.pending)
	s.tree.Delete(SpotActionPath)
	s.tree.Delete(SpotTerminationPath)
	s.tree.Delete(RebalancePath)
	s.tree.Delete(LifecyclePath)
	if _, ok := s.tree.Lookup(ScheduledPath); ok {
		s.tree.Set(ScheduledPath, []byte("[]"))
	}
}

// stopEvents stops the timers of notices still to come.
func (s *Server) stopEvents() {
	s.mu.Lock()
	for t := range s.pending {
		t.Stop()
	}
	clear(s.pending)
	s.mu.Unlock()
}

// apply puts e's notice into the tree as EC2 serves it, appearing at at.
func (s *Server) apply(e Event, at time.Time) {
	at = at.UTC().Truncate(time.Second)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case strings.HasPrefix(e.Kind, "spot-"):
		action := strings.TrimPrefix(e.Kind, "spot-")
		when := at.Add(SpotLead).Format(time.RFC3339)
		b, _ := json.Marshal(map[string]string{"action": action, "time": when})
		s.tree.Set(SpotActionPath, b)
		if action == "terminate" {
			s.tree.Set(SpotTerminationPath, []byte(when))
		}
	case e.Kind == "rebalance":
		b, _ := json.Marshal(map[string]string{"noticeTime": at.Format(time.RFC3339)})
		s.tree.Set(RebalancePath, b)
	case scheduledCodes[e.Kind] != "":
		var list []map[string]string
		if n, ok := s.tree.Lookup(ScheduledPath); ok && !n.IsDir() {
			json.Unmarshal(n.Value, &list) // a malformed fixture value is replaced
		}
		id := make([]byte, 9)
		rand.Read(id)
		start := at.Add(ScheduledLead)
		list = append(list, map[string]string{
			"NotBefore":   start.Format(scheduledTime),
			"NotAfter":    start.Add(2 * time.Hour).Format(scheduledTime),
			"Code":        e.Kind,
			"Description": scheduledCodes[e.Kind],
			"EventId":     "instance-event-" + hex.EncodeToString(id)[:17],
			"State":       "active",
		})
		b, _ := json.MarshalIndent(list, "", "  ")
		s.tree.Set(ScheduledPath, b)
	default:
		state, _ := lifecycleState(e.Kind)
		s.tree.Set(LifecyclePath, []byte(state))
	}
}

// eventParam returns the "event" parameter of a raw query; unlike
// url.Query it keeps a ";" inside the value, the separator of --event.
func eventParam(raw string) string {
	for _, kv := range strings.Split(raw, "&") {
		if v, ok := strings.CutPrefix(kv, "event="); ok {
			if u, err := url.QueryUnescape(v); err == nil {
				return u
			}
		}
	}
	return ""
}

// ControlPrefix is where the emulator's own control endpoint lives on its
// listener. Requests there are not IMDS requests: they are neither logged
// nor subject to faults.
const ControlPrefix = "/_flint/"

// control serves the control endpoint:
//
//	POST   /_flint/events?event=SPEC   inject notices (SPEC as for --event; or the body)
//	DELETE /_flint/events              withdraw every notice
//	GET    /_flint/events              list notices still to come
func (s *Server) control(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != ControlPrefix+"events" {
		http.Error(w, "unknown control path (want /_flint/events)", http.StatusNotFound)
		return
	}
	switch r.Method {
	case http.MethodPost:
		spec := eventParam(r.URL.RawQuery)
		if spec == "" {
			b, _ := io.ReadAll(io.LimitReader(r.Body, 4096))
			spec = strings.TrimSpace(string(b))
		}
		evs, err := ParseEvents(spec, s.now())
		if err == nil && len(evs) == 0 {
			err = fmt.Errorf("no event given (POST ?event=spot-stop@+30s)")
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, e := range evs {
			s.Inject(e)
		}
		fmt.Fprintf(w, "injected %d\n", len(evs))
	case http.MethodDelete:
		s.ClearEvents()
		io.WriteString(w, "cleared\n")
	case http.MethodGet:
		s.mu.RLock()
		type pending struct {
			Kind string    `json:"kind"`
			At   time.Time `json:"at"`
		}
		out := []pending{}
		for _, e := range s.pending {
			out = append(out, pending{e.Kind, e.At.UTC()})
		}
		s.mu.RUnlock()
		sort.Slice(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(out)
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}
