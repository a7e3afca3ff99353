package builtin

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/handlers/handlerstest"
	"github.com/flint-dev/flint/sshkeys"
	"github.com/flint-dev/flint/userdata"
)

func TestSSHRedirectUserGetsTheInstanceKeysBehindTheForcedCommand(t *testing.T) {
	needAccountTools(t)
	in := acctInstance(t, "#cloud-config\nusers:\n  - default\n  - name: legacy\n    ssh_redirect_user: true\n"+
		"  - name: both\n    ssh_redirect_user: default\n    ssh_authorized_keys: [\"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO+kE/+KKx4mb6XO165mscrkRWw77I8p+O3ETxZJtQag both@laptop\"]\n")
	st, out := acctRun(t, in, func(s *handlers.Setup) { s.Only = append(s.Only, "final-message") })
	// The entry that cannot be applied fails ssh-keys with one line; the
	// other users have their keys and the chain went on.
	r := handlerstest.Result(st, "ssh-keys")
	want := "users.both.ssh_redirect_user: cannot be given with ssh_import_id or ssh_authorized_keys; no keys installed for both"
	if r.Status != handlers.ResultFailed || !strings.Contains(r.Reason, want) || strings.Contains(r.Reason, "\n") {
		t.Fatalf("ssh-keys %s: %q, want one failed line with %q\n%s", r.Status, r.Reason, want, out)
	}
	acctWant(t, st, out, map[string]string{"users": "ok", "final-message": "ok"})
	if st.State != "degraded" {
		t.Errorf("run is %s, want degraded", st.State)
	}
	keys := in.ReadFile(t, "home/legacy/.ssh/authorized_keys")
	md := in.ReadFile(t, "home/admin/.ssh/authorized_keys")
	ks, _ := sshkeys.Parse("admin", md)
	if len(ks) == 0 {
		t.Fatalf("the default user has no keys:\n%s", md)
	}
	for _, k := range ks {
		if !strings.Contains(keys, k.Type) || !strings.Contains(keys, strings.Fields(k.Line)[1]) {
			t.Errorf("legacy lacks instance key %s:\n%s", k.Fingerprint(), keys)
		}
	}
	wantOpts := `no-port-forwarding,no-agent-forwarding,no-X11-forwarding,command="echo 'Please login as the user \"admin\" rather than the user \"legacy\".';echo;sleep 10;exit 142" `
	for _, l := range strings.Split(strings.TrimSpace(keys), "\n") {
		if !strings.HasPrefix(l, wantOpts) {
			t.Errorf("legacy's key line without cloud-init's forced command: %q", l)
		}
	}
	if _, err := os.Stat(filepath.Join(in.Root, "home/both/.ssh/authorized_keys")); err == nil {
		t.Errorf("both got keys despite a redirect it cannot have")
	}
}

func TestTheKeysPlanNotesARedirectWithoutADefaultUser(t *testing.T) {
	md, _ := sshkeys.Parse("metadata", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO+kE/+KKx4mb6XO165mscrkRWw77I8p+O3ETxZJtQag alice@laptop")
	raw := map[string]map[string]any{"legacy": {"name": "legacy", "ssh_redirect_user": true}}
	p, err := planKeys(sshKeysConfig{}, &userdata.CloudConfig{}, []userSpec{{Name: "legacy"}}, md, nil, raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.grants) != 0 || len(p.redirectNotes) != 1 || !strings.Contains(p.redirectNotes[0], "no default user") {
		t.Errorf("grants %+v, notes %q; want none and a note about the missing default user", p.grants, p.redirectNotes)
	}
}
