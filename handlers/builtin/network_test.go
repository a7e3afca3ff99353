package builtin

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/imds/imdstest"
	"github.com/flint-dev/flint/internal/testenv"
)

// TestNetworkHandlerInANamespace runs the whole binary inside a network
// namespace holding veth links with the fixture's MACs and the emulator on
// that namespace's loopback: plan, dry run, live apply, and a converged
// second run.
func TestNetworkHandlerInANamespace(t *testing.T) {
	ns := testenv.Netns(t)
	flintBin := testenv.FlintBinary(t)
	ipcmd := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("ip", append([]string{"-n", ns}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
		return string(out)
	}
	ipcmd("link", "add", "eth0", "address", "0e:49:61:0f:c3:11", "type", "veth", "peer", "name", "peer0")
	ipcmd("link", "add", "eth1", "address", "0e:7c:1a:44:aa:02", "type", "veth", "peer", "name", "peer1")
	for _, l := range []string{"eth0", "eth1", "peer0", "peer1"} {
		ipcmd("link", "set", l, "up")
	}
	// The DHCP client's part on the primary, which flint leaves alone.
	ipcmd("addr", "add", "10.0.1.23/24", "dev", "eth0")

	emu := exec.Command("ip", "netns", "exec", ns, flintBin, "emulate", "--listen", "127.0.0.1:8080", "--quiet")
	if err := emu.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Process.Kill(); emu.Wait() })
	endpoint := "http://127.0.0.1:8080"
	inNS := func(args ...string) (string, error) {
		out, err := exec.Command("ip", append([]string{"netns", "exec", ns, flintBin}, args...)...).CombinedOutput()
		return string(out), err
	}
	for i := 0; ; i++ {
		if _, err := inNS("get", "--endpoint", endpoint, "meta-data/instance-id"); err == nil {
			break
		}
		if i > 100 {
			t.Fatal("emulator did not come up in the namespace")
		}
		time.Sleep(50 * time.Millisecond)
	}
	root := testenv.BusyboxRoot(t, t.TempDir()) // --live wants a root programs can run in
	out, err := inNS("run", "--root", root, "--only", "network", "--endpoint", endpoint, "--dry-run")
	if err != nil || !strings.Contains(out, "network: would add address 10.0.2.41/32") {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	out, err = inNS("run", "--root", root, "--only", "network", "--endpoint", endpoint)
	if err != nil {
		t.Fatalf("planned run: %v\n%s", err, out)
	}
	if addrs := ipcmd("-4", "addr", "show", "dev", "eth1"); strings.Contains(addrs, "10.0.2.40") {
		t.Fatalf("without --live the handler changed links:\n%s", addrs)
	}
	out, err = inNS("status", "--root", root)
	if err != nil || !strings.Contains(out, "network: planned") {
		t.Fatalf("status after a planned run: %v\n%s", err, out)
	}
	out, err = inNS("run", "--root", root, "--live", "--only", "network", "--endpoint", endpoint)
	if err != nil {
		t.Fatalf("live run: %v\n%s", err, out)
	}
	var rules []struct {
		Priority int    `json:"priority"`
		Src      string `json:"src"`
		Table    string `json:"table"`
	}
	if err := json.Unmarshal([]byte(ipcmd("-j", "rule", "show")), &rules); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"10.0.2.40": false, "10.0.2.41": false, "10.0.2.42": false}
	for _, r := range rules {
		if _, ok := want[r.Src]; ok && r.Priority == 10001 && r.Table == "10001" {
			want[r.Src] = true
		}
	}
	for src, seen := range want {
		if !seen {
			t.Errorf("no rule 'from %s lookup 10001 pref 10001':\n%s", src, ipcmd("rule"))
		}
	}
	if routes := ipcmd("route", "show", "table", "10001"); !strings.Contains(routes, "default via 10.0.2.1 dev eth1") {
		t.Errorf("table 10001:\n%s", routes)
	}
	if addrs := ipcmd("-4", "addr", "show", "dev", "eth0"); strings.Count(addrs, "inet ") != 1 {
		t.Errorf("the primary's DHCP address was touched:\n%s", addrs)
	}
	out, err = inNS("run", "--root", root, "--live", "--only", "network", "--endpoint", endpoint)
	if err != nil {
		t.Fatalf("second live run: %v\n%s", err, out)
	}
	res, _ := exec.Command("ip", "netns", "exec", ns, flintBin, "status", "--json", "--root", root).Output()
	if !strings.Contains(string(res), `"no change"`) {
		t.Errorf("second run was not a no-op:\n%s", res)
	}
}

// The network and ssh-keys handlers read their metadata from the chain's
// start, behind the handlers before them: with the host name's read held
// back half a second, the ENIs' keys and the public keys were read while
// the hostname handler waited, and each only once for the two readers
// (the early read and the handler's own).
func TestNetworkAndSSHKeysMetadataIsReadWhileEarlierHandlersRun(t *testing.T) {
	in := newInstance(t)
	in.Emu.AddFault(imdstest.Fault{Path: "meta-data/local-hostname", Latency: 500 * time.Millisecond})
	var out bytes.Buffer
	s := in.Setup(&out, &out)
	s.Only = []string{"hostname", "network", "ssh-keys"}
	if _, err := handlers.Execute(context.Background(), s); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	hostname, count := -1, map[string]int{}
	early := map[string]bool{}
	for i, r := range in.Emu.Log() {
		p := strings.TrimPrefix(r.Path, "/latest/")
		count[p]++
		if p == "meta-data/local-hostname" {
			hostname = i
		}
		if hostname < 0 && (strings.HasPrefix(p, "meta-data/network/interfaces/macs/") || strings.HasPrefix(p, "meta-data/public-keys")) {
			early[p] = true
		}
	}
	if hostname < 0 {
		t.Fatalf("the host name was never read: %v", in.Emu.Log())
	}
	for _, want := range []string{"meta-data/network/interfaces/macs/", "meta-data/network/interfaces/macs/0e:49:61:0f:c3:11/local-ipv4s", "meta-data/public-keys/"} {
		if !early[want] {
			t.Errorf("%s was not read before the hostname handler's read ended", want)
		}
	}
	for p, n := range count {
		if n > 1 && p != "api/token" {
			t.Errorf("%s was read %d times", p, n)
		}
	}
}

// The user-data is read beside the instance id, not after it: with the
// instance id's answer held back, the user-data's came first, and it was
// read once for the run.
func TestUserDataIsReadBesideTheInstanceID(t *testing.T) {
	in := newInstance(t)
	in.Emu.AddFault(imdstest.Fault{Path: "meta-data/instance-id", Latency: 300 * time.Millisecond})
	var out bytes.Buffer
	if _, err := handlers.Execute(context.Background(), in.Setup(&out, &out)); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	var order []string
	n := 0
	for _, r := range in.Emu.Log() {
		switch p := strings.TrimPrefix(r.Path, "/latest/"); p {
		case "user-data":
			n++
			fallthrough
		case "meta-data/instance-id":
			order = append(order, p)
		}
	}
	if len(order) < 2 || order[0] != "user-data" || n != 1 {
		t.Errorf("answers in order %v, want the user-data's first and once", order)
	}
}
