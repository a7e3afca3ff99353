package accounts

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flint-dev/flint/internal/rootfs"
)

func mustRoot(t *testing.T, dir string) *rootfs.Root {
	t.Helper()
	r, err := rootfs.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestLookupUserReadsTheRootsPasswd(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "etc"), 0o755)
	os.WriteFile(filepath.Join(dir, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\nadmin:x:1000:1001:A:/home/admin:/bin/bash\n"), 0o644)
	r := mustRoot(t, dir)
	u, err := LookupUser(r, "admin")
	if err != nil || u.UID != 1000 || u.GID != 1001 || u.Home != "/home/admin" {
		t.Fatalf("%+v %v", u, err)
	}
	if _, err := LookupUser(r, "nobody"); !errors.Is(err, ErrNoUser) {
		t.Fatalf("missing user: %v", err)
	}
}

func TestUserNamesThatCouldEscapeAPathOrFlagAreInvalid(t *testing.T) {
	for name, ok := range map[string]bool{
		"admin": true, "ec2-user": true, "a.b_c": true, "host$": true,
		"": false, "../x": false, "a/b": false, "-rf": false, "..": false, "a b": false, "root\n": false,
	} {
		if ValidName(name) != ok {
			t.Errorf("ValidName(%q) = %v", name, !ok)
		}
	}
}

func TestOwnersResolveThroughTheRootsAccountFiles(t *testing.T) {
	passwd := []byte("root:x:0:0:root:/root:/bin/sh\napp:x:1234:1235::/home/app:/bin/sh\n#bad\nbroken\n")
	group := []byte("root:x:0:\napp:x:1235:\nwww:x:33:app\n")
	for _, tc := range []struct {
		owner string
		want  rootfs.Owner
		err   string
	}{
		{"root:root", rootfs.Owner{UID: 0, GID: 0}, ""},
		{"app:www", rootfs.Owner{UID: 1234, GID: 33}, ""},
		{"app", rootfs.Owner{UID: 1234, GID: -1}, ""},
		{":www", rootfs.Owner{UID: -1, GID: 33}, ""},
		{"1000:1000", rootfs.Owner{UID: 1000, GID: 1000}, ""},
		{"nobody:root", rootfs.NoOwner, `no user "nobody" in the root's etc/passwd`},
		{"app:nogroup", rootfs.NoOwner, `no group "nogroup" in the root's etc/group`},
	} {
		got, err := Parse(passwd, group).Owner(tc.owner)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Owner(%q) = %v, %v; want error %q", tc.owner, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Owner(%q) = %v, %v; want %v", tc.owner, got, err, tc.want)
		}
	}
	// root resolves even in a root without account files (a bare image tree).
	if got, err := Parse(nil, nil).Owner("root:root"); err != nil || got != (rootfs.Owner{}) {
		t.Errorf("root:root without etc/passwd = %v, %v", got, err)
	}
}

func TestPasswdAndGroupAreReadByOneSetOfRules(t *testing.T) {
	passwd := []byte("# comment:x:5:5::/:/bin/sh\n" +
		"root:x:0:0:root:/root:/bin/sh\n" +
		"app:x:1234:1235::/home/app:/bin/sh\n" +
		"app:x:999:999::/srv/app:/bin/false\n" + // a later entry of a name does not count
		"short:x:77:77\n" + // too few fields: not an entry
		"bad:x:zz:1::/:/bin/sh\n")
	group := []byte("root:x:0:\nwww:x:33: app , bob\nwww:x:34:\nodd:x:-1:\n")
	db := Parse(passwd, group)
	if u, err := db.User("app"); err != nil || u.UID != 1234 || u.Home != "/home/app" {
		t.Errorf("app = %+v, %v; want the first entry (uid 1234)", u, err)
	}
	for _, name := range []string{"short", "# comment", "nobody"} {
		if _, err := db.User(name); !errors.Is(err, ErrNoUser) {
			t.Errorf("User(%q) = %v, want ErrNoUser", name, err)
		}
	}
	if _, err := db.User("bad"); err == nil || errors.Is(err, ErrNoUser) || !strings.Contains(err.Error(), "malformed") {
		t.Errorf("User(bad) = %v, want a malformed-entry error", err)
	}
	if _, err := db.Owner("bad"); err == nil || !strings.Contains(err.Error(), "malformed") {
		t.Errorf("Owner(bad) = %v, want a malformed-entry error", err)
	}
	if got := db.Members("www"); strings.Join(got, ",") != "app,bob" {
		t.Errorf("www members %q, want app,bob", got)
	}
	if o, err := db.Owner(":www"); err != nil || o.GID != 33 {
		t.Errorf("Owner(:www) = %v, %v; want the first entry (gid 33)", o, err)
	}
	if !db.HasGroup("odd") || db.HasGroup("nogroup") {
		t.Error("a malformed group is still a group name taken; an absent one is not")
	}
}

func TestUseraddArgsFollowTheAccountsWishes(t *testing.T) {
	uid := int64(1500)
	for _, tc := range []struct {
		name string
		u    NewUser
		want string
	}{
		{"a plain user gets its own group and a home", NewUser{Name: "ann"}, "--user-group --create-home ann"},
		{"a system user gets no home", NewUser{Name: "svc", System: true}, "--user-group --system --no-create-home svc"},
		{"a named primary group replaces the user group", NewUser{Name: "bob", PrimaryGroup: "staff", Groups: []string{"adm", "sudo"}, UID: &uid},
			"--gid staff --groups adm,sudo --uid 1500 --create-home bob"},
		{"no user group when asked", NewUser{Name: "cy", NoUserGroup: true, NoCreateHome: true, Shell: "/bin/sh"}, "--no-user-group --shell /bin/sh --no-create-home cy"},
		{"a locked password field from the start", NewUser{Name: "dee", Password: LockedField}, "--user-group --password * --create-home dee"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := strings.Join(UseraddArgs(tc.u), " "); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
