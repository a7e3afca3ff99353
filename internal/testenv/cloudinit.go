package testenv

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// ReferencePython is Debian's interpreter, which sees the cloud-init
// package; a python3 earlier on PATH may not.
const ReferencePython = "/usr/bin/python3"

// CloudInit runs testdata/<script> with Debian's cloud-init on a JSON
// manifest of cases and decodes its JSON answer into out. The scripts
// run cloud-init's own module functions offline, writing only to
// temporary directories. Without cloud-init the test is skipped (or
// fails under FLINT_REQUIRE_ALL=1).
func CloudInit(t testing.TB, script string, cases, out any) {
	t.Helper()
	py := Tool(t, ReferencePython)
	msg, err := exec.Command(py, "-c", "import cloudinit.config.cc_ntp").CombinedOutput()
	Need(t, err == nil, fmt.Sprintf("Debian's cloud-init importable by %s (apt-get install cloud-init): %v %s", py, err, msg))
	dir := t.TempDir()
	mf := filepath.Join(dir, "cases.json")
	b, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(mf, b, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, filepath.Join("testdata", script), mf)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + dir, "LANG=C.UTF-8", "TMPDIR=" + dir}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, stderr.String())
	}
	if err := json.Unmarshal(stdout, out); err != nil {
		t.Fatalf("%s output: %v\n%s", script, err, stdout)
	}
}
