package accounts

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/flint-dev/flint/internal/testenv"
)

// debianGroups is a Debian 12 minbase image's etc/group, up to _ssh.
const debianGroups = "root:x:0:\ndaemon:x:1:\nbin:x:2:\nsys:x:3:\nadm:x:4:\ntty:x:5:\ndisk:x:6:\n" +
	"sudo:x:27:\naudio:x:29:\nvideo:x:44:\nplugdev:x:46:\nstaff:x:50:\nusers:x:100:\nnogroup:x:65534:\n" +
	"systemd-journal:x:999:\n_ssh:x:105:\n"

// accountTree writes an image's group files: group, gshadow (one line
// per group), login.defs and what else is given, with the owners and
// modes Debian gives them, and times in the past.
func accountTree(t *testing.T, group, loginDefs string, extra map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	etc := filepath.Join(dir, "etc")
	os.MkdirAll(etc, 0o755)
	var gshadow strings.Builder
	for _, line := range strings.Split(group, "\n") {
		if name, _, ok := strings.Cut(line, ":"); ok {
			gshadow.WriteString(name + ":*::\n")
		}
	}
	files := map[string]string{"group": group, "gshadow": gshadow.String(), "login.defs": loginDefs,
		"passwd": "root:x:0:0:root:/root:/bin/bash\n", "os-release": "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n"}
	for k, v := range extra {
		files[k] = v
	}
	old := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for name, content := range files {
		p := filepath.Join(etc, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, old, old)
	}
	os.Chown(filepath.Join(etc, "gshadow"), 0, 42)
	os.Chmod(filepath.Join(etc, "gshadow"), 0o640)
	return dir
}

// copyTree copies an account tree, times, owners and modes kept.
func copyTree(t *testing.T, dir string) string {
	t.Helper()
	dst := t.TempDir()
	if out, err := exec.Command("cp", "-a", dir+"/.", dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	return dst
}

// fileFacts is what a reader of an account file sees of it.
func fileFacts(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		return "missing"
	}
	var st unix.Stat_t
	unix.Lstat(p, &st)
	facts := string(b) + "|" + os.FileMode(st.Mode&0o7777).String() + "|" + strconv.Itoa(int(st.Uid)) + ":" + strconv.Itoa(int(st.Gid))
	if strings.HasSuffix(p, "-") {
		facts += "|mtime " + time.Unix(st.Mtim.Unix()).UTC().Format(time.RFC3339)
	}
	return facts
}

// The groups flint writes are the ones the image's groupadd writes: the
// same GID, lines, backups (content, owner, mode, times), owners and
// modes, byte for byte, in each of the cases groupadd chooses a GID
// differently; nothing is left of the locks.
func TestGroupsAreWrittenAsTheImagesGroupaddWritesThem(t *testing.T) {
	testenv.Root(t)
	groupadd := testenv.Tool(t, "groupadd")
	defs := "GID_MIN 1000\nGID_MAX 60000\n"
	for _, tt := range []struct {
		name, group, defs string
		add               []string
		noGshadow         bool
	}{
		{"a Debian image's netdev", debianGroups, defs, []string{"netdev"}, false},
		{"above the highest in the range", debianGroups + "a:x:1000:\nb:x:1500:\nc:x:70000:\n", defs, []string{"dev"}, false},
		{"the highest is GID_MAX: the lowest free", debianGroups + "a:x:1000:\nb:x:1001:\nc:x:60000:\n", defs, []string{"dev"}, false},
		{"several at once", debianGroups, defs, []string{"netdev", "docker", "wheel"}, false},
		{"no newline at the end", strings.TrimSuffix(debianGroups, "\n"), defs, []string{"netdev"}, false},
		{"login.defs moves the range", debianGroups, "# comment\nGID_MIN\t\t 2000\nGID_MAX 3000\n", []string{"netdev"}, false},
		{"no login.defs values", debianGroups, "", []string{"netdev"}, false},
		{"no gshadow", debianGroups, defs, []string{"netdev"}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			theirs := accountTree(t, tt.group, tt.defs, nil)
			if tt.noGshadow {
				os.Remove(filepath.Join(theirs, "etc/gshadow"))
			}
			ours, pristine := copyTree(t, theirs), copyTree(t, theirs)
			for _, n := range tt.add {
				if out, err := exec.Command(groupadd, "--root", theirs, n).CombinedOutput(); err != nil {
					t.Fatalf("groupadd %s: %v %s", n, err, out)
				}
			}
			made, err := addGroups(context.Background(), mustRoot(t, ours), tt.add)
			if err != nil {
				t.Fatal(err)
			}
			if len(made) != len(tt.add) {
				t.Fatalf("made %+v", made)
			}
			for _, f := range []string{"group", "gshadow", "group-", "gshadow-"} {
				want, got := fileFacts(t, filepath.Join(theirs, "etc", f)), fileFacts(t, filepath.Join(ours, "etc", f))
				if backup, ok := strings.CutSuffix(f, "-"); ok && len(tt.add) > 1 {
					// groupadd ran once a group; flint writes them at
					// once, the backup is the file before all of them.
					want = fileFacts(t, filepath.Join(pristine, "etc", backup)) + "|mtime 2026-01-02T03:04:05Z"
				}
				if got != want {
					t.Errorf("etc/%s:\n got %q\nwant %q", f, got, want)
				}
			}
			for _, g := range made {
				if !strings.Contains(fileFacts(t, filepath.Join(ours, "etc/group")), "\n"+g.Name+":x:"+strconv.Itoa(g.GID)+":\n") {
					t.Errorf("made %+v, not what etc/group says", g)
				}
			}
			entries, _ := os.ReadDir(filepath.Join(ours, "etc"))
			for _, e := range entries {
				if strings.HasSuffix(e.Name(), ".lock") && e.Name() != ".pwd.lock" || strings.HasSuffix(e.Name(), "+") || strings.Contains(e.Name(), "flint-tmp") ||
					strings.Contains(e.Name(), "."+strconv.Itoa(os.Getpid())) {
					t.Errorf("left behind: etc/%s", e.Name())
				}
			}
		})
	}
}

// Where groupadd would do more than write the files, the image's tool is
// asked for: nothing is written.
func TestGroupsNeedGroupaddWhereTheImageAsksForMore(t *testing.T) {
	for _, tt := range []struct {
		name  string
		group string
		extra map[string]string
		add   string
	}{
		{"groups from LDAP", debianGroups, map[string]string{"nsswitch.conf": "passwd: files\ngroup:          files ldap\n"}, "netdev"},
		{"nscd's cache", debianGroups, map[string]string{"../usr/sbin/nscd": "#!/bin/sh\n"}, "netdev"},
		{"NIS lines", debianGroups + "+:::\n", nil, "netdev"},
		{"a stale gshadow entry", debianGroups, map[string]string{"gshadow": "netdev:!::\n"}, "netdev"},
		{"a name outside the portable set", debianGroups, nil, "Dev.Ops"},
		{"a comment line", debianGroups + "#oldg:x:1500:\n", nil, "netdev"},
		{"a line with an extra field", debianGroups + "odd:x:1500::\n", nil, "netdev"},
		{"a login.defs number with a comment", debianGroups, map[string]string{"login.defs": "GID_MIN 2000 # mine\n"}, "netdev"},
		{"not a Debian-family image", debianGroups, map[string]string{"os-release": "ID=fedora\n"}, "netdev"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := accountTree(t, tt.group, "", tt.extra)
			before := fileFacts(t, filepath.Join(dir, "etc/group"))
			_, err := addGroups(context.Background(), mustRoot(t, dir), []string{tt.add})
			var use errUseTool
			if !errors.As(err, &use) {
				t.Fatalf("got %v, want groupadd asked for", err)
			}
			t.Log(err)
			if after := fileFacts(t, filepath.Join(dir, "etc/group")); after != before {
				t.Errorf("etc/group changed: %q", after)
			}
			if _, err := os.Stat(filepath.Join(dir, "etc/group-")); err == nil {
				t.Error("a backup was written")
			}
		})
	}
	t.Run("an SELinux label", func(t *testing.T) {
		testenv.Root(t)
		dir := accountTree(t, debianGroups, "", nil)
		if err := unix.Setxattr(filepath.Join(dir, "etc/group"), "security.selinux", []byte("system_u:object_r:passwd_file_t:s0\x00"), 0); err != nil {
			t.Fatal(err)
		}
		var use errUseTool
		if _, err := addGroups(context.Background(), mustRoot(t, dir), []string{"netdev"}); !errors.As(err, &use) {
			t.Fatalf("got %v, want groupadd asked for", err)
		}
		if strings.Contains(fileFacts(t, filepath.Join(dir, "etc/group")), "netdev") {
			t.Error("etc/group written")
		}
	})
	t.Run("no etc/group", func(t *testing.T) {
		dir := accountTree(t, debianGroups, "", nil)
		os.Remove(filepath.Join(dir, "etc/group"))
		var use errUseTool
		if _, err := addGroups(context.Background(), mustRoot(t, dir), []string{"netdev"}); !errors.As(err, &use) {
			t.Fatalf("got %v, want groupadd asked for", err)
		}
	})
	t.Run("systemd's groups are not other groups", func(t *testing.T) {
		dir := accountTree(t, debianGroups, "", map[string]string{"nsswitch.conf": "group: files [SUCCESS=merge] systemd # comment ldap\n"})
		if _, err := addGroups(context.Background(), mustRoot(t, dir), []string{"netdev"}); err != nil {
			t.Fatal(err)
		}
	})
}

// An existing group is an error (as groupadd's), a lock another live
// process holds (shadow's group.lock, lckpwdf's .pwd.lock) is waited for
// or refused with the holder named, a lock a dead process left is taken
// over; a refusal writes nothing.
func TestGroupLocksAndExistingGroups(t *testing.T) {
	ctx := context.Background()
	dir := accountTree(t, debianGroups, "", nil)
	if _, err := addGroups(ctx, mustRoot(t, dir), []string{"sudo"}); err == nil || !strings.Contains(err.Error(), "group 'sudo' already exists") {
		t.Fatalf("existing group: %v", err)
	}

	// A live holder: this test's parent process, which outlives the test.
	lock := filepath.Join(dir, "etc/group.lock")
	os.WriteFile(lock, []byte(strconv.Itoa(os.Getppid())+"\x00"), 0o600)
	_, err := addGroups(ctx, mustRoot(t, dir), []string{"netdev"})
	if err == nil || !strings.Contains(err.Error(), "locked by process "+strconv.Itoa(os.Getppid())) {
		t.Fatalf("live lock: %v", err)
	}
	if strings.Contains(fileFacts(t, filepath.Join(dir, "etc/group")), "netdev") {
		t.Fatal("written under another process's lock")
	}
	// One without a pid: not taken over, as the tools do not.
	os.WriteFile(lock, nil, 0o600)
	if _, err := addGroups(ctx, mustRoot(t, dir), []string{"netdev"}); err == nil || !strings.Contains(err.Error(), "without a process id") {
		t.Fatalf("a lock without a pid: %v", err)
	}
	if strings.Contains(fileFacts(t, filepath.Join(dir, "etc/group")), "netdev") {
		t.Fatal("written under a lock without a pid")
	}
	// A dead one: a process that has exited.
	dead := exec.Command("true")
	dead.Run()
	os.WriteFile(lock, []byte(strconv.Itoa(dead.Process.Pid)+"\x00"), 0o600)
	if _, err := addGroups(ctx, mustRoot(t, dir), []string{"netdev"}); err != nil {
		t.Fatalf("stale lock: %v", err)
	}
	if _, err := os.Stat(lock); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the stale lock is still there: %v", err)
	}

	// lckpwdf's lock, held by another process (fcntl locks are per
	// process): waited for until the run's context ends, nothing written;
	// taken once the holder is gone.
	py := testenv.Tool(t, "python3")
	holder := exec.Command(py, "-c", "import fcntl,sys,time\nf=open(sys.argv[1],'w')\nfcntl.lockf(f,fcntl.LOCK_EX)\nprint('locked',flush=True)\ntime.sleep(60)\n",
		filepath.Join(dir, "etc/.pwd.lock"))
	out, _ := holder.StdoutPipe()
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer holder.Process.Kill()
	if line, _ := bufio.NewReader(out).ReadString('\n'); line != "locked\n" {
		t.Fatalf("the lock holder said %q", line)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := addGroups(short, mustRoot(t, dir), []string{"docker"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("with .pwd.lock held: %v", err)
	}
	if strings.Contains(fileFacts(t, filepath.Join(dir, "etc/group")), "docker") {
		t.Fatal("written under another process's .pwd.lock")
	}
	holder.Process.Kill()
	holder.Wait()
	if made, err := addGroups(ctx, mustRoot(t, dir), []string{"docker"}); err != nil || len(made) != 1 {
		t.Fatalf("after the holder is gone: %+v %v", made, err)
	}
}
