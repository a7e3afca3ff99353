package builtin

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/handlers/handlerstest"
	"github.com/flint-dev/flint/internal/rootfs"
	"github.com/flint-dev/flint/internal/testenv"
)

// udPart is one part of a MIME user-data document.
type udPart struct{ ctype, filename, body string }

// mimeDoc builds a multipart user-data document.
func mimeDoc(parts ...udPart) string {
	var sb strings.Builder
	sb.WriteString("Content-Type: multipart/mixed; boundary=\"XX\"\nMIME-Version: 1.0\n\n")
	for _, p := range parts {
		fmt.Fprintf(&sb, "--XX\nContent-Type: %s\nMIME-Version: 1.0\n", p.ctype)
		if p.filename != "" {
			fmt.Fprintf(&sb, "Content-Disposition: attachment; filename=%q\n", p.filename)
		}
		sb.WriteString("\n" + p.body + "\n")
	}
	sb.WriteString("--XX--\n")
	return sb.String()
}

// udInstance is an emulator serving userData, and a temp root.
func udInstance(t *testing.T, userData string) *instance {
	t.Helper()
	in := newInstance(t)
	in.Emu.Set("user-data", []byte(userData))
	return in
}

// runUD runs the whole chain live (but for the network handler, which
// must not touch the test's namespace) and returns the status and what
// went to the console.
func runUD(t *testing.T, in *instance, mod func(*handlers.Setup)) (*handlers.Status, string) {
	t.Helper()
	var console, stdout bytes.Buffer
	s := in.Setup(&console, &stdout)
	s.Skip = []string{"network"}
	if mod != nil {
		mod(&s)
	}
	st, err := handlers.Execute(context.Background(), s)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, console.String())
	}
	return st, console.String()
}

// want checks that the named handlers ended with the given statuses.
func want(t *testing.T, st *handlers.Status, statuses map[string]string) {
	t.Helper()
	for name, s := range statuses {
		r := handlerstest.Result(st, name)
		if r.Status != s {
			t.Errorf("%s is %s (%s; notes %q), want %s", name, r.Status, r.Reason, r.Notes, s)
		}
	}
}

func lines(t *testing.T, in *instance, rel string) []string {
	b, _ := os.ReadFile(filepath.Join(in.Root, rel))
	return strings.Fields(string(b))
}

const instanceDir = "var/lib/flint/instances/i-0123456789abcdef0"

func TestBootcmdRunsEveryBootAsOneShellScriptWithTheInstanceID(t *testing.T) {
	in := udInstance(t, `#cloud-config
bootcmd:
  - echo "str $INSTANCE_ID" >> "$FLINT_ROOT/bootcmd.log"
  - [sh, -c, 'echo "list it''s" >> "$FLINT_ROOT/bootcmd.log"']
`)
	st, _ := runUD(t, in, nil)
	want(t, st, map[string]string{"bootcmd": "ok"})
	st, _ = runUD(t, in, nil)
	want(t, st, map[string]string{"bootcmd": "ok"})
	got := in.ReadFile(t, "bootcmd.log")
	if got != "str i-0123456789abcdef0\nlist it's\nstr i-0123456789abcdef0\nlist it's\n" {
		t.Errorf("bootcmd.log after two boots:\n%s", got)
	}
	if fi, err := os.Stat(filepath.Join(in.Root, instanceDir, "bootcmd")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("bootcmd script: %v %v, want 0700", err, fi)
	}
}

func TestBootcmdFailureIsRecordedAndTheChainGoesOn(t *testing.T) {
	in := udInstance(t, "#cloud-config\nbootcmd:\n  - exit 7\nwrite_files:\n  - {path: /after, content: x}\n")
	st, _ := runUD(t, in, nil)
	want(t, st, map[string]string{"bootcmd": "failed", "write-files": "ok"})
	if r := handlerstest.Result(st, "bootcmd").Reason; !strings.Contains(r, "exited with status 7") {
		t.Errorf("bootcmd reason %q", r)
	}
}

func gz(t *testing.T, s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.Bytes()
}

func TestWriteFilesDecodesOwnsAppendsDefersAndRefusesEscapes(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString([]byte("from base64\n"))
	gzb64 := base64.StdEncoding.EncodeToString(gz(t, "from gzip\n"))
	in := udInstance(t, fmt.Sprintf(`#cloud-config
write_files:
  - path: /etc/plain.conf
    content: |
      plain
  - path: /etc/b64.conf
    encoding: b64
    content: %s
    permissions: '0600'
  - path: /srv/app/gz.conf
    encoding: gz+b64
    content: %s
    owner: app:www
    permissions: '0640'
  - path: /etc/existing
    content: "appended\n"
    append: true
  - path: /../../escape
    content: nope
  - path: /etc/bad-owner
    content: x
    owner: nobody:nogroup
  - path: /home/app/deferred
    content: "later\n"
    owner: app
    defer: true
`, b64, gzb64))
	os.MkdirAll(filepath.Join(in.Root, "etc"), 0o755)
	os.WriteFile(filepath.Join(in.Root, "etc/passwd"), []byte("root:x:0:0::/root:/bin/sh\napp:x:1234:1234::/home/app:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(in.Root, "etc/group"), []byte("root:x:0:\napp:x:1234:\nwww:x:33:\n"), 0o644)
	os.WriteFile(filepath.Join(in.Root, "etc/existing"), []byte("first\n"), 0o644)

	st, _ := runUD(t, in, nil)
	want(t, st, map[string]string{"write-files": "failed", "write-files-deferred": "ok"})
	reason := handlerstest.Result(st, "write-files").Reason
	for _, s := range []string{"2 of 6 files failed", `"/../../escape" has a ".." element`, `no user "nobody"`} {
		if !strings.Contains(reason, s) {
			t.Errorf("write-files reason %q lacks %q", reason, s)
		}
	}
	for _, tc := range []struct {
		path, content string
		mode          os.FileMode
		uid, gid      uint32
	}{
		{"etc/plain.conf", "plain\n", 0o644, 0, 0},
		{"etc/b64.conf", "from base64\n", 0o600, 0, 0},
		{"srv/app/gz.conf", "from gzip\n", 0o640, 1234, 33},
		{"etc/existing", "first\nappended\n", 0o644, 0, 0},
		{"home/app/deferred", "later\n", 0o644, 1234, 0},
	} {
		fi, err := os.Stat(filepath.Join(in.Root, tc.path))
		if err != nil {
			t.Errorf("%s: %v", tc.path, err)
			continue
		}
		sys := fi.Sys().(*syscall.Stat_t)
		if got := in.ReadFile(t, tc.path); got != tc.content || fi.Mode().Perm() != tc.mode || sys.Uid != tc.uid || sys.Gid != tc.gid {
			t.Errorf("%s: %q mode %v owner %d:%d; want %q %v %d:%d", tc.path, got, fi.Mode().Perm(), sys.Uid, sys.Gid, tc.content, tc.mode, tc.uid, tc.gid)
		}
	}
	for _, p := range []string{"escape", "../escape", "etc/bad-owner"} {
		if _, err := os.Stat(filepath.Join(in.Root, p)); err == nil {
			t.Errorf("%s was written", p)
		}
	}
	// The failed handler is not done: the next boot retries it, without
	// appending twice.
	st, _ = runUD(t, in, nil)
	want(t, st, map[string]string{"write-files": "failed", "write-files-deferred": "skipped"})
	if got := in.ReadFile(t, "etc/existing"); got != "first\nappended\n" {
		t.Errorf("after a retry etc/existing = %q", got)
	}
}

func TestWriteFilesStayInsideTheRootThroughSymlinks(t *testing.T) {
	in := udInstance(t, "#cloud-config\nwrite_files:\n  - {path: /link/x, content: inside}\n")
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(in.Root, "link")); err != nil {
		t.Fatal(err)
	}
	st, _ := runUD(t, in, nil)
	if _, err := os.Stat(filepath.Join(outside, "x")); err == nil {
		t.Fatalf("write_files followed an absolute symlink out of the root (status %s)", handlerstest.Result(st, "write-files").Status)
	}
}

// scriptsDoc is user-data with scripts of every frequency and runcmd;
// each appends its name to $FLINT_ROOT/order.
func scriptsDoc() string {
	script := func(name string) string {
		return "#!/bin/sh\necho " + name + ` >> "$FLINT_ROOT/order"`
	}
	return mimeDoc(
		udPart{"text/cloud-config", "", "#cloud-config\nruncmd:\n  - echo runcmd >> \"$FLINT_ROOT/order\"\n  - [sh, -c, 'echo \"runcmd-$INSTANCE_ID\" >> \"$FLINT_ROOT/order\"']"},
		udPart{"text/x-shellscript", "zz-last.sh", script("zz-last")},
		udPart{"text/x-shellscript", "", script("user")},
		udPart{"text/x-shellscript-per-boot", "pb.sh", script("per-boot")},
		udPart{"text/x-shellscript-per-instance", "pi.sh", script("per-instance")},
		udPart{"text/x-shellscript-per-once", "po.sh", script("per-once")},
		udPart{"text/plain", "crlf.sh", strings.ReplaceAll(script("crlf"), "\n", "\r\n") + "\r\n"},
		udPart{"text/x-shellscript", "no-shebang", `echo no-shebang >> "$FLINT_ROOT/order"`},
		udPart{"text/x-shellscript", ".dot", script("dot")},
	)
}

func TestScriptsRunInCloudInitsOrderAtTheirFrequencies(t *testing.T) {
	setBootID(t, "boot-1")
	in := udInstance(t, scriptsDoc())
	st, _ := runUD(t, in, nil)
	want(t, st, map[string]string{"runcmd": "ok", "scripts": "ok"})
	first := []string{"per-once", "per-boot", "per-instance", "dot", "crlf", "no-shebang", "user", "runcmd", "runcmd-i-0123456789abcdef0", "zz-last"}
	if got := lines(t, in, "order"); strings.Join(got, " ") != strings.Join(first, " ") {
		t.Fatalf("first boot order:\n got %v\nwant %v", got, first)
	}
	for _, p := range []string{
		instanceDir + "/scripts/part-003", instanceDir + "/scripts/runcmd", instanceDir + "/scripts/zz-last.sh",
		"var/lib/flint/scripts/per-boot/pb.sh", "var/lib/flint/scripts/per-instance/pi.sh", "var/lib/flint/scripts/per-once/po.sh",
	} {
		if fi, err := os.Stat(filepath.Join(in.Root, p)); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: %v, want a 0700 file", p, err)
		}
	}
	if n := strings.Join(handlerstest.Result(st, "scripts").Notes, "\n"); !strings.Contains(n, "user-data/part-003: ok (exit status 0)") {
		t.Errorf("scripts notes lack the exit status:\n%s", n)
	}

	// Same boot again (flint restarted): nothing runs twice.
	os.Remove(filepath.Join(in.Root, "order"))
	st, _ = runUD(t, in, nil)
	want(t, st, map[string]string{"runcmd": "skipped", "scripts": "ok"})
	if got := lines(t, in, "order"); len(got) != 0 {
		t.Errorf("same boot re-ran %v", got)
	}
	// A reboot: only per-boot scripts.
	setBootID(t, "boot-2")
	st, _ = runUD(t, in, nil)
	want(t, st, map[string]string{"scripts": "ok"})
	if got := lines(t, in, "order"); strings.Join(got, " ") != "per-boot" {
		t.Errorf("reboot ran %v, want [per-boot]", got)
	}
	// A new instance from the same image: all but per-once.
	os.Remove(filepath.Join(in.Root, "order"))
	in.Emu.Set("meta-data/instance-id", []byte("i-0000000000000000b"))
	setBootID(t, "boot-3")
	runUD(t, in, nil)
	second := []string{"per-boot", "per-instance", "dot", "crlf", "no-shebang", "user", "runcmd", "runcmd-i-0000000000000000b", "zz-last"}
	if got := lines(t, in, "order"); strings.Join(got, " ") != strings.Join(second, " ") {
		t.Errorf("new instance order:\n got %v\nwant %v", got, second)
	}
}

func TestScriptsArePlannedNotRunWithoutLiveThenRunLive(t *testing.T) {
	in := udInstance(t, mimeDoc(
		udPart{"text/cloud-config", "", "#cloud-config\nbootcmd: [\"touch \\\"$FLINT_ROOT/bootcmd-ran\\\"\"]\nruncmd: [\"touch \\\"$FLINT_ROOT/runcmd-ran\\\"\"]\npackages: [htop]"},
		udPart{"text/x-shellscript", "s.sh", "#!/bin/sh\ntouch \"$FLINT_ROOT/script-ran\""},
		udPart{"text/cloud-boothook", "", "#cloud-boothook\n#!/bin/sh\ntouch \"$FLINT_ROOT/boothook-ran\""},
	))
	os.MkdirAll(filepath.Join(in.Root, "usr/bin"), 0o755)
	os.WriteFile(filepath.Join(in.Root, "usr/bin/apt-get"), []byte("#!/bin/sh\ntouch \"$FLINT_ROOT/apt-ran\"\n"), 0o755)
	st, _ := runUD(t, in, func(s *handlers.Setup) { s.Live = false })
	want(t, st, map[string]string{"boothooks": "planned", "bootcmd": "planned", "runcmd": "ok", "scripts": "planned", "packages": "planned"})
	for _, f := range []string{"bootcmd-ran", "runcmd-ran", "script-ran", "boothook-ran", "apt-ran"} {
		if _, err := os.Stat(filepath.Join(in.Root, f)); err == nil {
			t.Errorf("%s exists: something ran without --live", f)
		}
	}
	for _, f := range []string{instanceDir + "/scripts/s.sh", instanceDir + "/scripts/runcmd", instanceDir + "/bootcmd", instanceDir + "/boothooks/part-003"} {
		if fi, err := os.Stat(filepath.Join(in.Root, f)); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: %v: planned scripts are written 0700", f, err)
		}
	}
	if n := strings.Join(handlerstest.Result(st, "packages").Notes, "\n"); !strings.Contains(n, "/usr/bin/apt-get --quiet update") || !strings.Contains(n, "install htop") {
		t.Errorf("packages plan: %q", n)
	}
	if _, err := os.Stat(filepath.Join(in.Root, instanceDir, "sem/scripts/user-data/s.sh")); err == nil {
		t.Error("a run record exists for a script that did not run")
	}
	st, _ = runUD(t, in, func(s *handlers.Setup) { s.Skip = []string{"network", "packages"} })
	want(t, st, map[string]string{"boothooks": "ok", "bootcmd": "ok", "runcmd": "skipped", "scripts": "ok"})
	for _, f := range []string{"bootcmd-ran", "runcmd-ran", "script-ran", "boothook-ran"} {
		if _, err := os.Stat(filepath.Join(in.Root, f)); err != nil {
			t.Errorf("%s: the live run after a planned one did not run it", f)
		}
	}
}

func TestBoothooksRunEveryBootAtMostOnceEachWithTheInstanceID(t *testing.T) {
	setBootID(t, "boot-1")
	hook := "#cloud-boothook\n#!/bin/sh\necho \"$INSTANCE_ID\" >> \"$FLINT_ROOT/hooks\"\n"
	in := udInstance(t, mimeDoc(udPart{"text/cloud-boothook", "h", hook}, udPart{"text/cloud-boothook", "h", hook}))
	st, _ := runUD(t, in, nil)
	want(t, st, map[string]string{"boothooks": "ok"})
	runUD(t, in, nil) // flint restarted in the same boot
	setBootID(t, "boot-2")
	runUD(t, in, nil)
	if got := lines(t, in, "hooks"); len(got) != 4 || got[0] != "i-0123456789abcdef0" {
		t.Errorf("two boothooks over two boots ran %d times: %v", len(got), got)
	}
}

func TestFailingHungAndFloodingScriptsAreRecordedTheRunGoesOnTheLogStaysBounded(t *testing.T) {
	in := udInstance(t, mimeDoc(
		udPart{"text/x-shellscript", "10-fails", "#!/bin/sh\necho failing; exit 3"},
		udPart{"text/x-shellscript", "20-hangs", "#!/bin/sh\nsleep 60"},
		udPart{"text/x-shellscript", "30-floods", "#!/bin/sh\ndd if=/dev/zero bs=1M count=100 2>/dev/null"},
		udPart{"text/x-shellscript", "40-fine", "#!/bin/sh\ntouch \"$FLINT_ROOT/fine\""},
		udPart{"text/cloud-config", "", "#cloud-config\nfinal_message: done"},
	))
	in.Config(t, "scripts:\n  timeout: 1s\nhandlers:\n  output_log_max: 512K\n")
	st, console := runUD(t, in, nil)
	want(t, st, map[string]string{"scripts": "failed", "final-message": "ok"})
	r := handlerstest.Result(st, "scripts")
	for _, s := range []string{"2 of 4 scripts failed", "user-data/10-fails: exited with status 3", "user-data/20-hangs: timed out after 1s, killed"} {
		if !strings.Contains(r.Reason, s) {
			t.Errorf("scripts reason %q lacks %q", r.Reason, s)
		}
	}
	notes := strings.Join(r.Notes, "\n")
	for _, s := range []string{"user-data/30-floods: output over 1048576 bytes", "user-data/30-floods: ok", "user-data/40-fine: ok"} {
		if !strings.Contains(notes, s) {
			t.Errorf("scripts notes lack %q:\n%s", s, notes)
		}
	}
	if _, err := os.Stat(filepath.Join(in.Root, "fine")); err != nil {
		t.Error("the script after the failing ones did not run")
	}
	if !strings.Contains(console, "done") {
		t.Errorf("final message missing from the console: %q", console)
	}
	for _, f := range []string{handlers.OutputLogPath, handlers.OutputLogPath + ".1"} {
		fi, err := os.Stat(filepath.Join(in.Root, f))
		if err != nil || fi.Size() > 512<<10 || fi.Mode().Perm() != 0o640 {
			t.Errorf("%s: %v, %d bytes, mode %v; want rotated at 512 KiB, 0640", f, err, fi.Size(), fi.Mode().Perm())
		}
	}
	// Failures are final for the instance: a reboot reports, not re-runs.
	st, _ = runUD(t, in, nil)
	want(t, st, map[string]string{"scripts": "ok"})
	if n := strings.Join(handlerstest.Result(st, "scripts").Notes, "\n"); !strings.Contains(n, "user-data/10-fails: already ran (exited with status 3)") {
		t.Errorf("reboot notes:\n%s", n)
	}
}

func TestNothingFromUserDataLandsInAWorldReadableFile(t *testing.T) {
	const secret = "S3CR3T-7f1c2e"
	in := udInstance(t, mimeDoc(
		udPart{"text/cloud-config", "", `#cloud-config
bootcmd: ["echo bootcmd ` + secret + `"]
runcmd: ["echo runcmd ` + secret + `"]
write_files:
  - {path: /etc/app/token, content: "` + secret + `", permissions: '0600'}
  - {path: /etc/app/public, content: "not secret"}
final_message: "boot done"
unknown_key: "` + secret + `"`},
		udPart{"text/x-shellscript", "s.sh", "#!/bin/sh\necho script " + secret},
		udPart{"text/x-shellscript-per-boot", "b.sh", "#!/bin/sh\necho per-boot " + secret},
		udPart{"text/cloud-boothook", "", "#cloud-boothook\n#!/bin/sh\necho boothook " + secret},
	))
	st, _ := runUD(t, in, nil)
	want(t, st, map[string]string{"bootcmd": "ok", "write-files": "ok", "scripts": "ok", "boothooks": "ok"})
	found := 0
	filepath.WalkDir(in.Root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, _ := os.ReadFile(p)
		if !bytes.Contains(b, []byte(secret)) {
			return nil
		}
		found++
		fi, _ := d.Info()
		if fi.Mode().Perm()&0o004 != 0 {
			t.Errorf("%s holds user-data content and is world-readable (%v)", p, fi.Mode().Perm())
		}
		// Also unreachable for others: some directory above must deny them.
		return nil
	})
	if found < 6 {
		t.Errorf("only %d files hold the secret; the walk did not see the scripts, log and state", found)
	}
	if b, _ := os.ReadFile(filepath.Join(in.Root, handlers.StatusPath)); bytes.Contains(b, []byte(secret)) {
		t.Error("status.json holds user-data content")
	}
}

func TestTimezoneLinksLocaltimeToAZoneOfTheRoot(t *testing.T) {
	in := udInstance(t, "#cloud-config\ntimezone: Europe/Paris\n")
	os.MkdirAll(filepath.Join(in.Root, "usr/share/zoneinfo/Europe"), 0o755)
	os.WriteFile(filepath.Join(in.Root, "usr/share/zoneinfo/Europe/Paris"), []byte("TZif2"), 0o644)
	os.MkdirAll(filepath.Join(in.Root, "etc"), 0o755)
	st, _ := runUD(t, in, nil)
	want(t, st, map[string]string{"timezone": "ok"})
	if got := in.ReadFile(t, "etc/timezone"); got != "Europe/Paris\n" {
		t.Errorf("etc/timezone = %q", got)
	}
	if l, err := os.Readlink(filepath.Join(in.Root, "etc/localtime")); err != nil || l != "/usr/share/zoneinfo/Europe/Paris" {
		t.Errorf("etc/localtime -> %q, %v", l, err)
	}

	for _, tz := range []string{"Mars/Olympus", "../../../etc/passwd"} {
		in := udInstance(t, "#cloud-config\ntimezone: "+tz+"\n")
		st, _ := runUD(t, in, nil)
		want(t, st, map[string]string{"timezone": "failed"})
		if r := handlerstest.Result(st, "timezone").Reason; !strings.Contains(r, tz) {
			t.Errorf("timezone %s: reason %q", tz, r)
		}
		if _, err := os.Lstat(filepath.Join(in.Root, "etc/localtime")); err == nil {
			t.Errorf("timezone %s: etc/localtime written", tz)
		}
	}
}

func TestFinalMessageGoesToTheConsoleEveryBootWithSubstitutions(t *testing.T) {
	in := udInstance(t, "#cloud-config\nfinal_message: \"up $UPTIME s, v$VERSION via $DATASOURCE\"\n")
	st, console := runUD(t, in, nil)
	want(t, st, map[string]string{"final-message": "ok"})
	if !strings.Contains(console, "up ") || !strings.Contains(console, " s, vdev via DataSourceEc2 (flint)") || strings.Contains(console, "$UPTIME") {
		t.Errorf("console: %q", console)
	}
	if got := in.ReadFile(t, instanceDir+"/boot-finished"); !strings.Contains(got, " - v. dev") {
		t.Errorf("boot-finished = %q", got)
	}
	_, console = runUD(t, in, nil)
	if !strings.Contains(console, "via DataSourceEc2") {
		t.Error("the final message is not printed on the next boot")
	}

	in = udInstance(t, "#!/bin/sh\ntrue\n")
	_, console = runUD(t, in, nil)
	if !strings.Contains(console, "Cloud-init v. dev finished at ") {
		t.Errorf("default final message missing: %q", console)
	}
}

func TestPackagesWithoutAPackageManagerFailClearly(t *testing.T) {
	in := udInstance(t, "#cloud-config\npackages: [htop]\n")
	st, _ := runUD(t, in, nil)
	want(t, st, map[string]string{"packages": "failed"})
	if r := handlerstest.Result(st, "packages").Reason; !strings.Contains(r, "no package manager") || !strings.Contains(r, "apt-get, dnf and yum") {
		t.Errorf("reason %q", r)
	}
	in = udInstance(t, "#cloud-config\nhostname: x\n")
	st, _ = runUD(t, in, nil)
	want(t, st, map[string]string{"packages": "ok"})
}

func TestDryRunOfUserDataHandlersWritesAndRunsNothing(t *testing.T) {
	in := udInstance(t, scriptsDoc())
	var plan bytes.Buffer
	runUD(t, in, func(s *handlers.Setup) { s.DryRun = true; s.Stdout = &plan })
	if !strings.Contains(plan.String(), "scripts: would store pb.sh") || !strings.Contains(plan.String(), "runcmd: would write 2 runcmd commands") {
		t.Errorf("plan:\n%s", plan.String())
	}
	if _, err := os.Stat(filepath.Join(in.Root, "order")); err == nil {
		t.Error("a dry run ran a script")
	}
	if _, err := os.Stat(filepath.Join(in.Root, "var/lib/flint/scripts")); err == nil {
		t.Error("a dry run stored scripts")
	}
}

// imageRoot makes sure programs can run chrooted into the instance's
// root: handlerstest roots hold busybox (testenv.BusyboxRoot) as /bin/sh.
func imageRoot(t *testing.T, in *instance) {
	t.Helper()
	testenv.Root(t)
	if _, err := os.Stat(filepath.Join(in.Root, "bin/sh")); err != nil {
		t.Fatalf("the instance's root has no /bin/sh: %v", err)
	}
	os.MkdirAll(filepath.Join(in.Root, "usr/bin"), 0o755)
}

func TestPackagesRunTheImagesAptGetChrootedAndNonInteractive(t *testing.T) {
	in := udInstance(t, "#cloud-config\npackage_upgrade: true\npackages: [htop, [curl, '7.88'], fails-to-install, never]\n")
	imageRoot(t, in)
	// Logs each call inside the root (so it ran chrooted), fails installs
	// of the package asked to.
	os.WriteFile(filepath.Join(in.Root, "usr/bin/apt-get"), []byte(`#!/bin/sh
echo "$DEBIAN_FRONTEND $*" >> /apt.log
case "$*" in *fails-to-install*) exit 100;; esac
`), 0o755)
	st, _ := runUD(t, in, nil)
	want(t, st, map[string]string{"packages": "failed"})
	if r := handlerstest.Result(st, "packages").Reason; !strings.Contains(r, "packages: apt-get install: exited with status 100") {
		t.Errorf("reason %q", r)
	}
	log := strings.Split(strings.TrimSpace(in.ReadFile(t, "apt.log")), "\n")
	flags := "--option=Dpkg::Options::=--force-confold --option=Dpkg::options::=--force-unsafe-io --assume-yes --quiet"
	wantLog := []string{
		"noninteractive --quiet update",
		"noninteractive " + flags + " dist-upgrade",
		"noninteractive " + flags + " install htop curl=7.88 fails-to-install never",
	}
	if strings.Join(log, "\n") != strings.Join(wantLog, "\n") {
		t.Errorf("apt-get calls:\n%s\nwant:\n%s", strings.Join(log, "\n"), strings.Join(wantLog, "\n"))
	}
}

func TestFindPackageManagerPrefersAptThenDnfThenYum(t *testing.T) {
	for _, tc := range []struct {
		tools []string
		want  string
	}{
		{[]string{"yum", "dnf"}, "dnf"},
		{[]string{"yum"}, "yum"},
		{[]string{"apt-get", "yum"}, "apt-get"},
		{nil, ""},
	} {
		dir := t.TempDir()
		os.MkdirAll(filepath.Join(dir, "usr/bin"), 0o755)
		for _, tool := range tc.tools {
			os.WriteFile(filepath.Join(dir, "usr/bin", tool), []byte("#!/bin/sh\n"), 0o755)
		}
		os.WriteFile(filepath.Join(dir, "usr/bin/not-exec"), nil, 0o644)
		root, err := rootfs.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		pm, err := findPackageManager(root)
		root.Close()
		if pm.Name != tc.want || (tc.want == "") != (err != nil) {
			t.Errorf("tools %v: %q, %v; want %q", tc.tools, pm.Name, err, tc.want)
		}
	}
}
