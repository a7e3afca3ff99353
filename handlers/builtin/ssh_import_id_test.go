package builtin

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/handlers/handlerstest"
	"github.com/flint-dev/flint/internal/testenv"
	"github.com/flint-dev/flint/userdata"
)

func TestSSHImportIDAsksWhatCloudInitAsks(t *testing.T) {
	type refCase struct {
		Name string `json:"name"`
		YAML string `json:"yaml"`
		// problem is the line flint reports where cloud-init drops ids
		// without a word.
		problem string
	}
	cases := []refCase{
		{Name: "the default user alone: top-level ids, made unique", YAML: "ssh_import_id: [gh:alice, lp:bob, gh:alice]\n"},
		{Name: "a top-level string is one id, never split", YAML: "ssh_import_id: gh:a,gh:b\n"},
		{Name: "a top-level number is one id", YAML: "ssh_import_id: 42\n"},
		{Name: "null imports nothing", YAML: "ssh_import_id:\n"},
		{Name: "users in order, the default user last", YAML: `ssh_import_id: [gh:admin]
users:
  - default
  - name: dev
    ssh_import_id: " gh:d1,,gh:d2 , gh:d1"
  - name: ops
    ssh_import_id: [gh:o, 7, true]
  - name: plain
`},
		{Name: "a user named like the default user, listed alone, keeps its own ids", YAML: "ssh_import_id: [gh:top]\nusers:\n  - name: admin\n    ssh_import_id: [gh:own]\n"},
		{Name: "listed with default, the default user takes the top-level ids", YAML: "ssh_import_id: [gh:top]\nusers:\n  - default\n  - name: admin\n    ssh_import_id: [gh:own]\n"},
		{Name: "a user's number is dropped", YAML: "users:\n  - name: dev\n    ssh_import_id: 42\n  - name: ops\n    ssh_import_id: [gh:o]\n",
			problem: "users.dev.ssh_import_id: is a number, not a list or a comma-separated string; nothing imported for dev"},
		{Name: "a user's null is dropped", YAML: "users:\n  - name: dev\n    ssh_import_id:\n",
			problem: "users.dev.ssh_import_id: is null"},
	}
	var ref map[string]struct {
		Calls [][]string `json:"calls"`
		Error string     `json:"error"`
	}
	testenv.CloudInit(t, "sshimport_ref.py", cases, &ref)
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			r := ref[c.Name]
			if r.Error != "" {
				t.Fatalf("cloud-init: %s", r.Error)
			}
			ud, err := userdata.Parse(context.Background(), []byte("#cloud-config\n"+c.YAML), userdata.Options{NoInclude: true})
			if err != nil {
				t.Fatal(err)
			}
			_, usersSet := ud.Config["users"]
			specs, err := decideUsers(effectiveDefaultUser(&defaultUserConfig{Name: "admin"}, ud.Config["user"]), ud.CloudConfig, usersSet)
			if err != nil {
				t.Fatal(err)
			}
			runs, problems := sshImportPlan(ud.Config, ud.CloudConfig, specs)
			var got [][]string
			for _, run := range runs {
				got = append(got, sshImportArgv(run))
			}
			if (len(got) > 0 || len(r.Calls) > 0) && !reflect.DeepEqual(got, r.Calls) {
				t.Errorf("commands:\nflint      %q\ncloud-init %q", got, r.Calls)
			}
			if c.problem == "" && len(problems) > 0 || c.problem != "" && (len(problems) != 1 || !strings.Contains(problems[0], c.problem)) {
				t.Errorf("problems %q, want %q (cloud-init says nothing)", problems, c.problem)
			}
		})
	}
}

// importStandIn stands in for the image's ssh-import-id, which fetches
// keys from Launchpad or GitHub and cannot run offline: it records the
// user it runs as, its HOME, the https_proxy it was given and its ids,
// and appends one key per id to the user's authorized_keys, as the real
// tool does.
const importStandIn = `#!/bin/sh
set -e
echo "$(id -un) $HOME proxy=$https_proxy $*" >> /tmp/ssh-import-id.log
mkdir -p "$HOME/.ssh"
for id in "$@"; do
	echo "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFZFhjViN6SsZghsBPV1UEuFzb6188efCjJ52kngxAOy $id" >> "$HOME/.ssh/authorized_keys"
done
`

func writeExec(t testing.TB, root, rel, content string) {
	t.Helper()
	p := filepath.Join(root, rel)
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
}

// sudoImage lets the host's own sudo run chrooted in root: sudo, its
// sudoers plugin and the PAM modules of a stack that lets root through
// (pam_rootok, pam_permit), each with the libraries ldd lists, at the
// host's paths. The root and its /tmp become traversable and writable
// for the users the test makes.
func sudoImage(t testing.TB, root string) {
	t.Helper()
	files := []string{testenv.Tool(t, "sudo"), "/usr/libexec/sudo/sudoers.so"}
	for _, m := range []string{"pam_rootok.so", "pam_permit.so"} {
		var found []string
		for _, pat := range []string{"/lib/*/security/", "/usr/lib/*/security/", "/lib/security/", "/usr/lib/security/"} {
			l, _ := filepath.Glob(pat + m)
			found = append(found, l...)
		}
		testenv.Need(t, len(found) > 0, "needs PAM's "+m)
		files = append(files, found...)
	}
	ldd := testenv.Tool(t, "ldd")
	var all []string
	for _, f := range files {
		_, err := os.Stat(f)
		testenv.Need(t, err == nil, "needs "+f+" (Debian's sudo)")
		all = append(all, f)
		out, err := exec.Command(ldd, f).Output()
		if err != nil {
			t.Fatalf("ldd %s: %v", f, err)
		}
		for _, tok := range strings.Fields(string(out)) {
			if strings.HasPrefix(tok, "/") {
				all = append(all, tok)
			}
		}
	}
	for _, f := range all {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(root, f)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Chmod(filepath.Join(root, "usr/bin/sudo"), 0o755|os.ModeSetuid))
	must(os.MkdirAll(filepath.Join(root, "etc/pam.d"), 0o755))
	must(os.WriteFile(filepath.Join(root, "etc/pam.d/sudo"), []byte("auth sufficient pam_rootok.so\naccount required pam_permit.so\nsession required pam_permit.so\n"), 0o644))
	// sudo in the root neither logs to the host's syslog nor asks DNS
	// for the host's name.
	sudoers, err := os.ReadFile(filepath.Join(root, "etc/sudoers"))
	must(err)
	must(os.WriteFile(filepath.Join(root, "etc/sudoers"), append([]byte("Defaults !syslog\n"), sudoers...), 0o440))
	must(os.Chmod(filepath.Join(root, "etc/sudoers"), 0o440))
	host, _ := os.Hostname()
	must(os.WriteFile(filepath.Join(root, "etc/hosts"), []byte("127.0.0.1 localhost "+host+"\n"), 0o644))
	must(os.WriteFile(filepath.Join(root, "etc/nsswitch.conf"), []byte("passwd: files\ngroup: files\nhosts: files\n"), 0o644))
	must(os.Chmod(root, 0o755))
	must(os.Chmod(filepath.Join(root, "tmp"), 0o777|os.ModeSticky))
	// The stand-in's log, which every user appends to.
	must(os.WriteFile(filepath.Join(root, "tmp/ssh-import-id.log"), nil, 0o666))
	must(os.Chmod(filepath.Join(root, "tmp/ssh-import-id.log"), 0o666))
}

func TestSSHImportIDRunsTheImageToolAsEachUserAfterTheUsersHandler(t *testing.T) {
	needAccountTools(t)
	in := acctInstance(t, `#cloud-config
ssh_import_id: [gh:admin-a, lp:admin-b]
users:
  - default
  - name: dev
    ssh_import_id: gh:dev1,lp:dev2,gh:dev1
  - name: ops
    ssh_import_id: [gh:ops]
  - name: plain
`)
	sudoImage(t, in.Root)
	writeExec(t, in.Root, "usr/bin/ssh-import-id", importStandIn)
	t.Setenv("https_proxy", "http://127.0.0.1:3128")
	st, out := acctRun(t, in, func(s *handlers.Setup) { s.Only = []string{"users", "ssh-keys", "ssh-import-id", "final-message"} })
	acctWant(t, st, out, map[string]string{"users": "ok", "ssh-keys": "ok", "ssh-import-id": "ok"})
	names := make([]string, len(st.Handlers))
	for i, h := range st.Handlers {
		names[i] = h.Name
	}
	if u, s := slices.Index(names, "users"), slices.Index(names, "ssh-import-id"); u > s || !handlerstest.Result(st, "ssh-import-id").Started.After(handlerstest.Result(st, "users").Started) {
		t.Errorf("ssh-import-id runs at %d, users at %d: want it after the users exist", s, u)
	}
	want := "dev /home/dev proxy=http://127.0.0.1:3128 gh:dev1 lp:dev2\n" +
		"ops /home/ops proxy=http://127.0.0.1:3128 gh:ops\n" +
		"admin /home/admin proxy=http://127.0.0.1:3128 gh:admin-a lp:admin-b\n"
	if got := in.ReadFile(t, "tmp/ssh-import-id.log"); got != want {
		t.Fatalf("ssh-import-id ran as:\n%s\nwant (cloud-init's order: the users, then the default user)\n%s\n%s", got, want, out)
	}
	keys := in.ReadFile(t, "home/admin/.ssh/authorized_keys")
	if !strings.Contains(keys, "alice@laptop") || !strings.Contains(keys, " gh:admin-a\n") || !strings.Contains(keys, " lp:admin-b\n") {
		t.Errorf("admin's keys: %q, want the instance's and the imported ones", keys)
	}
	uid := acctField(t, in, "etc/passwd", "dev", 2)
	if o, _ := acctOwner(t, in, "home/dev/.ssh/authorized_keys"); strings.TrimSpace(uid) != strconv.Itoa(o) {
		t.Errorf("dev's keys are owned by %d, want dev (%s)", o, uid)
	}
	for _, h := range st.Handlers {
		for _, n := range h.Notes {
			if strings.Contains(n, "not supported") {
				t.Errorf("%s: %q", h.Name, n)
			}
		}
	}
	if r := handlerstest.Result(st, "ssh-import-id"); !slices.Contains(r.Notes, "imported gh:dev1, lp:dev2 for dev") {
		t.Errorf("notes %q", r.Notes)
	}
}

// importInstance is an instance with the default user admin and
// user-data asking for ids.
func importInstance(t testing.TB, ud string) *instance {
	t.Helper()
	in := planInstance(t, ud, nil)
	in.Config(t, acctConfig)
	return in
}

const importUserData = "#cloud-config\nssh_import_id: [gh:admin-a]\nusers:\n  - default\n  - {name: dev, ssh_import_id: [gh:dev1, lp:dev2]}\n"

func TestSSHImportIDWithoutTheToolIsANoteAndAWarning(t *testing.T) {
	in := importInstance(t, importUserData)
	st, out := in.Run(t, func(s *handlers.Setup) { s.Only = []string{"ssh-import-id", "final-message"} })
	r := handlerstest.Result(st, "ssh-import-id")
	const msg = "ssh_import_id: ssh-import-id is not installed in the image; no ids imported"
	if r.Status != handlers.ResultOK || !slices.Contains(r.Notes, msg) {
		t.Fatalf("ssh-import-id %s (%s) %q\n%s", r.Status, r.Reason, r.Notes, out)
	}
	if st.State != "degraded" || !slices.Contains(st.Warnings, msg) {
		t.Errorf("run %s, warnings %q: want degraded with the warning", st.State, st.Warnings)
	}
}

func TestSSHImportIDIsPlannedWithoutLive(t *testing.T) {
	in := importInstance(t, importUserData)
	writeExec(t, in.Root, "usr/bin/ssh-import-id", importStandIn)
	st, out := in.Run(t, notLiveOnly("ssh-import-id"))
	r := handlerstest.Result(st, "ssh-import-id")
	if r.Status != handlers.ResultPlanned {
		t.Fatalf("ssh-import-id %s (%s)\n%s", r.Status, r.Reason, out)
	}
	for _, want := range []string{
		"would run sudo --preserve-env=https_proxy -Hu dev ssh-import-id gh:dev1 lp:dev2",
		"would run sudo --preserve-env=https_proxy -Hu admin ssh-import-id gh:admin-a",
	} {
		if !slices.Contains(r.Notes, want) {
			t.Errorf("no note %q in %q", want, r.Notes)
		}
	}
	if _, err := os.Stat(filepath.Join(in.Root, "tmp/ssh-import-id.log")); err == nil {
		t.Error("ssh-import-id ran without --live")
	}
}

func TestSSHImportIDBadIDsAreOneLine(t *testing.T) {
	in := importInstance(t, "#cloud-config\nusers:\n  - default\n  - {name: dev, ssh_import_id: 42}\n  - {name: ops, ssh_import_id: [--output=/etc/passwd]}\n")
	writeExec(t, in.Root, "usr/bin/ssh-import-id", importStandIn)
	st, out := in.Run(t, notLiveOnly("ssh-import-id"))
	wantOneFailedLine(t, st, out, "ssh-import-id", "users.dev.ssh_import_id: is a number, not a list or a comma-separated string; nothing imported for dev; "+
		"users.ops.ssh_import_id: the id --output=/etc/passwd starts with -, which ssh-import-id reads as an option; nothing imported for ops")
}

// BenchmarkSSHImportIDHandler measures the ssh-import-id handler alone
// (its duration in the run's status) on a first boot, a fresh root each
// time: two users, each through the host's real sudo chrooted in the
// root, running the stand-in tool. It reports the median.
//
//	go test -run '^$' -bench SSHImportIDHandler ./handlers/builtin
func BenchmarkSSHImportIDHandler(b *testing.B) {
	testenv.Root(b)
	benchHandler(b, "ssh-import-id", func() *instance {
		in := importInstance(b, importUserData)
		files := map[string]string{
			"etc/passwd":  "root:x:0:0:root:/root:/bin/sh\nadmin:x:1000:1000::/home/admin:/bin/sh\ndev:x:1001:1001::/home/dev:/bin/sh\n",
			"etc/group":   "root:x:0:\nadmin:x:1000:\ndev:x:1001:\n",
			"etc/sudoers": "root ALL=(ALL:ALL) ALL\n",
		}
		for rel, content := range files {
			if err := os.WriteFile(filepath.Join(in.Root, rel), []byte(content), 0o644); err != nil {
				b.Fatal(err)
			}
		}
		for i, u := range []string{"admin", "dev"} {
			home := filepath.Join(in.Root, "home", u)
			os.MkdirAll(home, 0o755)
			os.Chown(home, 1000+i, 1000+i)
		}
		sudoImage(b, in.Root)
		writeExec(b, in.Root, "usr/bin/ssh-import-id", importStandIn)
		return in
	}, func(in *instance) { in.ReadFile(b, "home/dev/.ssh/authorized_keys") }, func(s *handlers.Setup) {
		s.Only = []string{"ssh-import-id"}
	})
}
