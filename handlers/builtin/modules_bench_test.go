package builtin

import (
	"net/http"
	"net/http/httptest"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/flint-dev/flint/internal/testenv"
)

// BenchmarkFirstBootWithCloudConfigModules measures `flint run` as a
// whole process on a first boot (a fresh root each time) whose user-data
// uses the cloud-config modules wired from package cloudconfig: groups,
// ssh_pwauth, locale, ca_certs, ntp, apt with an inline key, write_files
// with a source, phone_home. Without --live: files are written and the
// programs they need (locale-gen, update-ca-certificates, systemctl) are
// planned, as package installs are left out. It reports the median wall
// time.
//
//	go test -run '^$' -bench FirstBootWithCloudConfigModules ./handlers/builtin
func BenchmarkFirstBootWithCloudConfigModules(b *testing.B) {
	bin := testenv.FlintBinary(b)
	key := testenv.ArmoredKey(b)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("fetched\n")) }))
	b.Cleanup(srv.Close)
	ud := aptUserData(key) + "groups: [{admingroup: [root]}, cloud-users]\nssh_pwauth: true\nlocale: de_DE.UTF-8\n" +
		"ca_certs:\n  trusted:\n    - |\n      " + strings.ReplaceAll(testCert, "\n", "\n      ") + "\nntp: {servers: [169.254.169.123]}\n" +
		"write_files: [{path: /etc/fetched, source: {uri: '" + srv.URL + "/f'}}]\nphone_home: {url: '" + srv.URL + "/ph', tries: 1}\n"
	files := map[string]string{"etc/os-release": aptOSRelease, "etc/ssh/sshd_config": debianSSHDConfig, "usr/sbin/chronyd": ""}
	for k, v := range localeRoot {
		files[k] = v
	}
	var times []time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		in := planInstance(b, ud, files)
		args := []string{"run", "--root", in.Root, "--endpoint", in.URL, "--skip", "network"}
		b.StartTimer()
		start := time.Now()
		out, err := exec.Command(bin, args...).CombinedOutput()
		times = append(times, time.Since(start))
		if err != nil && !strings.Contains(string(out), "degraded") {
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
				b.Fatalf("%v\n%s", err, out)
			}
		}
		if i == 0 {
			// The run did the modules' work, not only started.
			b.StopTimer()
			for path, want := range map[string]string{"etc/fetched": "fetched\n", "etc/ssh/sshd_config.d/50-cloud-init.conf": "PasswordAuthentication yes\n"} {
				if got := in.ReadFile(b, path); got != want {
					b.Fatalf("%s = %q, want %q\n%s", path, got, want, out)
				}
			}
			for _, path := range []string{"etc/apt/sources.list.d/example.list", "etc/chrony/chrony.conf", "usr/share/ca-certificates/cloud-init-ca-certs.crt", "etc/default/locale"} {
				in.ReadFile(b, path)
			}
			if testing.Verbose() {
				b.Logf("%s", in.ReadFile(b, "run/flint/status.json"))
			}
			b.StartTimer()
		}
	}
	b.StopTimer()
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "median-ms")
}
