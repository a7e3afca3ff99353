package handlers_test

import (
	"os/exec"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/flint-dev/flint/internal/testenv"
)

// BenchmarkRunWholeProcess measures `flint run` as systemd starts it on a
// reboot of a known instance (hostname + state: config, token,
// instance-id, user-data, status and results), against the emulator on
// loopback. It reports the median wall time and the peak RSS over all runs.
//
//	go test -run '^$' -bench RunWholeProcess ./handlers
func BenchmarkRunWholeProcess(b *testing.B) {
	in := newInstance(b)
	bin := testenv.FlintBinary(b)
	args := []string{"run", "--root", in.Root, "--only", "hostname", "--endpoint", in.URL}
	if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
		b.Fatalf("first boot: %v\n%s", err, out)
	}
	var times []time.Duration
	var peak int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cmd := exec.Command(bin, args...)
		start := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%v\n%s", err, out)
		}
		times = append(times, time.Since(start))
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && ru.Maxrss > peak {
			peak = ru.Maxrss
		}
	}
	b.StopTimer()
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "median-ms")
	b.ReportMetric(float64(peak)/1024, "peak-RSS-MB")
}
