package disks

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flint-dev/flint/internal/testenv"
)

// inMountNamespace re-runs the calling test in a private mount namespace
// made with unshare, so its mounts vanish with it, and reports whether the
// caller is already inside (and should do the work).
func inMountNamespace(t *testing.T) bool {
	t.Helper()
	if os.Getenv("FLINT_DISKS_MOUNTNS") == "1" {
		return true
	}
	testenv.Root(t)
	unshare := testenv.Tool(t, "unshare")
	cmd := exec.Command(unshare, "-m", "--propagation", "private", os.Args[0],
		"-test.run", "^"+t.Name()+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "FLINT_DISKS_MOUNTNS=1")
	out, err := cmd.CombinedOutput()
	t.Logf("in a new mount namespace:\n%s", out)
	if err != nil {
		t.Fatalf("the test failed in its mount namespace: %v", err)
	}
	if bytes.Contains(out, []byte("--- SKIP")) {
		t.Fatalf("the test skipped in its mount namespace")
	}
	return false
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// loopDisk attaches img with partition scanning and returns /dev/loopN.
// A kernel built without partition table parsers (some microVM kernels)
// finds no partitions by itself; partx then adds them from user space with
// BLKPG, as it would for any such disk.
func loopDisk(t *testing.T, img string) string {
	t.Helper()
	dev := run(t, "losetup", "-P", "-f", "--show", img)
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	name := filepath.Base(dev)
	if _, err := os.Stat("/sys/class/block/" + name + "p1"); err != nil {
		exec.Command("partx", "-a", dev).Run() // fails on a disk without a table, which is fine
	}
	return dev
}

// hasCapSysResource reports whether this process holds CAP_SYS_RESOURCE.
func hasCapSysResource(t *testing.T) bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && caps&(1<<24) != 0
		}
	}
	return false
}

func waitNode(t *testing.T, path string) {
	t.Helper()
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(path); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s did not appear", path)
}

func dfSize(t *testing.T, mnt string) int64 {
	t.Helper()
	out := run(t, "df", "-B1", "--output=size", mnt)
	f := strings.Fields(out)
	n, err := strconv.ParseInt(f[len(f)-1], 10, 64)
	if err != nil {
		t.Fatalf("df output %q: %v", out, err)
	}
	return n
}

// TestGrowRootOnALoopDevice grows a mounted root partition and its
// filesystem for real: an image whose partition fills a 320 MiB disk is
// attached as a 512 MiB one, mounted in a private mount namespace, and
// grown by GrowPart and ResizeRootFS as a boot would.
func TestGrowRootOnALoopDevice(t *testing.T) {
	if !inMountNamespace(t) {
		return
	}
	testenv.Tool(t, "losetup")
	testenv.Tool(t, "sfdisk")
	for _, table := range []string{"gpt", "dos"} {
		for _, fs := range []string{"ext4", "xfs", "btrfs"} {
			t.Run(table+" "+fs, func(t *testing.T) {
				mkfs := testenv.Tool(t, "mkfs."+fs)
				img := sfdiskImage(t, 320, 512, "label: "+table+"\n,\n")
				disk := loopDisk(t, img)
				part := disk + "p1"
				waitNode(t, part)
				run(t, mkfs, "-q", part)
				mnt := filepath.Join(t.TempDir(), "root")
				if err := os.Mkdir(mnt, 0o755); err != nil {
					t.Fatal(err)
				}
				run(t, "mount", part, mnt)
				t.Cleanup(func() { exec.Command("umount", mnt).Run() })
				data := make([]byte, 1<<20)
				rand.Read(data)
				if err := os.WriteFile(filepath.Join(mnt, "data"), data, 0o644); err != nil {
					t.Fatal(err)
				}
				before := dfSize(t, mnt)

				env := HostEnv()
				env.Root = t.TempDir()
				res := GrowPart(context.Background(), env, &Growpart{Mode: "auto", Devices: []string{mnt}})
				if len(res) != 1 || res[0].Action != "changed" {
					t.Fatalf("GrowPart = %v, want one change", res)
				}
				t.Log(res[0])
				msg, err := ResizeRootFS(context.Background(), env, nil, mnt)
				if err != nil && fs == "ext4" && !hasCapSysResource(t) {
					// ext4's online resize ioctl demands CAP_SYS_RESOURCE,
					// which an instance's root has and some sandboxes'
					// roots do not. Then the refusal must be one line
					// naming resize2fs, and the grown partition must still
					// be right for ext4: resize2fs offline proves it.
					t.Logf("root lacks CAP_SYS_RESOURCE; ext4 online resize refused as expected: %v", err)
					if !strings.Contains(err.Error(), "resize2fs") || strings.Contains(err.Error(), "\n") {
						t.Errorf("ResizeRootFS error is not one line naming resize2fs: %q", err)
					}
					run(t, "umount", mnt)
					run(t, "e2fsck", "-f", "-y", part)
					run(t, "resize2fs", part)
					run(t, "mount", part, mnt)
				} else if err != nil {
					t.Fatalf("ResizeRootFS: %v", err)
				} else {
					t.Log(msg)
					// ext4 grows with the kernel's online resize alone;
					// the others with their tools.
					if online := strings.Contains(msg, "the kernel's online resize"); online != (fs == "ext4") {
						t.Errorf("%s: %s", fs, msg)
					}
				}

				after := dfSize(t, mnt)
				t.Logf("df size before %d MiB, after %d MiB", before>>20, after>>20)
				if after < before+150<<20 {
					t.Errorf("filesystem grew from %d to %d bytes, want at least 150 MiB more", before, after)
				}
				got, err := os.ReadFile(filepath.Join(mnt, "data"))
				if err != nil || !bytes.Equal(got, data) {
					t.Errorf("data on the grown filesystem changed (err %v)", err)
				}
				sysSize := run(t, "cat", "/sys/class/block/"+filepath.Base(part)+"/size")
				if n, _ := strconv.ParseInt(sysSize, 10, 64); n*512 < 500<<20 {
					t.Errorf("kernel sees partition of %s sectors; BLKPG resize did not take", sysSize)
				}
				if out, err := exec.Command("sfdisk", "--verify", disk).CombinedOutput(); err != nil {
					t.Errorf("sfdisk --verify %s: %v: %s", disk, err, out)
				}
				// Grown once, the next boot finds nothing to do.
				res = GrowPart(context.Background(), env, &Growpart{Mode: "auto", Devices: []string{mnt}})
				if len(res) != 1 || res[0].Action != "nochange" {
					t.Errorf("second GrowPart = %v, want no change", res)
				}
				// An ext filesystem that fills its partition is not handed
				// to resize2fs again; the others' resizers run every boot.
				rec := &recordingRunner{}
				env.Runner = rec
				msg, err = ResizeRootFS(context.Background(), env, nil, mnt)
				if err != nil {
					t.Fatalf("second ResizeRootFS: %v", err)
				}
				if fs == "ext4" && (len(rec.calls) != 0 || !strings.Contains(msg, "nothing to resize")) ||
					fs != "ext4" && len(rec.calls) != 1 {
					t.Errorf("second ResizeRootFS ran %q: %s", rec.calls, msg)
				}
			})
		}
	}
}

// TestGrowRootRefusesAFilesystemOnAWholeDisk: a filesystem made on the
// disk itself (no partition table) is reported and left as it is.
func TestGrowRootRefusesAFilesystemOnAWholeDisk(t *testing.T) {
	if !inMountNamespace(t) {
		return
	}
	img := sfdiskImage(t, 16, 16, "")
	disk := loopDisk(t, img)
	run(t, testenv.Tool(t, "mkfs.ext4"), "-q", disk)
	mnt := t.TempDir()
	run(t, "mount", disk, mnt)
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	env := HostEnv()
	env.Root = t.TempDir()
	res := GrowPart(context.Background(), env, nil)
	_ = res // "/" of the host is whatever it is; only the loop mount is asserted
	res = GrowPart(context.Background(), env, &Growpart{Mode: "auto", Devices: []string{mnt}})
	if len(res) != 1 || res[0].Action != "skipped" || !strings.Contains(res[0].Message, "not a partition") {
		t.Fatalf("GrowPart on a whole-disk filesystem = %v, want skipped: not a partition", res)
	}
}

// recordingRunner records the tools it is asked to run and runs none.
type recordingRunner struct{ calls []string }

func (r *recordingRunner) Run(_ context.Context, name string, args ...string) ([]byte, error) {
	r.calls = append(r.calls, name+" "+strings.Join(args, " "))
	return nil, nil
}
