package handlers

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Blame renders per-handler durations of a run, slowest first, like
// `cloud-init analyze blame`, followed by totals.
func Blame(st *Status) string {
	rs := append([]Result(nil), st.Handlers...)
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].DurationMS > rs[j].DurationMS })
	var b strings.Builder
	fmt.Fprintf(&b, "-- run of %s: %s, started %s\n", orDash(st.InstanceID), st.State, st.Started.Format("2006-01-02 15:04:05.000"))
	var ranResults []Result
	for _, r := range rs {
		if r.Status == ResultOK || r.Status == ResultFailed || r.Status == ResultPlanned {
			ranResults = append(ranResults, r)
		}
		status := r.Status
		if r.Beside {
			status += " (beside the chain)"
		}
		fmt.Fprintf(&b, "  %9.3f ms  %-16s %-12s %s\n", r.DurationMS, r.Name, r.Frequency, status)
	}
	spent := WallMS(ranResults)
	fmt.Fprintf(&b, "%d handlers ran in %.3f ms; the whole run took %.3f ms (%.3f ms outside handlers: IMDS, state, config)\n",
		len(ranResults), spent, st.DurationMS, st.DurationMS-spent)
	if !st.Ready.IsZero() {
		fmt.Fprintf(&b, "READY=1 (sshd may start) %.3f ms after the run started\n", float64(st.Ready.Sub(st.Started).Microseconds())/1000)
	}
	return b.String()
}

// WallMS is the time during which at least one of rs ran, in
// milliseconds: their durations' sum where they ran one after another,
// less where a handler ran beside the chain (Builtin.Beside) while
// others ran. A result without a start time counts its whole duration.
func WallMS(rs []Result) float64 {
	type span struct{ from, to time.Time }
	var spans []span
	var ms float64
	for _, r := range rs {
		d := time.Duration(r.DurationMS * float64(time.Millisecond))
		if r.Started.IsZero() {
			ms += r.DurationMS
			continue
		}
		spans = append(spans, span{r.Started, r.Started.Add(d)})
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].from.Before(spans[j].from) })
	var cur span
	for i, s := range spans {
		switch {
		case i == 0:
			cur = s
		case s.from.After(cur.to):
			ms += float64(cur.to.Sub(cur.from).Microseconds()) / 1000
			cur = s
		case s.to.After(cur.to):
			cur.to = s.to
		}
	}
	if len(spans) > 0 {
		ms += float64(cur.to.Sub(cur.from).Microseconds()) / 1000
	}
	return ms
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
