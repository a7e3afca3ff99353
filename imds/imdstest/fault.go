package imdstest

import (
	"fmt"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"
)

// Fault makes the emulator misbehave for matching requests.
type Fault struct {
	// Path is matched against the request path with the version removed
	// ("api/token", "meta-data/instance-id"). A trailing "*" matches any
	// suffix; other glob syntax follows path.Match. Empty matches all.
	Path string
	// Method restricts the fault to one HTTP method ("PUT", "GET").
	Method string
	// Status answers with this code instead of the real response.
	Status int
	// RetryAfter is sent as the Retry-After header with Status.
	RetryAfter string
	// Latency delays the response (combined with any other effect).
	Latency time.Duration
	// Reset closes the connection without an answer.
	Reset bool
	// Drop never answers: the request hangs until the client gives up, as a
	// token PUT does when the IP hop limit is too small for the container.
	Drop bool
	// Truncate sends the real status line and headers, with the whole
	// body's Content-Length, then half the body, then closes the
	// connection: a body cut short. With Reset the close is abrupt (RST),
	// a reset mid-body.
	Truncate bool
	// Count limits how often the fault fires; 0 means always.
	Count int
}

type fault struct {
	Fault
	fired int
}

func (f *fault) kind() string {
	switch {
	case f.Truncate:
		return "truncate"
	case f.Drop:
		return "drop"
	case f.Reset:
		return "reset"
	case f.Status != 0:
		return "status"
	case f.Latency > 0:
		return "latency"
	}
	return ""
}

func (s *Server) matchFault(method, urlPath string) *fault {
	rel := strings.TrimPrefix(urlPath, "/")
	if _, rest, ok := strings.Cut(rel, "/"); ok {
		rel = rest
	} else {
		rel = ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.faults {
		if f.Count > 0 && f.fired >= f.Count {
			continue
		}
		if f.Method != "" && !strings.EqualFold(f.Method, method) {
			continue
		}
		if !matchPath(f.Path, rel) {
			continue
		}
		f.fired++
		c := *f
		return &c
	}
	return nil
}

func matchPath(pattern, p string) bool {
	if pattern == "" || pattern == "*" {
		return true
	}
	p = strings.Trim(p, "/")
	pattern = strings.Trim(pattern, "/")
	if prefix, ok := strings.CutSuffix(pattern, "*"); ok && !strings.ContainsAny(prefix, "*?[") {
		return strings.HasPrefix(p, prefix)
	}
	ok, _ := path.Match(pattern, p)
	return ok
}

// ParseFaults parses the --faults syntax of `flint emulate`: rules separated
// by ";", each a comma-separated list of key=value or flag words:
//
//	path=meta-data/instance-id,status=503,retry-after=1,count=3
//	path=api/token,method=PUT,drop
//	path=meta-data/*,latency=50ms
//	path=user-data,reset,count=1
//	path=meta-data/local-hostname,truncate
func ParseFaults(spec string) ([]Fault, error) {
	var out []Fault
	for _, rule := range strings.Split(spec, ";") {
		rule = strings.TrimSpace(rule)
		if rule == "" {
			continue
		}
		var f Fault
		for _, kv := range strings.Split(rule, ",") {
			k, v, hasV := strings.Cut(strings.TrimSpace(kv), "=")
			var err error
			switch k {
			case "path":
				f.Path = v
			case "method":
				f.Method = strings.ToUpper(v)
			case "status":
				f.Status, err = strconv.Atoi(v)
				if err == nil && (f.Status < 100 || f.Status > 599) {
					err = fmt.Errorf("out of range")
				}
			case "retry-after":
				f.RetryAfter = v
			case "latency":
				f.Latency, err = time.ParseDuration(v)
			case "count":
				f.Count, err = strconv.Atoi(v)
			case "reset":
				f.Reset, err = true, flagOnly(hasV)
			case "drop":
				f.Drop, err = true, flagOnly(hasV)
			case "truncate":
				f.Truncate, err = true, flagOnly(hasV)
			default:
				return nil, fmt.Errorf("fault %q: unknown key %q (want path, method, status, retry-after, latency, count, reset, drop, truncate)", rule, k)
			}
			if err != nil {
				return nil, fmt.Errorf("fault %q: bad %s %q: %v", rule, k, v, err)
			}
		}
		if f.Status == 0 && f.Latency == 0 && !f.Reset && !f.Drop && !f.Truncate {
			return nil, fmt.Errorf("fault %q: does nothing (give status, latency, reset, drop or truncate)", rule)
		}
		if f.Truncate && (f.Status != 0 || f.Drop) {
			return nil, fmt.Errorf("fault %q: truncate cuts the real answer; it takes no status or drop", rule)
		}
		if f.Method != "" && f.Method != http.MethodGet && f.Method != http.MethodPut && f.Method != http.MethodHead {
			return nil, fmt.Errorf("fault %q: method must be GET, PUT or HEAD", rule)
		}
		out = append(out, f)
	}
	return out, nil
}

func flagOnly(hasValue bool) error {
	if hasValue {
		return fmt.Errorf("takes no value")
	}
	return nil
}
