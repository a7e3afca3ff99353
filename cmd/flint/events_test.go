package main

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flint-dev/flint/events"
	"github.com/flint-dev/flint/internal/testenv"
)

// ipv6OnlyIMDS makes a namespace whose only address besides loopback's is
// fd00:ec2::254 (IPv4 has no route to 169.254.169.254 there, so nothing
// is ever sent to it), runs `flint emulate` on [fd00:ec2::254]:80 inside
// it, and returns the namespace and the emulator's request log.
func ipv6OnlyIMDS(t *testing.T, flint string, extra ...string) (ns string, requests func() string) {
	t.Helper()
	ns = testenv.Netns(t)
	if out, err := exec.Command("ip", "-n", ns, "addr", "add", "fd00:ec2::254/128", "dev", "lo", "nodad").CombinedOutput(); err != nil {
		t.Fatalf("ip -n %s addr add fd00:ec2::254/128: %v: %s", ns, err, out)
	}
	logPath := filepath.Join(t.TempDir(), "emulate.log")
	logs, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	emu := exec.Command("ip", append([]string{"netns", "exec", ns, flint, "emulate", "--listen", "[fd00:ec2::254]:80"}, extra...)...)
	emu.Stdout, emu.Stderr = logs, logs
	if err := emu.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Process.Kill(); emu.Wait() })
	requests = func() string { b, _ := os.ReadFile(logPath); return string(b) }
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var up bool
		testenv.Do(t, ns, func() {
			if c, err := net.DialTimeout("tcp", "[fd00:ec2::254]:80", time.Second); err == nil {
				c.Close()
				up = true
			}
		})
		if up {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("emulator in %s never accepted connections: %s", ns, requests())
		}
	}
	return ns, requests
}

// inNetns runs flint inside ns with no metadata endpoint configured.
func inNetns(t *testing.T, ns, flint string, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, flint}, args...)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return out.String(), errOut.String(), err
}

func TestWithNoEndpointConfiguredQueryRunAndEventsFindIMDSOnAnIPv6OnlyInstance(t *testing.T) {
	flint := testenv.FlintBinary(t)
	ns, requests := ipv6OnlyIMDS(t, flint, "--event", "spot-stop")

	out, errOut, err := inNetns(t, ns, flint, "query", "-i")
	if err != nil || out != "instance-id: i-0123456789abcdef0\n" {
		t.Fatalf("flint query -i: %v: %q %s", err, out, errOut)
	}

	root := t.TempDir()
	// A Debian image: its default user takes the keys, and the run is done.
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/os-release"), []byte("ID=debian\n"), 0o644)
	out, errOut, err = inNetns(t, ns, flint, "run", "--root", root, "--dry-run")
	if err != nil || !strings.Contains(errOut+out, "instance_id=i-0123456789abcdef0") {
		t.Fatalf("flint run --dry-run: %v\n%s%s", err, out, errOut)
	}
	if !strings.Contains(requests(), "GET /latest/user-data 200") {
		t.Errorf("the run did not read user-data from the IPv6 endpoint:\n%s", requests())
	}

	out, errOut, err = inNetns(t, ns, flint, "events", "--json")
	var pending []events.Notice
	if err != nil || json.Unmarshal([]byte(out), &pending) != nil || len(pending) != 1 || pending[0].Action != "stop" {
		t.Fatalf("flint events --json: %v: %s %s", err, out, errOut)
	}
}
