package builtin

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/handlers/handlerstest"
	"github.com/flint-dev/flint/imds/imdstest"
	"github.com/flint-dev/flint/internal/accounts"
	"github.com/flint-dev/flint/internal/testenv"
	"github.com/flint-dev/flint/userdata"
)

// acctConfig is an image's flint.yaml with a default user.
const acctConfig = `users:
  default_user:
    name: admin
    gecos: Image Admin
    groups: [adm, sudo]
    sudo: "ALL=(ALL) NOPASSWD:ALL"
    shell: /bin/sh
    lock_passwd: true
`

// acctInstance is an instance whose root carries a throwaway account
// database (passwd, group, shadow, gshadow, login.defs) for useradd --root.
func acctInstance(t *testing.T, userData string) *instance {
	t.Helper()
	in := newInstance(t)
	in.Accounts(t)
	in.Config(t, acctConfig)
	if userData != "" {
		in.Emu.Set("user-data", []byte(userData))
	}
	return in
}

// needAccountTools skips unless useradd --root can run here.
func needAccountTools(t *testing.T) {
	t.Helper()
	testenv.Root(t)
	for _, tool := range []string{"useradd", "usermod", "groupadd", "chpasswd", "visudo"} {
		testenv.Tool(t, tool)
	}
}

// acctRun runs the account handlers and returns the status and the
// console/log output.
func acctRun(t *testing.T, in *instance, mod func(*handlers.Setup)) (*handlers.Status, string) {
	t.Helper()
	var out bytes.Buffer
	s := in.Setup(&out, &out)
	s.Only = []string{"users", "ssh-keys", "host-keys"}
	if mod != nil {
		mod(&s)
	}
	st, err := handlers.Execute(context.Background(), s)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	return st, out.String()
}

func acctWant(t *testing.T, st *handlers.Status, out string, want map[string]string) {
	t.Helper()
	for name, s := range want {
		if r := handlerstest.Result(st, name); r.Status != s {
			t.Fatalf("%s = %s (%s), want %s\nnotes: %q\n%s", name, r.Status, r.Reason, s, r.Notes, out)
		}
	}
}

func acctField(t *testing.T, in *instance, file, user string, field int) string {
	t.Helper()
	for _, l := range strings.Split(in.ReadFile(t, file), "\n") {
		if f := strings.Split(l, ":"); f[0] == user && len(f) > field {
			return f[field]
		}
	}
	t.Fatalf("%s not in %s", user, file)
	return ""
}

func acctOwner(t *testing.T, in *instance, rel string) (int, os.FileMode) {
	t.Helper()
	fi, err := os.Lstat(filepath.Join(in.Root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return int(fi.Sys().(*syscall.Stat_t).Uid), fi.Mode()
}

func TestAFreshInstanceARebootAndANewInstance(t *testing.T) {
	needAccountTools(t)
	in := acctInstance(t, "")
	st, out := acctRun(t, in, nil)
	acctWant(t, st, out, map[string]string{"users": "ok", "ssh-keys": "ok", "host-keys": "ok"})

	// The default user exists with its groups, a locked password that
	// still allows key logins, and its sudo rule.
	if got := acctField(t, in, "etc/passwd", "admin", 4); got != "Image Admin" {
		t.Errorf("gecos %q", got)
	}
	if got := acctField(t, in, "etc/shadow", "admin", 1); got != "*" {
		t.Errorf("password field %q, want * (never !, which locks key logins out without PAM)", got)
	}
	for _, g := range []string{"adm", "sudo"} {
		if !slices.Contains(strings.Split(acctField(t, in, "etc/group", g, 3), ","), "admin") {
			t.Errorf("admin not in group %s", g)
		}
	}
	if got := in.ReadFile(t, "etc/sudoers.d/90-flint-users"); !strings.Contains(got, "admin ALL=(ALL) NOPASSWD:ALL\n") {
		t.Errorf("sudoers: %q", got)
	}
	if _, m := acctOwner(t, in, "etc/sudoers.d/90-flint-users"); m.Perm() != 0o440 {
		t.Errorf("sudoers mode %v", m)
	}
	// Its keys: both metadata keys, private files owned by admin.
	ak := "home/admin/.ssh/authorized_keys"
	keys := in.ReadFile(t, ak)
	if !strings.Contains(keys, "alice@laptop") || !strings.Contains(keys, "deploy-key") || strings.Count(keys, "\n") != 2 {
		t.Fatalf("authorized_keys: %q", keys)
	}
	uid := acctField(t, in, "etc/passwd", "admin", 2)
	for rel, perm := range map[string]os.FileMode{ak: 0o600, "home/admin/.ssh": 0o700} {
		if o, m := acctOwner(t, in, rel); m.Perm() != perm || strings.TrimSpace(uid) != strconv.Itoa(o) {
			t.Errorf("%s: owner %d mode %v, want %s %v", rel, o, m.Perm(), uid, perm)
		}
	}
	// root gets them behind the "log in as admin" command.
	if got := in.ReadFile(t, "root/.ssh/authorized_keys"); strings.Count(got, `Please login as the user \"admin\" rather than the user \"root\".`) != 2 {
		t.Errorf("root's keys: %q", got)
	}
	// Host keys, and their fingerprints on the console.
	hostKeys := map[string]string{}
	for _, typ := range []string{"rsa", "ecdsa", "ed25519"} {
		rel := "etc/ssh/ssh_host_" + typ + "_key"
		hostKeys[typ] = in.ReadFile(t, rel)
		if _, m := acctOwner(t, in, rel); m.Perm() != 0o600 {
			t.Errorf("%s mode %v", rel, m)
		}
		if _, m := acctOwner(t, in, rel+".pub"); m.Perm() != 0o644 {
			t.Errorf("%s.pub mode %v", rel, m)
		}
	}
	if !strings.Contains(out, "ec2: -----BEGIN SSH HOST KEY FINGERPRINTS-----\nec2: 256 SHA256:") || strings.Count(out, "(ED25519)") != 1 || !strings.Contains(out, "-----END SSH HOST KEY KEYS-----") {
		t.Errorf("no fingerprints block on the console:\n%s", out)
	}

	// Reboot: nothing changes.
	before := in.ReadFile(t, ak)
	st, out = acctRun(t, in, nil)
	acctWant(t, st, out, map[string]string{"users": "skipped", "ssh-keys": "skipped", "host-keys": "skipped"})
	if in.ReadFile(t, ak) != before || in.ReadFile(t, "etc/ssh/ssh_host_ed25519_key") != hostKeys["ed25519"] {
		t.Fatal("a reboot changed keys")
	}

	// A person adds a key; the image becomes a new instance with another key.
	f, _ := os.OpenFile(filepath.Join(in.Root, ak), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(handAdded + "\n")
	f.Close()
	in.Emu.Set("meta-data/instance-id", []byte("i-0fedcba9876543210"))
	in.Emu.Set("meta-data/public-keys/2=new/openssh-key", []byte(newKey+"\n"))
	st, out = acctRun(t, in, nil)
	acctWant(t, st, out, map[string]string{"users": "ok", "ssh-keys": "ok", "host-keys": "ok"})
	keys = in.ReadFile(t, ak)
	if want := before + handAdded + "\n" + newKey + "\n"; keys != want {
		t.Fatalf("keys after the new instance:\n%s\nwant\n%s", keys, want)
	}
	for typ, old := range hostKeys {
		if in.ReadFile(t, "etc/ssh/ssh_host_"+typ+"_key") == old {
			t.Errorf("%s host key not regenerated on a new instance", typ)
		}
	}
	if n := strings.Count("\n"+in.ReadFile(t, "etc/passwd"), "\nadmin:"); n != 1 {
		t.Errorf("admin appears %d times in passwd", n)
	}
}

const (
	handAdded = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFZFhjViN6SsZghsBPV1UEuFzb6188efCjJ52kngxAOy added-by-hand"
	newKey    = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBC9ogjwA1jEmTBUpbEG1s8l5RE2eD9sSIfZTFIzGV/SGgySrzuMXkbqB9gCMUakpSDscePraNnPKr9CUBwJygW8= new-instance"
)

func TestCloudConfigUsersPasswordsAndSudo(t *testing.T) {
	needAccountTools(t)
	const hash = "$6$saltsalt$qFmFH.bQmmtXzyBY0s9v7Oicd2z4XSIecDzlB5KiA2/jctKu9YterLp8wwnSq.qc.eoxqOmSuNp2xS0ktL3nh/"
	in := acctInstance(t, `#cloud-config
users:
  - default
  - name: carol
    gecos: Carol
    groups: [users, devs]
    shell: /bin/sh
    lock_passwd: false
    hashed_passwd: "`+hash+`"
    sudo: ["ALL=(ALL) ALL"]
    ssh_authorized_keys: ["`+handAdded+`"]
  - name: svc
    system: true
  - name: erin
    lock_passwd: false
    plain_text_passwd: "correct horse"
chpasswd:
  expire: false
  users:
    - {name: admin, password: "$6$other$abc", type: hash}
`)
	st, out := acctRun(t, in, nil)
	acctWant(t, st, out, map[string]string{"users": "ok", "ssh-keys": "ok"})
	if got := acctField(t, in, "etc/shadow", "carol", 1); got != hash {
		t.Errorf("carol's hash not set")
	}
	if got := acctField(t, in, "etc/shadow", "admin", 1); got != "$6$other$abc" {
		t.Errorf("chpasswd not applied to admin: %q", got)
	}
	if got := acctField(t, in, "etc/shadow", "erin", 1); !strings.HasPrefix(got, "$6$") {
		t.Errorf("erin's plain text password not hashed into shadow: %q", got[:min(3, len(got))])
	}
	if !slices.Contains(strings.Split(acctField(t, in, "etc/group", "devs", 3), ","), "carol") {
		t.Error("the missing group devs was not created with carol in it")
	}
	if uid := acctField(t, in, "etc/passwd", "svc", 2); len(uid) != 3 {
		t.Errorf("system user uid %s", uid)
	}
	if _, err := os.Stat(filepath.Join(in.Root, "home/svc")); !errors.Is(err, os.ErrNotExist) {
		t.Error("a system user got a home")
	}
	if got := in.ReadFile(t, "home/carol/.ssh/authorized_keys"); got != handAdded+"\n" {
		t.Errorf("carol's keys: %q (metadata keys belong to the default user only)", got)
	}
	if got := in.ReadFile(t, "etc/sudoers.d/90-flint-users"); !strings.Contains(got, "carol ALL=(ALL) ALL") || !strings.Contains(got, "admin ALL=(ALL) NOPASSWD:ALL") {
		t.Errorf("sudoers: %q", got)
	}
	// Secrets stay out of logs, notes and the output log.
	all := out + strings.Join(handlerstest.Result(st, "users").Notes, "\n")
	if b, err := os.ReadFile(filepath.Join(in.Root, "var/log/flint-output.log")); err == nil {
		all += string(b)
	}
	if strings.Contains(all, "saltsalt") || strings.Contains(all, "$6$other") || strings.Contains(all, "correct horse") {
		t.Fatal("a password hash reached the logs")
	}
}

func TestAccountProblemsAreOneClearLine(t *testing.T) {
	tests := []struct {
		name     string
		userData string
		look     func(string) (string, error)
		want     string
	}{
		{"a missing useradd", "", func(n string) (string, error) {
			if n == "useradd" {
				return "", exec.ErrNotFound
			}
			return exec.LookPath(n)
		}, "useradd not found"},
		{"a sudo rule visudo rejects", "#cloud-config\nusers:\n  - name: dave\n    sudo: \"ALL=(ALL\"\n", nil, "rejected by visudo"},
		{"a random chpasswd password", "#cloud-config\nchpasswd:\n  users:\n    - {name: admin, password: RANDOM}\n", nil, "random password for admin is not supported"},
		{"a user name that is a path", "#cloud-config\nusers:\n  - name: ../etc\n", nil, "not valid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			needAccountTools(t)
			if tt.look != nil {
				setLookTool(t, tt.look)
			}
			in := acctInstance(t, tt.userData)
			st, out := acctRun(t, in, nil)
			r := handlerstest.Result(st, "users")
			if r.Status != "failed" || !strings.Contains(r.Reason, tt.want) || strings.Contains(r.Reason, "\n") {
				t.Fatalf("users = %s %q, want failed with %q\n%s", r.Status, r.Reason, tt.want, out)
			}
			if r := handlerstest.Result(st, "ssh-keys"); r.Status != "not-run" && r.Status != handlers.ResultNotRun {
				t.Errorf("ssh-keys ran after users failed: %s", r.Status)
			}
			if _, err := os.Stat(filepath.Join(in.Root, "etc/sudoers.d/90-flint-users")); err == nil && tt.name == "a sudo rule visudo rejects" {
				t.Error("a rejected sudoers file was installed")
			}
		})
	}
}

func TestWithoutLiveAccountsArePlannedNotMade(t *testing.T) {
	in := acctInstance(t, "")
	passwd := in.ReadFile(t, "etc/passwd")
	st, out := acctRun(t, in, func(s *handlers.Setup) { s.Live = false })
	acctWant(t, st, out, map[string]string{"users": "planned", "ssh-keys": "planned"})
	if r := handlerstest.Result(st, "users"); !strings.Contains(r.Reason, "not live") || !strings.Contains(strings.Join(r.Notes, "\n"), "user admin: create") {
		t.Errorf("users: %q %q", r.Reason, r.Notes)
	}
	if in.ReadFile(t, "etc/passwd") != passwd {
		t.Fatal("passwd changed without --live")
	}
	// A later run with --live does the work.
	needAccountTools(t)
	st, out = acctRun(t, in, nil)
	acctWant(t, st, out, map[string]string{"users": "ok", "ssh-keys": "ok"})
}

func TestDecideUsersFollowsCloudInit(t *testing.T) {
	def := &defaultUserConfig{Name: "ec2-user", Groups: []string{"wheel"}}
	no := false
	tests := []struct {
		name     string
		users    []userdata.User
		set      bool
		def      *defaultUserConfig
		want     []string
		defaults []string
	}{
		{"no users key gives the default user", nil, false, def, []string{"ec2-user"}, []string{"ec2-user"}},
		{"an empty list gives nobody", nil, true, def, nil, nil},
		{"users without default leave it out", []userdata.User{{Name: "bob"}}, true, def, []string{"bob"}, nil},
		{"default stands for the default user", []userdata.User{{Name: "default", Default: true}, {Name: "bob", LockPasswd: &no}}, true, def, []string{"ec2-user", "bob"}, []string{"ec2-user"}},
		{"no default user configured", nil, false, nil, nil, nil},
		{"duplicates are made once", []userdata.User{{Name: "bob"}, {Name: "bob"}}, true, def, []string{"bob"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			specs, err := decideUsers(tt.def, &userdata.CloudConfig{Users: tt.users}, tt.set)
			if err != nil {
				t.Fatal(err)
			}
			var names, defaults []string
			for _, s := range specs {
				names = append(names, s.Name)
				if s.Default {
					defaults = append(defaults, s.Name)
				}
				if s.Name == "bob" && s.LockPasswd == (len(tt.users) > 1 && tt.users[1].LockPasswd != nil) {
					t.Errorf("bob's lock_passwd = %v", s.LockPasswd)
				}
			}
			if !slices.Equal(names, tt.want) || !slices.Equal(defaults, tt.defaults) {
				t.Fatalf("users %v defaults %v, want %v %v", names, defaults, tt.want, tt.defaults)
			}
		})
	}
}

func TestSudoRulesAreAddedOnceAndKeptAcrossInstances(t *testing.T) {
	a := []userSpec{{Name: "admin", Sudo: []string{"ALL=(ALL) NOPASSWD:ALL"}}}
	first := sudoersFor("", a)
	if !strings.Contains(first, "\nadmin ALL=(ALL) NOPASSWD:ALL\n") {
		t.Fatalf("first: %q", first)
	}
	if again := sudoersFor(first, a); again != "" {
		t.Fatalf("the same rules again rewrite the file: %q", again)
	}
	b := []userSpec{{Name: "carol", Sudo: []string{"ALL=(ALL) ALL"}}}
	next := sudoersFor(first, b)
	if !strings.HasPrefix(next, first) || !strings.HasSuffix(next, "carol ALL=(ALL) ALL\n") {
		t.Fatalf("a new instance's rules: %q", next)
	}
	if sudoersFor("", []userSpec{{Name: "x"}}) != "" {
		t.Fatal("no rules, yet a file")
	}
}

func TestCloudConfigUserOverridesTheDefaultUser(t *testing.T) {
	def := &defaultUserConfig{Name: "admin", Groups: []string{"sudo"}, Shell: "/bin/sh"}
	no := false
	tests := []struct {
		name string
		raw  any
		want defaultUserConfig
	}{
		{"absent", nil, *def},
		{"a name", "ubuntu", defaultUserConfig{Name: "ubuntu", Groups: []string{"sudo"}, Shell: "/bin/sh"}},
		{"a mapping", map[string]any{"name": "ops", "groups": "adm, wheel", "lock_passwd": false},
			defaultUserConfig{Name: "ops", Groups: []string{"adm", "wheel"}, Shell: "/bin/sh", LockPasswd: &no}},
		{"junk", 42, *def},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := effectiveDefaultUser(def, tt.raw)
			if got.Name != tt.want.Name || !slices.Equal(got.Groups, tt.want.Groups) || got.Shell != tt.want.Shell ||
				(got.LockPasswd == nil) != (tt.want.LockPasswd == nil) {
				t.Fatalf("got %+v, want %+v", *got, tt.want)
			}
		})
	}
	if def.Name != "admin" {
		t.Fatal("the configured default user was modified")
	}
}

// setLookTool replaces how the users handler finds useradd, visudo … for
// the rest of the test (a missing tool). Tests using it must not run in
// parallel.
func setLookTool(t testing.TB, f func(name string) (string, error)) {
	t.Helper()
	old := lookTool
	lookTool = f
	t.Cleanup(func() { lookTool = old })
}

// The sudo rules are checked from the chain's start: with the host
// name's read held back half a second, visudo ran before useradd, once,
// and the rules it passed are installed.
func TestSudoRulesAreCheckedWhenTheChainStarts(t *testing.T) {
	needAccountTools(t)
	dir := t.TempDir()
	order := filepath.Join(dir, "order")
	setLookTool(t, func(name string) (string, error) {
		real, err := accounts.LookTool(name)
		if err != nil || name != "visudo" && name != "useradd" {
			return real, err
		}
		wrapper := filepath.Join(dir, name)
		script := "#!/bin/sh\necho " + name + " $(date +%s.%N) >> " + order + "\nexec " + real + " \"$@\"\n"
		return wrapper, os.WriteFile(wrapper, []byte(script), 0o755)
	})
	in := acctInstance(t, "")
	in.Emu.AddFault(imdstest.Fault{Path: "meta-data/local-hostname", Latency: 500 * time.Millisecond})
	st, out := acctRun(t, in, func(s *handlers.Setup) { s.Only = []string{"hostname", "users"} })
	acctWant(t, st, out, map[string]string{"users": "ok"})
	got, _ := os.ReadFile(order)
	lines := strings.Fields(string(got))
	if len(lines) != 4 || lines[0] != "visudo" || lines[2] != "useradd" {
		t.Fatalf("tools ran: %q, want visudo once, then useradd", got)
	}
	secs, _ := strconv.ParseFloat(lines[1], 64)
	visudo := time.Unix(0, int64(secs*1e9))
	if users := handlerstest.Result(st, "users").Started; !visudo.Before(users) {
		t.Errorf("visudo ran at %v, the users handler started at %v: not from the chain's start", visudo, users)
	}
	if rules := in.ReadFile(t, "etc/sudoers.d/90-flint-users"); !strings.Contains(rules, "admin ALL=(ALL) NOPASSWD:ALL") {
		t.Errorf("sudoers: %q", rules)
	}
}
