package handlers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/flint-dev/flint/internal/rootfs"
	"github.com/flint-dev/flint/internal/state"
	"github.com/flint-dev/flint/sshkeys"
	"github.com/flint-dev/flint/userdata"
)

// usersConfig is the `users:` section of flint.yaml.
type usersConfig struct {
	// DefaultUser is the image's login user (ec2-user, admin, ubuntu …):
	// cloud-config's "default" entry, and the owner of the instance's
	// metadata keys.
	DefaultUser *DefaultUser `yaml:"default_user"`
}

// DefaultUser describes the image's default user.
type DefaultUser struct {
	Name   string    `yaml:"name"`
	Gecos  string    `yaml:"gecos"`
	Groups []string  `yaml:"groups"`
	Sudo   SudoRules `yaml:"sudo"`
	Shell  string    `yaml:"shell"`
	// LockPasswd (default true) leaves the account without a usable
	// password; key logins still work (see DecidePasswordField).
	LockPasswd *bool `yaml:"lock_passwd"`
}

// SudoRules are sudoers rules, written as one string or a list.
type SudoRules []string

// UnmarshalYAML accepts a string or a list of strings.
func (s *SudoRules) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*s = SudoRules{n.Value}
		return nil
	}
	var l []string
	if err := n.Decode(&l); err != nil {
		return err
	}
	*s = l
	return nil
}

// DefaultUserName returns the configured default user ("" when none).
// `flint ssh-keys` uses it to know who gets the metadata keys.
func DefaultUserName(cfg interface {
	Section(name string, v any) (bool, error)
}) (string, error) {
	var uc usersConfig
	if _, err := cfg.Section("users", &uc); err != nil {
		return "", err
	}
	if uc.DefaultUser == nil {
		return "", nil
	}
	return uc.DefaultUser.Name, nil
}

// Users creates the default user and cloud-config `users:` with the
// image's useradd/usermod/groupadd, sets or locks passwords, applies
// cloud-config chpasswd, and installs sudo rules (checked by visudo).
var Users = &Func{N: "users", F: state.PerInstance, Fn: runUsers}

// EffectiveDefaultUser applies cloud-config's `user:` key (a name, or a
// mapping with name, gecos, groups, shell, sudo, lock_passwd) over the
// configured default user, as cloud-init does. raw is the key's value
// from the merged cloud-config (nil when absent).
func EffectiveDefaultUser(def *DefaultUser, raw any) *DefaultUser {
	var d DefaultUser
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

// UserSpec is one account the users handler makes sure of.
type UserSpec struct {
	Name, Gecos, HomeDir, PrimaryGroup, Shell string
	Groups                                    []string
	Sudo                                      []string
	LockPasswd                                bool
	// HashedPasswd and PlainTextPasswd are secrets: never logged or noted.
	HashedPasswd, PlainTextPasswd string
	SSHAuthorizedKeys             []string
	SSHImportID                   []string
	System, NoCreateHome          bool
	NoUserGroup                   bool
	UID                           *int64
	Expiredate, Inactive          string
	// Default marks the default user.
	Default bool
}

// DecideUsers is cloud-init's normalize_users_groups: without a `users`
// key the default user alone; with one, its entries, the literal
// "default" standing for the default user. usersSet says whether the
// cloud-config had a `users` key at all (an empty list means nobody).
func DecideUsers(def *DefaultUser, cc *userdata.CloudConfig, usersSet bool) ([]UserSpec, error) {
	entries := cc.Users
	if !usersSet {
		entries = []userdata.User{{Name: "default", Default: true}}
	}
	var out []UserSpec
	seen := map[string]bool{}
	for _, u := range entries {
		var s UserSpec
		if u.Default {
			if def == nil || def.Name == "" {
				continue // no default user on this image
			}
			s = UserSpec{Name: def.Name, Gecos: def.Gecos, Groups: def.Groups, Sudo: def.Sudo,
				Shell: def.Shell, LockPasswd: def.LockPasswd == nil || *def.LockPasswd, Default: true}
		} else {
			s = UserSpec{
				Name: u.Name, Gecos: u.Gecos, HomeDir: u.HomeDir, PrimaryGroup: u.PrimaryGroup,
				Shell: u.Shell, Groups: u.Groups, Sudo: u.Sudo,
				LockPasswd:   u.LockPasswd == nil || *u.LockPasswd,
				HashedPasswd: u.HashedPasswd, PlainTextPasswd: u.PlainTextPasswd,
				SSHAuthorizedKeys: u.SSHAuthorizedKeys, SSHImportID: u.SSHImportID, System: u.System, NoCreateHome: u.NoCreateHome,
				NoUserGroup: u.NoUserGroup, UID: u.UID, Expiredate: u.Expiredate, Inactive: u.Inactive,
			}
			if s.HashedPasswd == "" {
				s.HashedPasswd = u.Passwd
			}
			if def != nil && u.Name == def.Name {
				s.Default = true
			}
		}
		if !sshkeys.ValidUserName(s.Name) {
			return nil, fmt.Errorf("user name %q is not valid (letters, digits, '.', '_', '-'; not starting with '-')", s.Name)
		}
		for _, g := range append(slices.Clone(s.Groups), s.PrimaryGroup) {
			if g != "" && !sshkeys.ValidUserName(g) {
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

// LockedField is the shadow password field flint gives an account
// whose password is locked. It is "*", not "!": sshd without PAM treats a
// field starting with "!" as a locked account and refuses even key
// logins, while "*" only means no password can match.
const LockedField = "*"

// DecidePasswordField says what the account's shadow password field must
// become: LockedField when locked (or when useradd left the "!" that
// would block key logins without PAM), "" when it stays as it is.
// current is the field now; set reports whether a password is being set
// for the user.
func DecidePasswordField(lock bool, current string, set bool) string {
	switch {
	case lock && current != LockedField:
		return LockedField
	case lock, set:
		return ""
	case current == "!" || current == "!!" || current == "!*":
		return LockedField
	}
	return ""
}

// lookTool finds a tool the handler runs (replaced in tests).
var lookTool = func(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: %w", name, exec.ErrNotFound)
}

// toolTimeout bounds one useradd/usermod/chpasswd/visudo run.
const toolTimeout = time.Minute

// runTool runs an account tool on the root and returns an error carrying
// the tool's first line of complaint. stdin (passwords) is never logged.
func runTool(ctx context.Context, b *Boot, name string, args []string, stdin []byte) error {
	p, err := lookTool(name)
	if err != nil {
		return fmt.Errorf("%s not found: install the image's account tools (passwd/shadow-utils) or create users another way", name)
	}
	if !b.Root.IsHost() {
		// Every shadow tool takes --root: it chroots and uses the root's
		// own passwd, group, shadow and login.defs.
		args = append([]string{"--root", b.Root.Dir()}, args...)
	}
	ctx, cancel := context.WithTimeout(ctx, toolTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, p, args...)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"}
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if b.Output != nil && len(out) > 0 && stdin == nil {
		w := b.Output.Writer(name)
		w.Write(out)
		w.Close()
	}
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if i := strings.IndexByte(msg, '\n'); i >= 0 {
			msg = msg[:i]
		}
		if msg != "" {
			return fmt.Errorf("%s %s: %w: %s", name, lastArg(args), err, msg)
		}
		return fmt.Errorf("%s %s: %w", name, lastArg(args), err)
	}
	return nil
}

func lastArg(a []string) string {
	if len(a) == 0 {
		return ""
	}
	return a[len(a)-1]
}

// sudoersFile is where flint's sudo rules go (cloud-init uses 90-cloud-init-users).
const sudoersFile = "etc/sudoers.d/90-flint-users"

// decidedUsers reads what the users and ssh-keys handlers both act on:
// the users section, the cloud-config, and the accounts DecideUsers makes
// of them.
func decidedUsers(ctx context.Context, b *Boot) (*userdata.CloudConfig, []UserSpec, error) {
	var cfg usersConfig
	if err := b.Section("users", &cfg); err != nil {
		return nil, nil, err
	}
	ud, err := b.UserData(ctx)
	if err != nil {
		return nil, nil, err
	}
	cc, err := b.CloudConfig(ctx)
	if err != nil {
		return nil, nil, err
	}
	_, usersSet := ud.Config["users"]
	if cfg.DefaultUser == nil {
		cfg.DefaultUser = imageDefaultUser(b)
	}
	specs, err := DecideUsers(EffectiveDefaultUser(cfg.DefaultUser, ud.Config["user"]), cc, usersSet)
	return cc, specs, err
}

func runUsers(ctx context.Context, b *Boot) error {
	cc, specs, err := decidedUsers(ctx, b)
	if err != nil {
		return err
	}
	var pw []userdata.ChpasswdUser
	expire := true
	if cc.Chpasswd != nil {
		pw = append(append(pw, cc.Chpasswd.Users...), cc.Chpasswd.List...)
		if cc.Chpasswd.Expire != nil {
			expire = *cc.Chpasswd.Expire
		}
		for _, p := range pw {
			if p.Type == "RANDOM" {
				return fmt.Errorf("chpasswd: a random password for %s is not supported (flint never prints passwords); give a hash instead", p.Name)
			}
			if !sshkeys.ValidUserName(p.Name) {
				return fmt.Errorf("chpasswd: user name %q is not valid", p.Name)
			}
		}
	}
	groups, err := sshkeys.GroupMembers(b.Root)
	if err != nil {
		return err
	}
	var missingGroups []string
	for _, s := range specs {
		for _, g := range append(slices.Clone(s.Groups), s.PrimaryGroup) {
			if _, ok := groups[g]; g != "" && !ok && !slices.Contains(missingGroups, g) {
				missingGroups = append(missingGroups, g)
			}
		}
	}
	oldSudoers, err := b.Root.ReadFile(sudoersFile, rootfs.InRoot)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	sudoers := SudoersFor(string(oldSudoers), specs)
	for _, g := range missingGroups {
		b.Note("group %s: create", g)
	}
	exists := map[string]bool{}
	for _, s := range specs {
		_, err := sshkeys.LookupUser(b.Root, s.Name)
		if err != nil && !errors.Is(err, sshkeys.ErrNoUser) {
			return err
		}
		if exists[s.Name] = err == nil; exists[s.Name] {
			b.Note("user %s: exists; groups %s", s.Name, strings.Join(s.Groups, ","))
		} else {
			b.Note("user %s: create (groups %s, shell %s)", s.Name, strings.Join(s.Groups, ","), orDefault(s.Shell, "default"))
		}
		if s.LockPasswd {
			b.Note("user %s: password locked (%q: key logins still work)", s.Name, LockedField)
		}
	}
	for _, p := range pw {
		b.Note("chpasswd: set the password of %s", p.Name)
	}
	if sudoers != "" {
		b.Note("sudo rules: %s", sudoersFile)
	}
	if b.DryRun || len(specs)+len(pw) == 0 {
		return nil
	}
	if !b.Live {
		return fmt.Errorf("%d users: %w", len(specs), ErrNotLive)
	}
	for _, g := range missingGroups {
		if err := runTool(ctx, b, "groupadd", []string{g}, nil); err != nil {
			return err
		}
	}
	for _, s := range specs {
		if err := ensureUser(ctx, b, s, exists[s.Name], groups); err != nil {
			return err
		}
	}
	for _, p := range pw {
		// A crypt method bypasses PAM, which does not work under --root.
		args := []string{"--crypt-method", "SHA512"}
		if p.Type == "hash" {
			args = []string{"--encrypted"}
		}
		if err := runTool(ctx, b, "chpasswd", args, []byte(p.Name+":"+p.Password+"\n")); err != nil {
			return fmt.Errorf("chpasswd: setting the password of %s: %w", p.Name, err)
		}
		if expire {
			if err := runTool(ctx, b, "passwd", []string{"--expire", p.Name}, nil); err != nil {
				return err
			}
		}
	}
	if sudoers != "" {
		if err := installSudoers(ctx, b, sudoers); err != nil {
			return err
		}
	}
	return nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// ensureUser creates s or brings an existing account's groups and
// password field in line. members are the group memberships read before
// any change: creating other users and new groups leaves s's own alone.
func ensureUser(ctx context.Context, b *Boot, s UserSpec, exists bool, members map[string][]string) error {
	if !exists {
		args := []string{}
		if s.Gecos != "" {
			args = append(args, "--comment", s.Gecos)
		}
		if s.HomeDir != "" {
			args = append(args, "--home-dir", s.HomeDir)
		}
		if s.PrimaryGroup != "" {
			args = append(args, "--gid", s.PrimaryGroup)
		} else if s.NoUserGroup {
			args = append(args, "--no-user-group")
		} else {
			args = append(args, "--user-group")
		}
		if len(s.Groups) > 0 {
			args = append(args, "--groups", strings.Join(s.Groups, ","))
		}
		if s.Shell != "" {
			args = append(args, "--shell", s.Shell)
		}
		if s.UID != nil {
			args = append(args, "--uid", strconv.FormatInt(*s.UID, 10))
		}
		if s.Expiredate != "" {
			args = append(args, "--expiredate", s.Expiredate)
		}
		if s.Inactive != "" {
			args = append(args, "--inactive", s.Inactive)
		}
		if s.System {
			args = append(args, "--system")
		}
		if s.NoCreateHome || s.System {
			args = append(args, "--no-create-home")
		} else {
			args = append(args, "--create-home")
		}
		if err := runTool(ctx, b, "useradd", append(args, s.Name), nil); err != nil {
			return err
		}
		b.Log.Info("created user", "user", s.Name)
	} else {
		var add []string
		for _, g := range s.Groups {
			if !slices.Contains(members[g], s.Name) {
				add = append(add, g)
			}
		}
		if len(add) > 0 {
			if err := runTool(ctx, b, "usermod", []string{"--append", "--groups", strings.Join(add, ","), s.Name}, nil); err != nil {
				return err
			}
		}
	}
	set := s.HashedPasswd != "" || s.PlainTextPasswd != ""
	if set && !s.LockPasswd {
		args, secret := []string{"--encrypted"}, s.HashedPasswd
		if s.HashedPasswd == "" {
			args, secret = []string{"--crypt-method", "SHA512"}, s.PlainTextPasswd
		}
		if err := runTool(ctx, b, "chpasswd", args, []byte(s.Name+":"+secret+"\n")); err != nil {
			return fmt.Errorf("setting the password of %s: %w", s.Name, err)
		}
	}
	field, err := sshkeys.ShadowField(b.Root, s.Name)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if f := DecidePasswordField(s.LockPasswd, field, set && !s.LockPasswd); f != "" {
		if err := runTool(ctx, b, "usermod", []string{"--password", f, s.Name}, nil); err != nil {
			return err
		}
	}
	return nil
}

// SudoersFor returns the sudoers drop-in with the rules of specs added to
// existing (the file as a previous instance left it): rules already there
// are kept and not repeated, as cloud-init appends to its file. "" means
// nothing to write.
func SudoersFor(existing string, specs []UserSpec) string {
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

// installSudoers checks content with `visudo -cf` and installs it 0440.
// A file that does not pass is not installed: a broken sudoers drop-in
// breaks sudo for everyone.
func installSudoers(ctx context.Context, b *Boot, content string) error {
	visudo, err := lookTool("visudo")
	if err != nil {
		return errors.New("visudo not found: sudo rules were not installed (install sudo in the image)")
	}
	tmp, err := os.CreateTemp("", "flint-sudoers-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(content); err != nil {
		tmp.Close()
		return err
	}
	tmp.Chmod(0o440)
	tmp.Close()
	ctx, cancel := context.WithTimeout(ctx, toolTimeout)
	defer cancel()
	if out, err := exec.CommandContext(ctx, visudo, "-c", "-q", "-f", tmp.Name()).CombinedOutput(); err != nil {
		msg := strings.ReplaceAll(strings.TrimSpace(string(out)), tmp.Name(), sudoersFile)
		if i := strings.IndexByte(msg, '\n'); i >= 0 {
			msg = msg[:i]
		}
		return fmt.Errorf("sudo rules rejected by visudo, not installed: %s", msg)
	}
	if err := b.Root.WriteFile(sudoersFile, []byte(content), rootfs.WriteOptions{Perm: 0o440, Owner: rootfs.Owner{UID: 0, GID: 0}, MkdirPerm: 0o750}); err != nil {
		return err
	}
	if main, err := b.Root.ReadFile("etc/sudoers", rootfs.InRoot); err == nil && !bytes.Contains(main, []byte("includedir /etc/sudoers.d")) {
		b.Log.Warn("etc/sudoers has no @includedir /etc/sudoers.d; the sudo rules are written but not read", "file", sudoersFile)
	}
	return nil
}
