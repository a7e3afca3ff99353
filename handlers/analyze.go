package handlers

import (
	"fmt"
	"sort"
	"strings"
)

// Blame renders per-handler durations of a run, slowest first, like
// `cloud-init analyze blame`, followed by totals.
func Blame(st *Status) string {
	rs := append([]Result(nil), st.Handlers...)
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].DurationMS > rs[j].DurationMS })
	var b strings.Builder
	fmt.Fprintf(&b, "-- run of %s: %s, started %s\n", orDash(st.InstanceID), st.State, st.Started.Format("2006-01-02 15:04:05.000"))
	var spent float64
	ran := 0
	for _, r := range rs {
		if r.Status == ResultOK || r.Status == ResultFailed || r.Status == ResultPlanned {
			ran++
			spent += r.DurationMS
		}
		fmt.Fprintf(&b, "  %9.3f ms  %-16s %-12s %s\n", r.DurationMS, r.Name, r.Frequency, r.Status)
	}
	fmt.Fprintf(&b, "%d handlers ran in %.3f ms; the whole run took %.3f ms (%.3f ms outside handlers: IMDS, state, config)\n",
		ran, spent, st.DurationMS, st.DurationMS-spent)
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
