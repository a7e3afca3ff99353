package accounts

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/flint-dev/flint/internal/testenv"
)

// debianUserFiles are a Debian 12 image's account files and the
// settings useradd reads, trimmed to what decides its work.
func debianUserFiles() map[string]string {
	return map[string]string{
		"passwd": "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n" +
			"nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\nsshd:x:101:65534::/run/sshd:/usr/sbin/nologin\n",
		"shadow": "root:*:20425:0:99999:7:::\ndaemon:*:20425:0:99999:7:::\nnobody:*:20425:0:99999:7:::\nsshd:!:20425::::::\n",
		"group":  debianGroups + "dialout:x:20:\ncdrom:x:24:\nfloppy:x:25:\ndip:x:30:\nnetdev:x:1000:\n",
		"login.defs": "MAIL_DIR        /var/mail\nUMASK\t\t022\n#HOME_MODE\t0700\nPASS_MAX_DAYS\t99999\nPASS_MIN_DAYS\t0\nPASS_WARN_AGE\t7\n" +
			"UID_MIN\t\t\t 1000\nUID_MAX\t\t\t60000\nGID_MIN\t\t\t 1000\nGID_MAX\t\t\t60000\n" +
			"SUB_UID_MIN\t\t   100000\nSUB_UID_MAX\t\t600100000\nSUB_UID_COUNT\t\t    65536\n" +
			"SUB_GID_MIN\t\t   100000\nSUB_GID_MAX\t\t600100000\nSUB_GID_COUNT\t\t    65536\nENCRYPT_METHOD SHA512\n",
		"default/useradd": "# Default values for useradd(8)\n#\nSHELL=/bin/sh\n#\n# CREATE_MAIL_SPOOL=no\n",
		"subuid":          "",
		"subgid":          "",
		"skel/.bashrc":    "# ~/.bashrc\n",
		"skel/.profile":   "# ~/.profile\n",
	}
}

// userTree is an image's root for useradd: accountTree's files with the
// user ones over them, /home, empty lastlog and faillog.
func userTree(t *testing.T, files map[string]string, drop ...string) string {
	t.Helper()
	dir := accountTree(t, files["group"], files["login.defs"], files)
	for _, d := range drop {
		os.RemoveAll(filepath.Join(dir, "etc", d))
	}
	os.Chmod(filepath.Join(dir, "etc/shadow"), 0o640)
	os.Chown(filepath.Join(dir, "etc/shadow"), 0, 42)
	os.Chmod(filepath.Join(dir, "etc/skel/.profile"), 0o600)
	for _, sh := range []string{"bin/sh", "bin/bash"} {
		os.MkdirAll(filepath.Join(dir, "bin"), 0o755)
		os.WriteFile(filepath.Join(dir, sh), []byte("#!\n"), 0o755)
	}
	for _, p := range []string{"home", "var/log", "var/mail"} {
		os.MkdirAll(filepath.Join(dir, p), 0o755)
	}
	for _, p := range []string{"var/log/lastlog", "var/log/faillog"} {
		os.WriteFile(filepath.Join(dir, p), nil, 0o644)
	}
	return dir
}

// treeFacts lists a directory's tree: each entry's type, mode, owner,
// content and modification time (but the top directory's).
func treeFacts(t *testing.T, dir string) string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			out = append(out, "missing")
			return nil
		}
		var st unix.Stat_t
		unix.Lstat(p, &st)
		rel, _ := filepath.Rel(dir, p)
		line := fmt.Sprintf("%s %o %d:%d", rel, st.Mode, st.Uid, st.Gid)
		if rel != "." {
			line += " mtime " + time.Unix(st.Mtim.Unix()).UTC().Format(time.RFC3339)
		}
		if d.Type().IsRegular() {
			b, _ := os.ReadFile(p)
			line += fmt.Sprintf(" %q", b)
		}
		out = append(out, line)
		return nil
	})
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// The accounts flint makes are the ones the image's useradd makes, with
// the options flint gives it: the same UID and user group, passwd,
// shadow, group and gshadow lines and memberships, subordinate ranges,
// backups, and home (mode, owner, the skeleton's files with their modes
// and times), in each of the cases useradd decides differently.
func TestUsersAreMadeAsTheImagesUseraddMakesThem(t *testing.T) {
	testenv.Root(t)
	useradd := testenv.Tool(t, "useradd")
	def := NewUser{Name: "admin", Gecos: "Debian", Shell: "/bin/bash", Password: LockedField,
		Groups: []string{"adm", "audio", "cdrom", "dialout", "dip", "floppy", "netdev", "plugdev", "sudo", "video"}}
	with := func(change func(map[string]string)) map[string]string {
		f := debianUserFiles()
		change(f)
		return f
	}
	for _, tt := range []struct {
		name  string
		files map[string]string
		drop  []string
		user  NewUser
	}{
		{"Debian's default user", debianUserFiles(), nil, def},
		{"the UID and its GID taken", with(func(f map[string]string) {
			f["passwd"] += "bob:x:1000:1000::/home/bob:/bin/sh\n"
			f["group"] += "bob:x:1001:\n"
			f["shadow"] += "bob:!:20000:0:99999:7:::\n"
		}), nil, def},
		{"the UID free as a GID", with(func(f map[string]string) {
			f["passwd"] += "bob:x:1004:1004::/home/bob:/bin/sh\n"
			f["shadow"] += "bob:!:20000:0:99999:7:::\n"
		}), nil, def},
		{"members already, subordinate ranges with a hole", with(func(f map[string]string) {
			f["group"] = strings.Replace(f["group"], "sudo:x:27:", "sudo:x:27:bob,carol", 1)
			f["subuid"] = "bob:100000:65536\ncarol:231072:65536\n"
			f["subgid"] = "bob:100000:65536\ncarol:165536:65536\n"
		}), nil, def},
		{"no gshadow, subuid or subgid", debianUserFiles(), []string{"gshadow", "subuid", "subgid"}, def},
		{"HOME_MODE and a home elsewhere", with(func(f map[string]string) {
			f["login.defs"] += "HOME_MODE 0750\n"
		}), nil, NewUser{Name: "alice", HomeDir: "/var", Shell: "/bin/sh", Groups: []string{"users"}}},
		{"no home, useradd's own shell and password field", debianUserFiles(), nil, NewUser{Name: "svc", NoCreateHome: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			u := tt.user
			if u.HomeDir == "/var" {
				u.HomeDir = "/var/alice"
			}
			theirs := userTree(t, tt.files, tt.drop...)
			ours, pristine := copyTree(t, theirs), copyTree(t, theirs)
			if out, err := exec.Command(useradd, append([]string{"--root", theirs}, UseraddArgs(u)...)...).CombinedOutput(); err != nil {
				t.Fatalf("useradd: %v %s", err, out)
			}
			uid, gid, home, err := addUser(context.Background(), mustRoot(t, ours), u, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if want, err := LookupUser(mustRoot(t, theirs), u.Name); err != nil || uid != want.UID || gid != want.GID || home != want.Home {
				t.Errorf("addUser said UID %d, GID %d, home %s; useradd made %+v (%v)", uid, gid, home, want, err)
			}
			for _, f := range []string{"passwd", "shadow", "group", "gshadow", "subuid", "subgid", "passwd-", "shadow-", "group-", "gshadow-", "subuid-", "subgid-"} {
				want, got := fileFacts(t, filepath.Join(theirs, "etc", f)), fileFacts(t, filepath.Join(ours, "etc", f))
				if got != want {
					t.Errorf("etc/%s:\n got %q\nwant %q", f, got, want)
				}
			}
			home = strings.TrimPrefix(home, "/")
			if want, got := treeFacts(t, filepath.Join(theirs, home)), treeFacts(t, filepath.Join(ours, home)); got != want {
				t.Errorf("the home:\n got %s\nwant %s", got, want)
			}
			for _, d := range []string{"var/log", "var/mail"} {
				if want, got := treeFacts(t, filepath.Join(theirs, d)), treeFacts(t, filepath.Join(ours, d)); got != want {
					t.Errorf("%s:\n got %s\nwant %s", d, got, want)
				}
			}
			if u.NoCreateHome {
				if _, err := os.Stat(filepath.Join(ours, home)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("a home was made: %v", err)
				}
			}
			if fileFacts(t, filepath.Join(pristine, "etc/passwd")) == fileFacts(t, filepath.Join(ours, "etc/passwd")) {
				t.Error("etc/passwd unchanged")
			}
			entries, _ := os.ReadDir(filepath.Join(ours, "etc"))
			for _, e := range entries {
				if strings.HasSuffix(e.Name(), ".lock") && e.Name() != ".pwd.lock" || strings.HasSuffix(e.Name(), "+") || strings.Contains(e.Name(), "flint-tmp") {
					t.Errorf("left behind: etc/%s", e.Name())
				}
			}
		})
	}
}

// Where useradd would do more than flint models, or refuse, the image's
// useradd is asked for: nothing is written, no home made.
func TestUsersNeedUseraddWhereTheImageAsksForMore(t *testing.T) {
	def := NewUser{Name: "admin", Shell: "/bin/bash", Groups: []string{"sudo"}}
	for _, tt := range []struct {
		name   string
		change func(dir string)
		user   NewUser
	}{
		{"a system account", nil, NewUser{Name: "svc", System: true}},
		{"a given UID", nil, NewUser{Name: "svc", UID: new(int64)}},
		{"the user exists", func(dir string) { appendFile(dir, "etc/passwd", "admin:x:1500:1500::/home/admin:/bin/sh\n") }, def},
		{"its group exists", func(dir string) { appendFile(dir, "etc/group", "admin:x:1500:\n") }, def},
		{"a missing supplementary group", nil, NewUser{Name: "admin", Groups: []string{"wheel"}}},
		{"the home exists", func(dir string) { os.MkdirAll(filepath.Join(dir, "home/admin"), 0o755) }, def},
		{"a directory in the skeleton", func(dir string) { os.MkdirAll(filepath.Join(dir, "etc/skel/.config"), 0o755) }, def},
		{"a symlink in the skeleton", func(dir string) { os.Symlink(".bashrc", filepath.Join(dir, "etc/skel/.bash_profile")) }, def},
		{"lastlog records", func(dir string) { os.WriteFile(filepath.Join(dir, "var/log/lastlog"), make([]byte, 292), 0o644) }, def},
		{"subordinate ranges out of order", func(dir string) {
			os.WriteFile(filepath.Join(dir, "etc/subuid"), []byte("carol:231072:65536\nbob:100000:65536\n"), 0o644)
		}, def},
		{"a mail spool", func(dir string) { appendFile(dir, "etc/default/useradd", "CREATE_MAIL_SPOOL=yes\n") }, def},
		{"a shell the image does not have", nil, NewUser{Name: "admin", Shell: "/bin/zsh"}},
		{"no shell anywhere", func(dir string) { os.WriteFile(filepath.Join(dir, "etc/default/useradd"), nil, 0o644) }, NewUser{Name: "admin"}},
		{"a GECOS field with a colon", nil, NewUser{Name: "admin", Gecos: "a:b"}},
		{"an SELinux label on passwd", func(dir string) {
			unix.Setxattr(filepath.Join(dir, "etc/passwd"), "security.selinux", []byte("system_u:object_r:passwd_file_t:s0\x00"), 0)
		}, def},
		{"a comment line in passwd", func(dir string) { appendFile(dir, "etc/passwd", "#old:x:1500:1500::/home/old:/bin/sh\n") }, def},
		{"a group line with an extra field", func(dir string) { appendFile(dir, "etc/group", "odd:x:1500::\n") }, def},
		{"a member list with an empty member", func(dir string) { replaceIn(dir, "etc/group", "sudo:x:27:", "sudo:x:27:bob,") }, def},
		{"an id not in plain decimal", func(dir string) { replaceIn(dir, "etc/group", "sudo:x:27:", "sudo:x:027:") }, def},
		{"a comment in subuid", func(dir string) {
			os.WriteFile(filepath.Join(dir, "etc/subuid"), []byte("# sub ids\nbob:100000:65536\n"), 0o644)
		}, def},
		{"a login.defs number with a comment", func(dir string) { replaceIn(dir, "etc/login.defs", "UID_MIN\t\t\t 1000", "UID_MIN 2000 # mine") }, def},
		{"HOME with a trailing slash", func(dir string) { appendFile(dir, "etc/default/useradd", "HOME=/home/\n") }, def},
		{"a quoted SHELL", func(dir string) {
			os.WriteFile(filepath.Join(dir, "etc/default/useradd"), []byte("SHELL=\"/bin/sh\"\n"), 0o644)
		}, NewUser{Name: "admin"}},
		{"a NUL in the GECOS", nil, NewUser{Name: "admin", Gecos: "a\x00b", Shell: "/bin/bash"}},
		{"subordinate ids from a library", func(dir string) { appendFile(dir, "etc/nsswitch.conf", "subid: sss\n") }, def},
		{"users from LDAP", func(dir string) { appendFile(dir, "etc/nsswitch.conf", "passwd: files ldap\n") }, def},
		{"not a Debian-family image", func(dir string) { os.WriteFile(filepath.Join(dir, "etc/os-release"), []byte("ID=fedora\n"), 0o644) }, def},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if strings.Contains(tt.name, "SELinux") {
				testenv.Root(t) // security.* attributes need CAP_SYS_ADMIN
			}
			dir := userTree(t, debianUserFiles())
			if tt.change != nil {
				tt.change(dir)
			}
			before := fileFacts(t, filepath.Join(dir, "etc/passwd")) + fileFacts(t, filepath.Join(dir, "etc/group"))
			_, _, _, err := addUser(context.Background(), mustRoot(t, dir), tt.user, time.Now())
			var use errUseTool
			if !errors.As(err, &use) || use.tool != "useradd" {
				t.Fatalf("got %v, want useradd asked for", err)
			}
			t.Log(err)
			if after := fileFacts(t, filepath.Join(dir, "etc/passwd")) + fileFacts(t, filepath.Join(dir, "etc/group")); after != before {
				t.Errorf("changed: %q", after)
			}
			if tt.name != "the home exists" {
				if _, err := os.Stat(filepath.Join(dir, "home", tt.user.Name)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("a home was made: %v", err)
				}
			}
		})
	}
}

func replaceIn(dir, rel, old, new string) {
	p := filepath.Join(dir, rel)
	b, _ := os.ReadFile(p)
	if !strings.Contains(string(b), old) {
		panic(rel + " has no " + old)
	}
	os.WriteFile(p, []byte(strings.Replace(string(b), old, new, 1)), 0o644)
}

func appendFile(dir, rel, s string) {
	f, _ := os.OpenFile(filepath.Join(dir, rel), os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
	f.WriteString(s)
	f.Close()
}
