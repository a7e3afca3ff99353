package builtin

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/handlers/handlerstest"
	"github.com/flint-dev/flint/imds/imdstest"
)

// The reachability invariant: whatever the metadata service does, if the
// instance id and a public key can be read, the boot ends with the
// default user, every readable key and host keys in place. What could not
// be done is not marked done, and the next boot that can do it does it,
// once.

const reachUserData = `#cloud-config
users:
  - default
  - name: carol
    shell: /bin/sh
write_files:
  - path: /etc/reach-marker
    content: written once
`

// reachConfig bounds every wait for IMDS so a fault that never heals
// costs the test seconds, not the 5 minutes of a real boot.
const reachConfig = acctConfig + "imds:\n  deadline: 2s\n"

// reachRun runs the chain but the network handler, in-process.
func reachRun(t *testing.T, in *instance) (*handlers.Status, string) {
	t.Helper()
	return in.Run(t, func(s *handlers.Setup) {
		s.Only = []string{"write-files", "hostname", "users", "ssh-keys", "host-keys", "runcmd"}
	})
}

func reachInstance(t *testing.T) *instance {
	t.Helper()
	needAccountTools(t)
	in := acctInstance(t, reachUserData)
	in.Config(t, reachConfig)
	return in
}

// wantReachable checks the default user, its keys and the host keys.
func wantReachable(t *testing.T, in *instance, keys ...string) {
	t.Helper()
	if acctField(t, in, "etc/passwd", "admin", 0) != "admin" {
		t.Fatal("no default user")
	}
	// With no key readable there is nothing to install.
	ak := ""
	if len(keys) > 0 {
		ak = in.ReadFile(t, "home/admin/.ssh/authorized_keys")
	}
	for _, k := range keys {
		if !strings.Contains(ak, k) {
			t.Errorf("key %q not installed for admin: %q", k, ak)
		}
	}
	for _, typ := range []string{"rsa", "ecdsa", "ed25519"} {
		if _, err := os.Stat(filepath.Join(in.Root, "etc/ssh/ssh_host_"+typ+"_key")); err != nil {
			t.Errorf("host key: %v", err)
		}
	}
}

func TestFaultUnreadableUserDataLeavesTheInstanceReachableAndTheNextBootFinishes(t *testing.T) {
	for _, f := range []imdstest.Fault{
		{Path: "user-data", Status: 500},
		{Path: "user-data", Status: 503, RetryAfter: "1"},
		{Path: "user-data", Reset: true},
		{Path: "user-data", Status: 429},
	} {
		t.Run(imdstestFaultName(f), func(t *testing.T) {
			in := reachInstance(t)
			in.Emu.AddFault(f)
			st, out := reachRun(t, in)
			if st.State != handlers.StateDegraded {
				t.Fatalf("state %s, want degraded\n%s", st.State, out)
			}
			wantReachable(t, in, "alice@laptop", "deploy-key")
			for name, want := range map[string]string{
				"users": handlers.ResultPartial, "ssh-keys": handlers.ResultPartial,
				"write-files": handlers.ResultNotRun, "runcmd": handlers.ResultNotRun,
			} {
				if r := handlerstest.Result(st, name); r.Status != want {
					t.Errorf("%s: %s (%s), want %s", name, r.Status, r.Reason, want)
				}
			}
			// The failure is reported once, with what was kept, not once a
			// handler.
			if len(st.Warnings) != 1 || !strings.Contains(st.Warnings[0], "user-data could not be read") {
				t.Errorf("warnings %q, want the user-data failure once", st.Warnings)
			}
			for _, r := range st.Handlers {
				if strings.Contains(r.Reason, "GET") || strings.Contains(r.Reason, "reset") {
					t.Errorf("%s repeats the fault: %s", r.Name, r.Reason)
				}
			}
			if _, err := os.Stat(filepath.Join(in.Root, "etc/reach-marker")); err == nil {
				t.Fatal("write_files ran without user-data")
			}
			if strings.Contains(in.ReadFile(t, "etc/passwd"), "carol:") {
				t.Fatal("user-data's user made without user-data")
			}

			// The next boot can read user-data: it does the rest, once.
			in.Emu.ClearFaults()
			st, out = reachRun(t, in)
			if st.State != handlers.StateDone || len(st.Warnings) != 0 {
				t.Fatalf("second boot: %s %q\n%s", st.State, st.Warnings, out)
			}
			for _, name := range []string{"users", "ssh-keys", "write-files", "host-keys"} {
				if r := handlerstest.Result(st, name); r.Status != handlers.ResultOK && !(name == "host-keys" && r.Status == handlers.ResultSkipped) {
					t.Errorf("second boot %s: %s (%s)", name, r.Status, r.Reason)
				}
			}
			if acctField(t, in, "etc/passwd", "carol", 0) != "carol" || in.ReadFile(t, "etc/reach-marker") != "written once" {
				t.Fatal("the second boot did not do what user-data asks")
			}
			if n := strings.Count("\n"+in.ReadFile(t, "etc/passwd"), "\nadmin:"); n != 1 {
				t.Errorf("admin appears %d times", n)
			}
			// A third boot has nothing left to do.
			st, _ = reachRun(t, in)
			for _, name := range []string{"users", "ssh-keys", "write-files"} {
				if r := handlerstest.Result(st, name); r.Status != handlers.ResultSkipped {
					t.Errorf("third boot %s: %s", name, r.Status)
				}
			}
		})
	}
}

func TestFaultOneUnreadableKeyDropsThatKeyNotTheSet(t *testing.T) {
	for _, f := range []imdstest.Fault{
		{Path: "meta-data/public-keys/1/openssh-key", Status: 500},
		{Path: "meta-data/public-keys/1/openssh-key", Reset: true},
	} {
		t.Run(imdstestFaultName(f), func(t *testing.T) {
			in := reachInstance(t)
			in.Emu.AddFault(f)
			st, out := reachRun(t, in)
			wantReachable(t, in, "alice@laptop")
			if strings.Contains(in.ReadFile(t, "home/admin/.ssh/authorized_keys"), "deploy-key") {
				t.Fatal("the unreadable key was installed")
			}
			if r := handlerstest.Result(st, "ssh-keys"); r.Status != handlers.ResultPartial || !strings.Contains(r.Reason, "1 keys that were read are installed") {
				t.Fatalf("ssh-keys: %s (%s)\n%s", r.Status, r.Reason, out)
			}
			if st.State != handlers.StateDegraded {
				t.Errorf("state %s", st.State)
			}
			in.Emu.ClearFaults()
			st, _ = reachRun(t, in)
			if r := handlerstest.Result(st, "ssh-keys"); r.Status != handlers.ResultOK {
				t.Fatalf("second boot ssh-keys: %s (%s)", r.Status, r.Reason)
			}
			wantReachable(t, in, "alice@laptop", "deploy-key")
			if n := strings.Count(in.ReadFile(t, "home/admin/.ssh/authorized_keys"), "alice@laptop"); n != 1 {
				t.Errorf("alice's key %d times", n)
			}
		})
	}
}

func imdstestFaultName(f imdstest.Fault) string {
	switch {
	case f.Reset:
		return "reset"
	case f.RetryAfter != "":
		return "status-" + strconv.Itoa(f.Status) + "-retry-after"
	}
	return "status-" + strconv.Itoa(f.Status)
}
