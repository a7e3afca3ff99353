package accounts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/flint-dev/flint/internal/rootfs"
)

// NewUser is an account for useradd to create.
type NewUser struct {
	Name, Gecos, HomeDir, PrimaryGroup, Shell string
	Groups                                    []string
	UID                                       *int64
	Expiredate, Inactive                      string
	System, NoCreateHome, NoUserGroup         bool
	// Password is the shadow password field to create the account with
	// (LockedField; never a secret, which goes to chpasswd on stdin), or
	// "" for useradd's own.
	Password string
}

// UseraddArgs is the useradd command line that creates u (without
// --root): its own group unless it names one or asks for none, a home
// unless it is a system account or asks for none.
func UseraddArgs(u NewUser) []string {
	args := []string{}
	if u.Gecos != "" {
		args = append(args, "--comment", u.Gecos)
	}
	if u.HomeDir != "" {
		args = append(args, "--home-dir", u.HomeDir)
	}
	if u.PrimaryGroup != "" {
		args = append(args, "--gid", u.PrimaryGroup)
	} else if u.NoUserGroup {
		args = append(args, "--no-user-group")
	} else {
		args = append(args, "--user-group")
	}
	if len(u.Groups) > 0 {
		args = append(args, "--groups", strings.Join(u.Groups, ","))
	}
	if u.Shell != "" {
		args = append(args, "--shell", u.Shell)
	}
	if u.UID != nil {
		args = append(args, "--uid", strconv.FormatInt(*u.UID, 10))
	}
	if u.Expiredate != "" {
		args = append(args, "--expiredate", u.Expiredate)
	}
	if u.Inactive != "" {
		args = append(args, "--inactive", u.Inactive)
	}
	if u.Password != "" {
		args = append(args, "--password", u.Password)
	}
	if u.System {
		args = append(args, "--system")
	}
	if u.NoCreateHome || u.System {
		args = append(args, "--no-create-home")
	} else {
		args = append(args, "--create-home")
	}
	return append(args, u.Name)
}

// LookTool finds a tool: on PATH, else in the sbin and bin directories
// (flint may run with a PATH that has no sbin).
func LookTool(name string) (string, error) {
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

// ToolTimeout bounds one run of an account tool.
const ToolTimeout = time.Minute

// Tools runs the image's shadow tools (useradd, usermod, groupadd,
// chpasswd, passwd) on a root. Every one takes --root: it chroots and
// uses the root's own passwd, group, shadow and login.defs.
type Tools struct {
	Root *rootfs.Root
	// Output, if set, receives a tool's output; never that of a tool
	// given a secret on stdin.
	Output func(tool string) io.WriteCloser
	// Look finds a tool (nil: LookTool).
	Look func(name string) (string, error)
}

// Run runs an account tool and returns an error carrying the tool's first
// line of complaint. stdin (passwords) is never logged.
func (t Tools) Run(ctx context.Context, name string, args []string, stdin []byte) error {
	look := t.Look
	if look == nil {
		look = LookTool
	}
	p, err := look(name)
	if err != nil {
		return fmt.Errorf("%s not found: install the image's account tools (passwd/shadow-utils) or create users another way", name)
	}
	if !t.Root.IsHost() {
		args = append([]string{"--root", t.Root.Dir()}, args...)
	}
	ctx, cancel := context.WithTimeout(ctx, ToolTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, p, args...)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"}
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if t.Output != nil && len(out) > 0 && stdin == nil {
		w := t.Output(name)
		w.Write(out)
		w.Close()
	}
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if i := strings.IndexByte(msg, '\n'); i >= 0 {
			msg = msg[:i]
		}
		if msg != "" {
			return fmt.Errorf("%s %s: %w: %s", name, args[len(args)-1], err, msg)
		}
		return fmt.Errorf("%s %s: %w", name, args[len(args)-1], err)
	}
	return nil
}

// AddGroups creates the groups, none of which exists yet: written
// directly as groupadd writes them where that is the same (addGroups),
// else with the image's groupadd, one at a time. It returns the groups
// made, with their GIDs (-1 when groupadd chose it), up to an error.
func (t Tools) AddGroups(ctx context.Context, names []string) ([]NewGroup, error) {
	if len(names) == 0 {
		return nil, nil
	}
	made, err := addGroups(ctx, t.Root, names)
	var tool errUseTool
	if !errors.As(err, &tool) {
		return made, err
	}
	made = nil
	for _, n := range names {
		if err := t.Run(ctx, "groupadd", []string{n}, nil); err != nil {
			return made, err
		}
		made = append(made, NewGroup{Name: n, GID: -1})
	}
	return made, nil
}

// MadeUser is an account AddUser made: its ids and home (-1 and "" when
// useradd chose them).
type MadeUser struct {
	UID, GID int
	Home     string
}

// AddUser creates u: written directly as useradd writes it where that
// is the same (addUser), else with the image's useradd.
func (t Tools) AddUser(ctx context.Context, u NewUser) (MadeUser, error) {
	uid, gid, home, err := addUser(ctx, t.Root, u, time.Now())
	var tool errUseTool
	if !errors.As(err, &tool) {
		return MadeUser{UID: uid, GID: gid, Home: home}, err
	}
	return MadeUser{UID: -1, GID: -1}, t.Run(ctx, "useradd", UseraddArgs(u), nil)
}

// AppendGroups adds user to groups, keeping the groups it is in.
func (t Tools) AppendGroups(ctx context.Context, user string, groups []string) error {
	return t.Run(ctx, "usermod", []string{"--append", "--groups", strings.Join(groups, ","), user}, nil)
}

// SetPassword sets user's password with chpasswd: a crypt hash as given,
// or a plain text one hashed with SHA-512 (a crypt method bypasses PAM,
// which does not work under --root). The secret goes on stdin only.
func (t Tools) SetPassword(ctx context.Context, user, secret string, hashed bool) error {
	args := []string{"--crypt-method", "SHA512"}
	if hashed {
		args = []string{"--encrypted"}
	}
	return t.Run(ctx, "chpasswd", args, []byte(user+":"+secret+"\n"))
}

// SetPasswordField writes user's shadow password field (LockedField).
func (t Tools) SetPasswordField(ctx context.Context, user, field string) error {
	return t.Run(ctx, "usermod", []string{"--password", field, user}, nil)
}

// Expire makes user change the password at the next login.
func (t Tools) Expire(ctx context.Context, user string) error {
	return t.Run(ctx, "passwd", []string{"--expire", user}, nil)
}
