package handlers_test

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/handlers/handlerstest"
	"github.com/flint-dev/flint/internal/testenv"
)

func TestALiveRunWithARootRunsProgramsChrootedInIt(t *testing.T) {
	testenv.Root(t)
	in := newInstance(t)
	b := make([]byte, 6)
	rand.Read(b)
	name := "flint-chroot-" + hex.EncodeToString(b)
	// runcmd, bootcmd and an exec plug-in, each writing /tmp/NAME.*, and
	// showing what they see of /proc, /dev and the root's own files.
	os.MkdirAll(filepath.Join(in.Root, "etc"), 0o755)
	os.WriteFile(filepath.Join(in.Root, "etc/image-marker"), []byte("image\n"), 0o644)
	in.Emu.Set("user-data", []byte("#cloud-config\n"+
		"bootcmd:\n - echo bootcmd > /tmp/"+name+".bootcmd\n"+
		"runcmd:\n - echo $FLINT_ROOT > /tmp/"+name+".runcmd\n"+
		" - cat /etc/image-marker >> /tmp/"+name+".runcmd\n"+
		" - test -r /proc/self/status && test -c /dev/null && echo mounts >> /tmp/"+name+".runcmd\n"))
	in.Plugin(t, "10-x", "#!/bin/sh\necho \"$FLINT_STATE_DIR\" > /tmp/"+name+".plugin\n")
	st := run(t, in, nil)
	for _, h := range []string{"bootcmd", "scripts", "10-x"} {
		if r := handlerstest.Result(st, h); r.Status != handlers.ResultOK {
			t.Errorf("%s: %s (%s)", h, r.Status, r.Reason)
		}
	}
	for suffix, want := range map[string]string{
		"bootcmd": "bootcmd\n",
		"runcmd":  "/\nimage\nmounts\n", // FLINT_ROOT as the program sees it, the image's file, /proc and /dev
		"plugin":  "/var/lib/flint\n",
	} {
		host := "/tmp/" + name + "." + suffix
		if _, err := os.Stat(host); err == nil {
			os.Remove(host)
			t.Errorf("%s was written on the host", host)
		}
		got, err := os.ReadFile(filepath.Join(in.Root, "tmp", name+"."+suffix))
		if err != nil || string(got) != want {
			t.Errorf("ROOT/tmp/%s.%s = %q, %v; want %q", name, suffix, got, err, want)
		}
	}
	// The mounts were the program's own: nothing is left mounted in the root.
	if ents, _ := os.ReadDir(filepath.Join(in.Root, "proc")); len(ents) > 0 {
		t.Error("ROOT/proc is still mounted after the run")
	}
}

func TestALiveRunRefusesARootProgramsCannotRunIn(t *testing.T) {
	for _, tc := range []struct {
		name    string
		make    func(dir string)
		missing string
	}{
		{"an empty directory", func(string) {}, "no /bin/sh, /proc, /sys, /dev inside it"},
		{"a root without a shell", func(d string) {
			testenv.BusyboxRoot(t, d)
			os.Remove(filepath.Join(d, "bin/sh"))
		}, "no /bin/sh inside it"},
		{"a root whose /proc is a link to the host's", func(d string) {
			testenv.BusyboxRoot(t, d)
			os.Remove(filepath.Join(d, "proc"))
			os.Symlink("/proc", filepath.Join(d, "proc"))
		}, "no /proc inside it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.make(dir)
			before, _ := exec.Command("find", dir).Output()
			out, err := exec.Command(testenv.FlintBinary(t), "run", "--root", dir, "--live", "--endpoint", "http://127.0.0.1:9").CombinedOutput()
			if err == nil || strings.Count(string(out), "\n") != 1 || !strings.Contains(string(out), "is not a bootable root: "+tc.missing) || !strings.Contains(string(out), "nothing was run or written") {
				t.Fatalf("flint run --root --live: %v: %q", err, out)
			}
			if after, _ := exec.Command("find", dir).Output(); string(after) != string(before) {
				t.Errorf("the refused run wrote into the root:\n%s", after)
			}
		})
	}
}
