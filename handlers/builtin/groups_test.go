package builtin

import (
	"slices"
	"strings"
	"testing"

	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/handlers/handlerstest"
)

func onlyGroups(s *handlers.Setup) { s.Only = []string{"groups", "users", "final-message"} }

func TestGroupsAreMadeBeforeTheUsersWithTheirExistingMembers(t *testing.T) {
	needAccountTools(t)
	in := acctInstance(t, "#cloud-config\ngroups:\n  - admingroup: [root, ghost]\n  - cloud-users\n  - adm: root\n")
	st, out := acctRun(t, in, onlyGroups)
	acctWant(t, st, out, map[string]string{"groups": "ok", "users": "ok"})
	if got := acctField(t, in, "etc/group", "admingroup", 3); got != "root" {
		t.Errorf("admingroup members %q, want root (ghost is no user)", got)
	}
	acctField(t, in, "etc/group", "cloud-users", 0)
	if got := strings.Split(acctField(t, in, "etc/group", "adm", 3), ","); !slices.Contains(got, "root") {
		t.Errorf("adm members %q, want root added to the existing group", got)
	}
	notes := strings.Join(handlerstest.Result(st, "groups").Notes, "\n")
	if !strings.Contains(notes, `member "ghost" is not a user; skipped`) {
		t.Errorf("no note about the member that is no user:\n%s", notes)
	}
	if strings.Contains(in.ReadFile(t, "etc/group"), "adm:x:4:\n") {
		t.Errorf("adm made again or left without root")
	}
}

func TestGroupsBadInputIsOneLineAndTheChainGoesOn(t *testing.T) {
	needAccountTools(t)
	for _, tc := range []struct{ name, ud, reason, made string }{
		{"a name no tool accepts", "#cloud-config\ngroups: [\"bad name!\", fine]\n", `group "bad name!" is not a valid group name; not made`, "fine"},
		{"a value that is no list", "#cloud-config\ngroups: 42\n", "groups: is a number; want a list, a mapping or a string", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := acctInstance(t, tc.ud)
			st, out := acctRun(t, in, onlyGroups)
			r := handlerstest.Result(st, "groups")
			if r.Status != handlers.ResultFailed || !strings.Contains(r.Reason, tc.reason) || strings.Contains(r.Reason, "\n") {
				t.Fatalf("groups %s: %q, want one failed line with %q\n%s", r.Status, r.Reason, tc.reason, out)
			}
			if st.State != "degraded" {
				t.Errorf("run is %s, want degraded", st.State)
			}
			acctWant(t, st, out, map[string]string{"users": "ok", "final-message": "ok"})
			if tc.made != "" {
				acctField(t, in, "etc/group", tc.made, 0)
			}
		})
	}
}
