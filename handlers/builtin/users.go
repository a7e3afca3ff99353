package builtin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"

	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/internal/accounts"
	"github.com/flint-dev/flint/internal/rootfs"
	"github.com/flint-dev/flint/internal/state"
	"github.com/flint-dev/flint/userdata"
)

// usersConfig is the `users:` section of flint.yaml.
type usersConfig struct {
	// DefaultUser is the image's login user (ec2-user, admin, ubuntu …):
	// cloud-config's "default" entry, and the owner of the instance's
	// metadata keys.
	DefaultUser *defaultUserConfig `yaml:"default_user"`
}

// defaultUserConfig describes the image's default user.
type defaultUserConfig struct {
	Name   string    `yaml:"name"`
	Gecos  string    `yaml:"gecos"`
	Groups []string  `yaml:"groups"`
	Sudo   sudoRules `yaml:"sudo"`
	Shell  string    `yaml:"shell"`
	// LockPasswd (default true) leaves the account without a usable
	// password; key logins still work (see accounts.PasswordField).
	LockPasswd *bool `yaml:"lock_passwd"`
}

// sudoRules are sudoers rules, written as one string or a list.
type sudoRules []string

// UnmarshalYAML accepts a string or a list of strings.
func (s *sudoRules) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*s = sudoRules{n.Value}
		return nil
	}
	var l []string
	if err := n.Decode(&l); err != nil {
		return err
	}
	*s = l
	return nil
}

// defaultUserName returns the configured default user ("" when none).
// `flint ssh-keys` uses it to know who gets the metadata keys.
func defaultUserName(cfg interface {
	Section(name string, v any) (bool, error)
}) (string, error) {
	var uc usersConfig
	if _, err := cfg.Section(usersSection, &uc); err != nil {
		return "", err
	}
	if uc.DefaultUser == nil {
		return "", nil
	}
	return uc.DefaultUser.Name, nil
}

// usersHandler creates the default user and cloud-config `users:` and
// their missing groups as the image's useradd and groupadd make them
// (accounts.Tools: written directly where that is the same, else the
// tools), adds existing users to groups with usermod, sets or locks
// passwords, applies
// cloud-config chpasswd, and installs sudo rules (checked by visudo).
// Accounts, groups and sudo rules converge when it runs again; each
// account's password field is decided at most once per instance
// (step.begin).
var usersHandler = handlers.Builtin{
	Name: "users", Frequency: state.PerInstance,
	Section: usersSection, Config: func() any { return new(usersConfig) },
	Prepare: prepareUsers,
	Run:     runUsers,
}

// preparedSudoers is visudo's check, started when the chain starts, of
// the sudo rules the handler was then going to install.
type preparedSudoers struct {
	content string
	check   func() error
}

// prepareUsers starts checking, when the chain starts, the sudo rules the
// handler is going to install as the user-data and the image tell then:
// visudo is a process start, which then overlaps the handlers before
// this one. Run uses the verdict when it installs the same rules, and
// checks anew otherwise (bootcmd or write_files changed the accounts or
// the sudoers drop-in meanwhile).
func prepareUsers(ctx context.Context, b *handlers.Boot) any {
	if !b.Live {
		return nil
	}
	plan, err := planRootUsers(ctx, b)
	if err != nil || plan.sudoers == "" {
		return nil
	}
	return &preparedSudoers{content: plan.sudoers, check: startSudoersCheck(ctx, plan.sudoers)}
}

// planRootUsers decides the handler's work for the root as it is now.
func planRootUsers(ctx context.Context, b *handlers.Boot) (usersPlan, error) {
	cc, specs, err := decidedUsers(ctx, b)
	if err != nil {
		return usersPlan{}, err
	}
	db, err := accounts.Read(b.Root)
	if err != nil {
		return usersPlan{}, err
	}
	oldSudoers, err := b.Root.ReadFile(sudoersFile, rootfs.InRoot)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return usersPlan{}, err
	}
	return planUsers(specs, cc.Chpasswd, db, string(oldSudoers))
}

// usersSection is the users handler's flint.yaml section; ssh-keys and
// `flint ssh-keys` read the default user from it too.
const usersSection = "users"

// effectiveDefaultUser applies cloud-config's `user:` key (a name, or a
// mapping with name, gecos, groups, shell, sudo, lock_passwd) over the
// configured default user, as cloud-init does. raw is the key's value
// from the merged cloud-config (nil when absent).
func effectiveDefaultUser(def *defaultUserConfig, raw any) *defaultUserConfig {
	var d defaultUserConfig
	if def != nil {
		d = *def
	}
	switch v := raw.(type) {
	case string:
		if v == "" {
			return def
		}
		d.Name = v
	case map[string]any:
		if n, ok := v["name"].(string); ok && n != "" {
			d.Name = n
		}
		if g, ok := v["gecos"].(string); ok {
			d.Gecos = g
		}
		if sh, ok := v["shell"].(string); ok {
			d.Shell = sh
		}
		if l, ok := v["lock_passwd"].(bool); ok {
			d.LockPasswd = &l
		}
		if g := stringList(v["groups"]); g != nil {
			d.Groups = g
		}
		if r := stringList(v["sudo"]); r != nil {
			d.Sudo = r
		}
	default:
		return def
	}
	if d.Name == "" {
		return def
	}
	return &d
}

// stringList reads a list of strings or a comma-separated string.
func stringList(v any) []string {
	var out []string
	switch v := v.(type) {
	case string:
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				out = append(out, f)
			}
		}
	case []any:
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}

// userSpec is one account the users handler makes sure of.
type userSpec struct {
	Name, Gecos, HomeDir, PrimaryGroup, Shell string
	Groups                                    []string
	Sudo                                      []string
	LockPasswd                                bool
	// HashedPasswd and PlainTextPasswd are secrets: never logged or noted.
	HashedPasswd, PlainTextPasswd string
	SSHAuthorizedKeys             []string
	System, NoCreateHome          bool
	NoUserGroup                   bool
	UID                           *int64
	Expiredate, Inactive          string
	// Default marks the default user.
	Default bool
}

// decideUsers is cloud-init's normalize_users_groups: without a `users`
// key the default user alone; with one, its entries, the literal
// "default" standing for the default user. usersSet says whether the
// cloud-config had a `users` key at all (an empty list means nobody).
func decideUsers(def *defaultUserConfig, cc *userdata.CloudConfig, usersSet bool) ([]userSpec, error) {
	entries := cc.Users
	if !usersSet {
		entries = []userdata.User{{Name: "default", Default: true}}
	}
	var out []userSpec
	seen := map[string]bool{}
	for _, u := range entries {
		var s userSpec
		if u.Default {
			if def == nil || def.Name == "" {
				continue // no default user on this image
			}
			s = userSpec{Name: def.Name, Gecos: def.Gecos, Groups: def.Groups, Sudo: def.Sudo,
				Shell: def.Shell, LockPasswd: def.LockPasswd == nil || *def.LockPasswd, Default: true}
		} else {
			s = userSpec{
				Name: u.Name, Gecos: u.Gecos, HomeDir: u.HomeDir, PrimaryGroup: u.PrimaryGroup,
				Shell: u.Shell, Groups: u.Groups, Sudo: u.Sudo,
				LockPasswd:   u.LockPasswd == nil || *u.LockPasswd,
				HashedPasswd: u.HashedPasswd, PlainTextPasswd: u.PlainTextPasswd,
				SSHAuthorizedKeys: u.SSHAuthorizedKeys, System: u.System, NoCreateHome: u.NoCreateHome,
				NoUserGroup: u.NoUserGroup, UID: u.UID, Expiredate: u.Expiredate, Inactive: u.Inactive,
			}
			if s.HashedPasswd == "" {
				s.HashedPasswd = u.Passwd
			}
			if def != nil && u.Name == def.Name {
				s.Default = true
			}
		}
		if !accounts.ValidName(s.Name) {
			return nil, fmt.Errorf("user name %q is not valid (letters, digits, '.', '_', '-'; not starting with '-')", s.Name)
		}
		for _, g := range append(slices.Clone(s.Groups), s.PrimaryGroup) {
			if g != "" && !accounts.ValidName(g) {
				return nil, fmt.Errorf("user %s: group name %q is not valid", s.Name, g)
			}
		}
		for _, r := range s.Sudo {
			if strings.ContainsAny(r, "\n\r\x00") {
				return nil, fmt.Errorf("user %s: a sudo rule spans lines", s.Name)
			}
		}
		if seen[s.Name] {
			continue
		}
		seen[s.Name] = true
		out = append(out, s)
	}
	return out, nil
}

// lookTool finds the tools the handler runs (replaced in tests).
var lookTool = accounts.LookTool

// tools runs the account tools on the handler's root, their output going
// to the output log.
func tools(b *handlers.Boot) accounts.Tools {
	t := accounts.Tools{Root: b.Root, Look: lookTool}
	if b.Output != nil {
		t.Output = func(name string) io.WriteCloser { return b.Output.Writer(name) }
	}
	return t
}

// sudoersFile is where flint's sudo rules go (cloud-init uses 90-cloud-init-users).
const sudoersFile = "etc/sudoers.d/90-flint-users"

// decidedUsers reads what the users and ssh-keys handlers both act on:
// the users section, the cloud-config, and the accounts decideUsers makes
// of them.
func decidedUsers(ctx context.Context, b *handlers.Boot) (*userdata.CloudConfig, []userSpec, error) {
	var cfg usersConfig
	if err := b.Section(usersSection, &cfg); err != nil {
		return nil, nil, err
	}
	// The default user and the metadata keys make the instance
	// reachable: they do not wait for user-data that cannot be read.
	cc, ud := b.CloudConfigOrNone(ctx)
	_, usersSet := ud.Config["users"]
	if cfg.DefaultUser == nil {
		cfg.DefaultUser = imageDefaultUser(b)
	}
	specs, err := decideUsers(effectiveDefaultUser(cfg.DefaultUser, ud.Config["user"]), cc, usersSet)
	return cc, specs, err
}

// usersPlan is what the users handler does: decided from the accounts
// to make sure of, cloud-config chpasswd and the root's accounts, sudoers
// and nothing else, so the decision is tested without a root.
type usersPlan struct {
	// groups are created first, in order.
	groups []string
	users  []userStep
	// passwords are set with chpasswd after the users exist; expire makes
	// each be changed at the next login.
	passwords []userdata.ChpasswdUser
	expire    bool
	// sudoers is the drop-in to install ("" when nothing to write).
	sudoers string
}

// userStep is one account of the plan.
type userStep struct {
	spec   userSpec
	create bool
	// appendGroups are the groups an existing account is not in yet,
	// from the memberships read before any change.
	appendGroups []string
}

// planUsers decides the users handler's work. oldSudoers is the drop-in
// as a previous instance left it.
func planUsers(specs []userSpec, chpw *userdata.Chpasswd, db *accounts.DB, oldSudoers string) (usersPlan, error) {
	p := usersPlan{expire: true}
	if chpw != nil {
		p.passwords = append(append(p.passwords, chpw.Users...), chpw.List...)
		if chpw.Expire != nil {
			p.expire = *chpw.Expire
		}
		for _, pw := range p.passwords {
			if pw.Type == "RANDOM" {
				return usersPlan{}, fmt.Errorf("chpasswd: a random password for %s is not supported (flint never prints passwords); give a hash instead", pw.Name)
			}
			if !accounts.ValidName(pw.Name) {
				return usersPlan{}, fmt.Errorf("chpasswd: user name %q is not valid", pw.Name)
			}
		}
	}
	for _, s := range specs {
		for _, g := range append(slices.Clone(s.Groups), s.PrimaryGroup) {
			if g != "" && !db.HasGroup(g) && !slices.Contains(p.groups, g) {
				p.groups = append(p.groups, g)
			}
		}
	}
	for _, s := range specs {
		_, err := db.User(s.Name)
		if err != nil && !errors.Is(err, accounts.ErrNoUser) {
			return usersPlan{}, err
		}
		step := userStep{spec: s, create: err != nil}
		if !step.create {
			for _, g := range s.Groups {
				if !slices.Contains(db.Members(g), s.Name) {
					step.appendGroups = append(step.appendGroups, g)
				}
			}
		}
		p.users = append(p.users, step)
	}
	p.sudoers = sudoersFor(oldSudoers, specs)
	return p, nil
}

// notes say what the plan does, without a secret.
func (p usersPlan) notes() []string {
	var out []string
	for _, g := range p.groups {
		out = append(out, fmt.Sprintf("group %s: create", g))
	}
	for _, u := range p.users {
		s := u.spec
		if u.create {
			out = append(out, fmt.Sprintf("user %s: create (groups %s, shell %s)", s.Name,
				orDefault(strings.Join(s.Groups, ","), "none"), orDefault(s.Shell, "the image's default")))
		} else {
			out = append(out, fmt.Sprintf("user %s: exists; groups %s", s.Name, strings.Join(s.Groups, ",")))
		}
		if s.LockPasswd {
			out = append(out, fmt.Sprintf("user %s: password locked (%q: key logins still work)", s.Name, accounts.LockedField))
		}
	}
	for _, pw := range p.passwords {
		out = append(out, "chpasswd: set the password of "+pw.Name)
	}
	if p.sudoers != "" {
		out = append(out, "sudo rules: "+sudoersFile)
	}
	return out
}

func runUsers(ctx context.Context, b *handlers.Boot) error {
	prepared, _ := b.Prepared().(*preparedSudoers)
	if prepared != nil {
		defer prepared.check() // reaps visudo and removes its file
	}
	plan, err := planRootUsers(ctx, b)
	if err != nil {
		return err
	}
	for _, n := range plan.notes() {
		b.Note("%s", n)
	}
	if b.DryRun || len(plan.users)+len(plan.passwords) == 0 {
		return nil
	}
	if !b.Live {
		return fmt.Errorf("%d users: %w", len(plan.users), handlers.ErrNotLive)
	}
	t := tools(b)
	// The sudo rules are checked while the accounts are made, and
	// installed after them.
	var check func() error
	switch {
	case plan.sudoers == "":
	case prepared != nil && prepared.content == plan.sudoers:
		check = prepared.check
	default:
		check = startSudoersCheck(ctx, plan.sudoers)
		defer check() // reaps visudo and removes its file on an early return
	}
	made, err := t.AddGroups(ctx, plan.groups)
	logGroups(b, made)
	if err != nil {
		return err
	}
	for _, u := range plan.users {
		if err := ensureUser(ctx, b, t, u); err != nil {
			return err
		}
	}
	for _, pw := range plan.passwords {
		// Set again when the handler runs again, it would undo the
		// user's own change since, and expire it again.
		once := step{key: "chpasswd." + pw.Name, what: "chpasswd for " + pw.Name, lazy: true}
		if !once.beginOrWait(b) {
			continue
		}
		if err := t.SetPassword(ctx, pw.Name, pw.Password, pw.Type == "hash"); err != nil {
			return fmt.Errorf("chpasswd: setting the password of %s: %w", pw.Name, err)
		}
		if plan.expire {
			if err := t.Expire(ctx, pw.Name); err != nil {
				return err
			}
		}
		once.done(b)
	}
	if check != nil {
		if err := installSudoers(b, plan.sudoers, check); err != nil {
			return err
		}
	}
	return nil
}

// logGroups says which groups were made, and their GIDs where known.
func logGroups(b *handlers.Boot, made []accounts.NewGroup) {
	for _, g := range made {
		// The journal shows the message, not its fields: the name and
		// the id are in it, as groupadd's own log line has them.
		if g.GID >= 0 {
			b.Log.Info(fmt.Sprintf("created group %s (GID %d)", g.Name, g.GID), "group", g.Name, "gid", g.GID)
		} else {
			b.Log.Info("created group "+g.Name, "group", g.Name)
		}
	}
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// ensureUser applies one step: creates the account or adds it to its
// missing groups, then sets or locks its password.
func ensureUser(ctx context.Context, b *handlers.Boot, t accounts.Tools, u userStep) error {
	s := u.spec
	set := s.HashedPasswd != "" || s.PlainTextPasswd != ""
	if u.create {
		nu := s.newUser()
		if s.LockPasswd || !set {
			// The field PasswordField asks of a new account, given at
			// once: no usermod after useradd.
			nu.Password = accounts.LockedField
		}
		made, err := t.AddUser(ctx, nu)
		if err != nil {
			return err
		}
		if made.UID >= 0 {
			b.Log.Info(fmt.Sprintf("created user %s (UID %d, GID %d, home %s)", s.Name, made.UID, made.GID, made.Home), "user", s.Name, "uid", made.UID)
		} else {
			b.Log.Info("created user "+s.Name, "user", s.Name)
		}
	} else if len(u.appendGroups) > 0 {
		if err := t.AppendGroups(ctx, s.Name, u.appendGroups); err != nil {
			return err
		}
	}
	// The password field is decided (set, locked) once per instance:
	// decided again when the handler runs again, it would undo the
	// user's own change since, or chpasswd's. An account made now still
	// loses useradd's "!", which would refuse key logins.
	pw := step{key: "password." + s.Name, what: "the password of " + s.Name, lazy: true}
	decide, err := pw.begin(b)
	if err != nil && (!u.create || set && !s.LockPasswd) {
		pw.wait(b, err)
	}
	if !decide {
		if !u.create {
			return nil
		}
		set = false
	}
	if set && !s.LockPasswd {
		secret, hashed := s.HashedPasswd, true
		if s.HashedPasswd == "" {
			secret, hashed = s.PlainTextPasswd, false
		}
		if err := t.SetPassword(ctx, s.Name, secret, hashed); err != nil {
			return fmt.Errorf("setting the password of %s: %w", s.Name, err)
		}
	}
	// Read after useradd: it decides the field a new account starts with.
	field, err := accounts.ShadowField(b.Root, s.Name)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if f := accounts.PasswordField(s.LockPasswd, field, set && !s.LockPasswd); f != "" {
		if err := t.SetPasswordField(ctx, s.Name, f); err != nil {
			return err
		}
	}
	if decide {
		pw.done(b)
	}
	return nil
}

// newUser is what useradd needs of s.
func (s userSpec) newUser() accounts.NewUser {
	return accounts.NewUser{
		Name: s.Name, Gecos: s.Gecos, HomeDir: s.HomeDir, PrimaryGroup: s.PrimaryGroup, Shell: s.Shell,
		Groups: s.Groups, UID: s.UID, Expiredate: s.Expiredate, Inactive: s.Inactive,
		System: s.System, NoCreateHome: s.NoCreateHome, NoUserGroup: s.NoUserGroup,
	}
}

// sudoersFor returns the sudoers drop-in with the rules of specs added to
// existing (the file as a previous instance left it): rules already there
// are kept and not repeated, as cloud-init appends to its file. "" means
// nothing to write.
func sudoersFor(existing string, specs []userSpec) string {
	have := map[string]bool{}
	for _, l := range strings.Split(existing, "\n") {
		have[strings.TrimSpace(l)] = true
	}
	var sb strings.Builder
	sb.WriteString(existing)
	if existing == "" {
		sb.WriteString("# Written by flint (users handler) from flint.yaml and cloud-config users.\n")
	} else if !strings.HasSuffix(existing, "\n") {
		sb.WriteByte('\n')
	}
	added := false
	for _, s := range specs {
		var rules []string
		for _, r := range s.Sudo {
			if line := s.Name + " " + strings.TrimSpace(r); !have[line] {
				have[line] = true
				rules = append(rules, line)
			}
		}
		if len(rules) == 0 {
			continue
		}
		fmt.Fprintf(&sb, "\n# User rules for %s\n%s\n", s.Name, strings.Join(rules, "\n"))
		added = true
	}
	if !added {
		return ""
	}
	return sb.String()
}

// startSudoersCheck starts checking content with `visudo -cf` and returns
// what waits for the verdict (each call the same verdict; the first reaps
// visudo and removes its file): the check is a process start, which the
// users handler overlaps with the handlers before it.
func startSudoersCheck(ctx context.Context, content string) (wait func() error) {
	return sync.OnceValue(sudoersCheck(ctx, content))
}

func sudoersCheck(ctx context.Context, content string) func() error {
	visudo, err := lookTool("visudo")
	if err != nil {
		return func() error {
			return errors.New("visudo not found: sudo rules were not installed (install sudo in the image)")
		}
	}
	tmp, err := os.CreateTemp("", "flint-sudoers-")
	if err != nil {
		return func() error { return err }
	}
	if err := finishTemp(tmp, content, 0o440); err != nil {
		os.Remove(tmp.Name())
		return func() error { return fmt.Errorf("sudo rules not checked or installed: %w", err) }
	}
	ctx, cancel := context.WithTimeout(ctx, accounts.ToolTimeout)
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, visudo, "-c", "-q", "-f", tmp.Name())
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Start()
	return func() error {
		defer os.Remove(tmp.Name())
		defer cancel()
		if err == nil {
			err = cmd.Wait()
		}
		if err != nil {
			msg := strings.ReplaceAll(strings.TrimSpace(out.String()), tmp.Name(), sudoersFile)
			if i := strings.IndexByte(msg, '\n'); i >= 0 {
				msg = msg[:i]
			}
			if msg == "" {
				msg = err.Error()
			}
			return fmt.Errorf("sudo rules rejected by visudo, not installed: %s", msg)
		}
		return nil
	}
}

// installSudoers installs content 0440 once check (startSudoersCheck)
// passed it. A file that does not pass is not installed: a broken sudoers
// drop-in breaks sudo for everyone.
func installSudoers(b *handlers.Boot, content string, check func() error) error {
	if err := check(); err != nil {
		return err
	}
	if err := b.Root.WriteFile(sudoersFile, []byte(content), rootfs.WriteOptions{Perm: 0o440, Owner: rootfs.Owner{UID: 0, GID: 0}, MkdirPerm: 0o750}); err != nil {
		return err
	}
	if main, err := b.Root.ReadFile("etc/sudoers", rootfs.InRoot); err == nil && !bytes.Contains(main, []byte("includedir /etc/sudoers.d")) {
		b.Log.Warn("etc/sudoers has no @includedir /etc/sudoers.d; the sudo rules are written but not read", "file", sudoersFile)
	}
	return nil
}

// tempFile is what finishTemp needs of an *os.File.
type tempFile interface {
	WriteString(string) (int, error)
	Chmod(os.FileMode) error
	Close() error
	Name() string
}

// finishTemp writes content to f, sets its mode and closes it. Any error
// means the file is not what a checker must see: visudo would check a
// short or unreadable file, and its verdict would not be about content.
func finishTemp(f tempFile, content string, mode os.FileMode) error {
	_, err := f.WriteString(content)
	if err == nil {
		if err = f.Chmod(mode); err != nil {
			err = fmt.Errorf("chmod %s: %w", f.Name(), err)
		}
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("closing %s: %w", f.Name(), cerr)
	}
	return err
}
