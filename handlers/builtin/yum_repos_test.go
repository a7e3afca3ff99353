package builtin

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/handlers/handlerstest"
)

// yumImage is an RPM image's root as far as yum-repos looks: dnf (never
// run) and one repository file of the image's own.
var yumImage = map[string]string{
	"usr/bin/dnf":                      "#!/bin/sh\nexit 1\n",
	"etc/yum.repos.d/amazonlinux.repo": "[amazonlinux]\nmirrorlist=https://al2023-repos.example/mirrors\n",
}

func yumInstance(t *testing.T, ud string, files map[string]string) *instance {
	t.Helper()
	in := planInstance(t, ud, files)
	if _, ok := files["usr/bin/dnf"]; ok {
		os.Chmod(filepath.Join(in.Root, "usr/bin/dnf"), 0o755)
	}
	return in
}

func TestYumReposWritesOneFilePerRepositoryAndKeepsExistingOnes(t *testing.T) {
	in := yumInstance(t, `#cloud-config
yum_repos:
  epel testing:
    name: Extra Packages for Enterprise Linux - Testing
    baseurl: http://download.example/pub/epel/testing/$releasever/$basearch/
    enabled: false
    gpgcheck: true
    gpgkey: [file:///etc/pki/rpm-gpg/RPM-GPG-KEY-EPEL, https://keys.example/epel.asc]
  amazonlinux:
    baseurl: http://would.replace.the/image/one
`, yumImage)
	st, out := in.Run(t, notLiveOnly("yum-repos"))
	r := handlerstest.Result(st, "yum-repos")
	if r.Status != handlers.ResultOK || st.State != "done" {
		t.Fatalf("yum-repos %s (%s), run %s\n%s", r.Status, r.Reason, st.State, out)
	}
	got := in.ReadFile(t, "etc/yum.repos.d/epel-testing.repo")
	if !strings.HasPrefix(got, "# Created by cloud-init on ") {
		t.Errorf("first line: %q", got)
	}
	_, body, _ := strings.Cut(got, "\n")
	want := "[epel-testing]\nname = Extra Packages for Enterprise Linux - Testing\n" +
		"baseurl = http://download.example/pub/epel/testing/$releasever/$basearch/\nenabled = 0\ngpgcheck = 1\n" +
		"gpgkey = file:///etc/pki/rpm-gpg/RPM-GPG-KEY-EPEL\n\thttps://keys.example/epel.asc\n\n"
	if body != want {
		t.Errorf("epel-testing.repo:\n%s\nwant\n%s", body, want)
	}
	if got := in.ReadFile(t, "etc/yum.repos.d/amazonlinux.repo"); got != yumImage["etc/yum.repos.d/amazonlinux.repo"] {
		t.Errorf("the image's repository file was changed: %q", got)
	}
	if !strings.Contains(strings.Join(r.Notes, "\n"), "skipping repo amazonlinux: /etc/yum.repos.d/amazonlinux.repo already exists") {
		t.Errorf("no note for the kept file: %q", r.Notes)
	}
	// Once per instance.
	st, _ = in.Run(t, notLiveOnly("yum-repos"))
	if r := handlerstest.Result(st, "yum-repos"); r.Status != handlers.ResultSkipped {
		t.Errorf("second run: %s", r.Status)
	}
}

func TestYumReposWithoutURLIsOneLineAndTheOthersAreWritten(t *testing.T) {
	in := yumInstance(t, "#cloud-config\nyum_repos:\n  good: {baseurl: http://g.example/}\n  bad: {name: no url at all}\n", yumImage)
	st, out := in.Run(t, notLiveOnly("yum-repos"))
	wantOneFailedLine(t, st, out, "yum-repos", `yum_repos: repository "bad" has none of baseurl, metalink or mirrorlist; skipped (1 other written)`)
	if _, err := os.Stat(filepath.Join(in.Root, "etc/yum.repos.d/bad.repo")); err == nil {
		t.Error("bad.repo was written")
	}
	if got := in.ReadFile(t, "etc/yum.repos.d/good.repo"); !strings.Contains(got, "[good]\nbaseurl = http://g.example/\n") {
		t.Errorf("good.repo: %q", got)
	}
}

func TestYumReposNotAMappingWritesNothing(t *testing.T) {
	in := yumInstance(t, "#cloud-config\nyum_repos:\n  - name: a list\n    baseurl: http://a.example/\n", yumImage)
	st, out := in.Run(t, notLiveOnly("yum-repos"))
	wantOneFailedLine(t, st, out, "yum-repos", "yum_repos: is a list, not a mapping of repository ids; no repository written")
	entries, _ := os.ReadDir(filepath.Join(in.Root, "etc/yum.repos.d"))
	if len(entries) != 1 {
		t.Errorf("yum.repos.d holds %d files, want the image's one", len(entries))
	}
}

func TestYumReposOnAnImageWithoutYumIsAWarning(t *testing.T) {
	in := yumInstance(t, "#cloud-config\nyum_repos:\n  a: {baseurl: http://a.example/}\n", nil)
	st, out := in.Run(t, notLiveOnly("yum-repos"))
	r := handlerstest.Result(st, "yum-repos")
	const msg = "yum_repos: the image has neither dnf nor yum"
	if r.Status != handlers.ResultOK || !strings.Contains(strings.Join(r.Notes, "\n"), msg) {
		t.Fatalf("yum-repos %s %q\n%s", r.Status, r.Notes, out)
	}
	if st.State != "degraded" || !strings.Contains(strings.Join(st.Warnings, "\n"), msg) {
		t.Errorf("run %s, warnings %q: want degraded with the warning", st.State, st.Warnings)
	}
	if _, err := os.Stat(filepath.Join(in.Root, "etc/yum.repos.d")); err == nil {
		t.Error("yum.repos.d was made on an image without yum")
	}
}

// BenchmarkYumReposHandler measures the yum-repos handler alone (its
// duration in the run's status) writing three repositories on a first
// boot, a fresh root each time; it reports the median.
//
//	go test -run '^$' -bench YumReposHandler ./handlers/builtin
func BenchmarkYumReposHandler(b *testing.B) {
	ud := "#cloud-config\nyum_repos:\n" +
		"  epel: {name: EPEL, baseurl: 'http://e.example/$basearch/', gpgcheck: true, gpgkey: [file:///a, file:///b]}\n" +
		"  copr: {metalink: 'https://m.example/?repo=x', enabled: false}\n" +
		"  local repo: {baseurl: file:///srv/repo, priority: 10}\n"
	benchHandler(b, "yum-repos", func() *instance {
		in := planInstance(b, ud, yumImage)
		os.Chmod(filepath.Join(in.Root, "usr/bin/dnf"), 0o755)
		return in
	}, func(in *instance) { in.ReadFile(b, "etc/yum.repos.d/local-repo.repo") }, notLiveOnly("yum-repos"))
}

// benchHandler runs the chain b.N times on fresh instances and reports
// the median of the named handler's own duration; check runs after the
// first run.
func benchHandler(b *testing.B, name string, fresh func() *instance, check func(*instance), mod func(*handlers.Setup)) {
	var ms []float64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		in := fresh()
		b.StartTimer()
		st, out := in.Run(b, mod)
		b.StopTimer()
		r := handlerstest.Result(st, name)
		if r.Status != handlers.ResultOK {
			b.Fatalf("%s %s (%s)\n%s", name, r.Status, r.Reason, out)
		}
		if i == 0 {
			check(in)
		}
		ms = append(ms, r.DurationMS)
		b.StartTimer()
	}
	slices.Sort(ms)
	b.ReportMetric(ms[len(ms)/2], name+"-median-ms")
}
