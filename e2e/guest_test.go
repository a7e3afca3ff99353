package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/imds/imdstest"
	"github.com/flint-dev/flint/internal/testenv"
)

// The guest test boots a Debian 12 image built by
// testdata/fetch-guest-rootfs.sh (cached under $FLINT_CACHE/guest, keyed by
// the script's hash) with Debian's cloud kernel straight from an NVMe root
// (no initramfs), flint installed into it as a user installs it, and the
// emulator on the host's loopback as its IMDS (slirp restrict=on: the
// guest reaches nothing else).
const (
	primaryMAC   = "0e:49:61:0f:c3:11" // the fixture's device-number 0
	secondaryMAC = "0e:7c:1a:44:aa:02" // device-number 1
	guestUser    = "admin"             // Debian's default user
)

// rootfsTarball returns the cached root file system the build script made.
func rootfsTarball(t *testing.T, name string) string {
	t.Helper()
	script, err := os.ReadFile("testdata/fetch-guest-rootfs.sh")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(script)
	p := filepath.Join(cacheDir(), "guest", name+"-"+hex.EncodeToString(sum[:])[:16]+".tar.zst")
	_, err = os.Stat(p)
	testenv.Need(t, err == nil, "needs the guest image "+p+" (sh e2e/testdata/fetch-guest-rootfs.sh, run by make deps)")
	return p
}

func cacheDir() string {
	if c := os.Getenv("FLINT_CACHE"); c != "" {
		return c
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "flint")
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// unpackRoot extracts the image's tree into a new directory.
func unpackRoot(t *testing.T, tarball string) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, "tar", "-C", root, "--numeric-owner", "--xattrs", "-I", "zstd", "-xpf", tarball)
	return root
}

// flintDeb is the package the guest installs (FLINT_DEB, built by make
// packages).
func flintDeb(t *testing.T) string {
	t.Helper()
	deb := os.Getenv("FLINT_DEB")
	testenv.Need(t, deb != "", "needs the package (FLINT_DEB, built by make packages)")
	return deb
}

// installFlint installs flint into the image as a user would: dpkg -i of
// the package in a chroot.
func installFlint(t *testing.T, root, deb string) {
	t.Helper()
	dst := filepath.Join(root, "tmp", filepath.Base(deb))
	run(t, "cp", deb, dst)
	run(t, "chroot", root, "dpkg", "-i", "/tmp/"+filepath.Base(deb))
	os.Remove(dst)
}

// addNICDriver gives the image its NIC driver the way an image's initrd
// does: Debian's cloud kernel has virtio-net as a module, and the image
// has no lib/modules/<release> (the bundle brings that). A unit insmods
// the driver before flint-local looks for the interface.
func addNICDriver(t *testing.T, root string, k kernel) {
	t.Helper()
	dir := filepath.Join(root, "usr/local/lib/nic-modules")
	os.MkdirAll(dir, 0o755)
	var cmds []string
	for _, m := range nicModules {
		b, err := os.ReadFile(filepath.Join(k.modules, m))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(m)), b, 0o644); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, "/sbin/insmod /usr/local/lib/nic-modules/"+filepath.Base(m))
	}
	unit := "[Unit]\nDescription=NIC driver (the image's initrd's part)\nDefaultDependencies=no\nBefore=flint-local.service systemd-udevd.service sysinit.target\n\n" +
		"[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/sh -c '" + strings.Join(cmds, "; ") + "'\n\n[Install]\nWantedBy=sysinit.target\n"
	os.WriteFile(filepath.Join(root, "etc/systemd/system/nic-driver.service"), []byte(unit), 0o644)
	os.Symlink("/etc/systemd/system/nic-driver.service", filepath.Join(root, "etc/systemd/system/sysinit.target.wants/nic-driver.service"))
}

// The image's disk and the volume it is launched on: the root partition
// and its file system end where the image did, a GiB short of the disk,
// as on an instance whose volume is larger than its snapshot.
const (
	imageBytes = 2 << 30
	diskBytes  = 3 << 30
	partStart  = 1 << 20 // sector 2048
)

// makeDisk writes root into an ext4 file system in partition 1 of a GPT
// disk image, then grows the disk (not the partition) to diskBytes.
func makeDisk(t *testing.T, root string) string {
	t.Helper()
	disk := filepath.Join(t.TempDir(), "disk.img")
	run(t, "truncate", "-s", strconv.Itoa(imageBytes), disk)
	cmd := exec.Command("sfdisk", "-q", disk)
	// The image's partition fills it (but for GPT's backup header).
	sectors := (imageBytes - partStart - 33*512) / 512
	cmd.Stdin = strings.NewReader(fmt.Sprintf("label: gpt\nstart=%d, size=%d, type=linux, name=root\n", partStart/512, sectors))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	run(t, "mkfs.ext4", "-q", "-F", "-L", "root", "-d", root, "-E", "offset="+strconv.Itoa(partStart), disk, strconv.Itoa(sectors/2)+"k")
	run(t, "truncate", "-s", strconv.Itoa(diskBytes), disk)
	return disk
}

// imageDF is df's size and use of the image's root file system before
// it boots, in bytes: mounted read-only from the disk image in a mount
// namespace of its own.
func imageDF(t *testing.T, disk string) (size, used int64) {
	t.Helper()
	mnt := t.TempDir()
	out := run(t, "unshare", "-m", "--propagation", "private", "sh", "-c",
		`mount -o ro,noload,loop,offset=$1 "$2" "$3" && df -B1 --output=size,used "$3"`, "sh", strconv.Itoa(partStart), disk, mnt)
	return parseDF(t, out)
}

// parseDF reads `df -B1 --output=size,used`.
func parseDF(t *testing.T, out string) (size, used int64) {
	t.Helper()
	f := strings.Fields(out)
	if len(f) < 2 {
		t.Fatalf("df printed %q", out)
	}
	size, err1 := strconv.ParseInt(f[len(f)-2], 10, 64)
	used, err2 := strconv.ParseInt(f[len(f)-1], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("df printed %q", out)
	}
	return size, used
}

// guestDisk makes a disk of the image in tarball with the NIC driver
// unit and what setup adds to its tree.
func guestDisk(t *testing.T, k kernel, tarball string, setup func(root string)) string {
	t.Helper()
	root := unpackRoot(t, tarball)
	addNICDriver(t, root, k)
	if setup != nil {
		setup(root)
	}
	disk := makeDisk(t, root)
	os.RemoveAll(root) // in the disk now
	return disk
}

// flintConfig writes flint's configuration drop-in for the test.
func flintConfig(t *testing.T, root, yaml string) {
	t.Helper()
	dir := filepath.Join(root, "etc/flint/flint.d")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "50-guest-test.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
}

// vm is a running guest.
type vm struct {
	cmd     *exec.Cmd
	console *lockedBuffer
	sshPort int
	key     string
	user    string
	started time.Time
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startVM boots the disk. Reboots inside the guest restart it in place.
func startVM(t *testing.T, k kernel, disk string, forward map[string]string, key, user string) *vm {
	t.Helper()
	qemu := testenv.Tool(t, "qemu-system-x86_64")
	v := &vm{console: &lockedBuffer{}, sshPort: freePort(t), key: key, user: user}
	netdev := slirpNetdev(forward) + fmt.Sprintf(",hostfwd=tcp:127.0.0.1:%d-:22", v.sshPort)
	args := []string{
		"-machine", "q35", "-accel", accel(), "-cpu", "max", "-m", "1024", "-smp", "2",
		"-nodefaults", "-display", "none", "-serial", "stdio",
		"-kernel", k.vmlinuz,
		"-append", "root=/dev/nvme0n1p1 rw console=ttyS0 panic=-1 loglevel=4",
		"-drive", "file=" + disk + ",if=none,id=d0,format=raw,cache=unsafe",
		"-device", "nvme,drive=d0,serial=flint-root",
		"-netdev", netdev, "-device", "virtio-net-pci,netdev=n0,mac=" + primaryMAC,
		"-netdev", "user,id=n1,restrict=on,net=10.0.2.0/24,host=10.0.2.1,dhcpstart=10.0.2.200",
		"-device", "virtio-net-pci,netdev=n1,mac=" + secondaryMAC,
	}
	v.cmd = exec.Command(qemu, args...)
	v.cmd.Stdout, v.cmd.Stderr = v.console, v.console
	v.started = time.Now()
	if err := v.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if v.cmd.ProcessState == nil {
			v.cmd.Process.Kill()
			v.cmd.Wait()
		}
		if t.Failed() {
			t.Logf("console:\n%s", tail(v.console.String(), 12000))
		}
	})
	return v
}

// ready is flint.service's time from the start of its process to READY=1.
func (v *vm) ready(t *testing.T) time.Duration {
	t.Helper()
	p := parseProps(v.must(t, "sudo -n systemctl show flint -p ExecMainStartTimestampMonotonic -p ActiveEnterTimestampMonotonic"))
	start, _ := strconv.ParseInt(p["ExecMainStartTimestampMonotonic"], 10, 64)
	ready, _ := strconv.ParseInt(p["ActiveEnterTimestampMonotonic"], 10, 64)
	return time.Duration(ready-start) * time.Microsecond
}

// maxIMDSConnections is how many requests flint's IMDS client has in
// flight at most, each on a kept-alive connection of its own.
const maxIMDSConnections = 4

// imdsConnections counts the emulator's requests and the connections
// they came over.
func imdsConnections(emu *imdstest.Server) (requests, conns int) {
	seen := map[string]bool{}
	for _, r := range emu.Log() {
		seen[r.Remote] = true
	}
	return len(emu.Log()), len(seen)
}

// status is flint's status of the last run, as `flint status --json`
// prints it.
func (v *vm) status(t *testing.T) *handlers.Status {
	t.Helper()
	var st handlers.Status
	if out := v.must(t, "sudo -n flint status --json || true"); json.Unmarshal([]byte(out), &st) != nil {
		t.Fatalf("flint status --json printed %q", out)
	}
	return &st
}

// handlerResult is the named handler's result, failing the test without it.
func handlerResult(t *testing.T, st *handlers.Status, name string) handlers.Result {
	t.Helper()
	for _, r := range st.Handlers {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no handler %s in the status", name)
	return handlers.Result{}
}

// poweroff shuts the guest down from inside and waits for QEMU to exit.
// A reboot is a power-off and a new QEMU on the same disk: an in-place
// reboot of a directly loaded kernel under TCG hung in soft lockups on a
// loaded host.
func (v *vm) poweroff(t *testing.T) {
	t.Helper()
	v.ssh("sudo -n systemctl poweroff")
	done := make(chan error, 1)
	go func() { done <- v.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		t.Fatalf("the guest did not power off")
	}
}

// ssh runs a command in the guest as the default user.
func (v *vm) ssh(cmd string) (string, error) {
	c := exec.Command("ssh", "-i", v.key, "-p", strconv.Itoa(v.sshPort),
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
		"-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR", v.user+"@127.0.0.1", cmd)
	out, err := c.CombinedOutput()
	return string(out), err
}

func (v *vm) must(t *testing.T, cmd string) string {
	t.Helper()
	out, err := v.ssh(cmd)
	if err != nil {
		t.Fatalf("guest: %s: %v\n%s", cmd, err, out)
	}
	return out
}

// waitSSH waits for a login whose boot id differs from notBoot and
// returns the boot id.
func (v *vm) waitSSH(t *testing.T, notBoot string, limit time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		out, err := v.ssh("cat /proc/sys/kernel/random/boot_id")
		if id := strings.TrimSpace(out); err == nil && id != notBoot {
			return id
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("no SSH login as %s within %v", v.user, limit)
	return ""
}

// needGuestTools checks what building and booting the guest needs.
func needGuestTools(t *testing.T) {
	t.Helper()
	testenv.Short(t)
	testenv.Root(t)
	for _, tool := range []string{"qemu-system-x86_64", "ssh", "ssh-keygen", "sfdisk", "mkfs.ext4", "zstd", "chroot", "/bin/busybox", "unshare", "mount", "df"} {
		testenv.Tool(t, tool)
	}
}

// guestInstance makes emu the fixture's instance with a key pair made
// for the test (its private half is returned) and a user-data whose
// bootcmd (per boot) and runcmd (per instance) leave counts behind.
func guestInstance(t *testing.T, emu *imdstest.Server) (key string) {
	t.Helper()
	key = filepath.Join(t.TempDir(), "id_ed25519")
	run(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "guest-test", "-f", key)
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	emu.Set("meta-data/public-keys/0=alice/openssh-key", pub)
	emu.Set("user-data", []byte("#cloud-config\nbootcmd:\n  - echo boot >> /var/lib/flint-test-bootcmd\nruncmd:\n  - echo instance >> /var/lib/flint-test-runcmd\n"))
	return key
}

func TestARealSystemdGuestBootsWithFlintAndIsLoggedInto(t *testing.T) {
	needGuestTools(t)
	k := findKernel(t)
	tarball := rootfsTarball(t, "rootfs")
	emu := emulator(t)
	key := guestInstance(t, emu)
	bundle := makeBundle(t, k)
	sum := sha256.Sum256(bundle)
	srv := &guest{forward: map[string]string{}}
	serve := func(guestAddr string, h http.Handler) { srv.serve(t, guestAddr, h) }
	serve(guestIMDSAddr, emu)
	serve("169.254.0.100:8080", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/bundles/"+k.release+"/amd64/aki-0a4a7cd4e1bb2ab4c.tar.gz" {
			http.NotFound(w, r)
			return
		}
		w.Write(bundle)
	}))

	deb := flintDeb(t)
	disk := guestDisk(t, k, tarball, func(root string) {
		installFlint(t, root, deb)
		flintConfig(t, root, bundleConfig(sum[:]))
	})
	dfSize0, dfUsed0 := imageDF(t, disk)

	v := startVM(t, k, disk, srv.forward, key, guestUser)
	boot1 := v.waitSSH(t, "", 10*time.Minute)
	t.Logf("kernel start to first SSH login (flint): %v", time.Since(v.started).Round(100*time.Millisecond))

	t.Run("flint.service ran as Type=notify, did not fail, and sshd started after it", func(t *testing.T) {
		show := v.must(t, "sudo -n systemctl show flint -p Type -p Result -p ActiveState -p ExecMainStartTimestampMonotonic -p ActiveEnterTimestampMonotonic")
		props := parseProps(show)
		if props["Type"] != "notify" || props["Result"] != "success" || props["ActiveState"] != "active" {
			t.Errorf("flint.service: %v", props)
		}
		if out, _ := v.ssh("sudo -n systemctl is-failed flint"); strings.TrimSpace(out) != "active" {
			t.Errorf("systemctl is-failed flint: %q", out)
		}
		ready, _ := strconv.ParseInt(props["ActiveEnterTimestampMonotonic"], 10, 64)
		start, _ := strconv.ParseInt(props["ExecMainStartTimestampMonotonic"], 10, 64)
		ssh := parseProps(v.must(t, "sudo -n systemctl show ssh -p ExecMainStartTimestampMonotonic"))
		sshStart, _ := strconv.ParseInt(ssh["ExecMainStartTimestampMonotonic"], 10, 64)
		if ready == 0 || sshStart < ready {
			t.Errorf("sshd started at %dµs, flint was ready at %dµs", sshStart, ready)
		}
		// Every key type cloud-init makes by default was in place when
		// sshd started: sshd names each host key it cannot load.
		keys := v.must(t, "for t in rsa ecdsa ed25519; do ssh-keygen -l -f /etc/ssh/ssh_host_${t}_key.pub; done; sudo -n journalctl -b -u ssh --no-pager")
		for _, want := range []string{"(RSA)", "(ECDSA)", "(ED25519)", "Server listening"} {
			if !strings.Contains(keys, want) {
				t.Errorf("no %q in the host keys and sshd's log:\n%s", want, keys)
			}
		}
		if strings.Contains(keys, "Unable to load host key") || strings.Contains(keys, "no hostkeys") {
			t.Errorf("sshd started without a host key:\n%s", keys)
		}
		// Made while the network came up, taken by the host-keys handler.
		ahead := v.must(t, "sudo -n journalctl -b -u flint-host-keys --no-pager -o cat; sudo -n ls -A /run/flint")
		if !strings.Contains(ahead, "made host keys rsa, ecdsa, ed25519 ahead of flint run") || strings.Contains(ahead, "host-keys\n") {
			t.Errorf("flint-host-keys.service and /run/flint:\n%s", ahead)
		}
		if out, err := v.ssh("sudo -n flint status --wait"); err != nil {
			t.Errorf("flint status --wait: %v\n%s", err, out)
		}
		st := v.status(t)
		modules := time.Duration(handlerResult(t, st, "kernel-modules").DurationMS * float64(time.Millisecond))
		t.Logf("flint.service: unit start to READY %v with the module bundle fetched and installed (kernel-modules %v of it)",
			time.Duration(ready-start)*time.Microsecond, modules.Round(time.Millisecond))
		// Where the boot's time went, as a person debugging it would look.
		t.Logf("flint analyze (first boot):\n%s", v.must(t, "sudo -n flint analyze"))
	})
	t.Run("growpart and resize-rootfs grew the root partition and its file system online", func(t *testing.T) {
		size, used := parseDF(t, v.must(t, "df -B1 --output=size,used /"))
		part := strings.TrimSpace(v.must(t, "cat /sys/class/block/nvme0n1p1/size"))
		t.Logf("df of /: the image had %d MiB (%d MiB used); the first boot has %d MiB (%d MiB used); partition 1: %s sectors on a %d MiB disk",
			dfSize0>>20, dfUsed0>>20, size>>20, used>>20, part, diskBytes>>20)
		if grown := size - dfSize0; grown < (diskBytes-imageBytes)*9/10 {
			t.Errorf("the file system grew by %d MiB on a disk %d MiB larger than the image", grown>>20, (diskBytes-imageBytes)>>20)
		}
		if n, _ := strconv.ParseInt(part, 10, 64); n*512 < diskBytes-partStart-1<<20 {
			t.Errorf("partition 1 has %s sectors; the disk has %d", part, diskBytes/512)
		}
		st := v.status(t)
		for name, want := range map[string]string{"growpart": "changed: /dev/nvme0n1: gpt partition 1", "resize-rootfs": "resized / (ext4) on /dev/nvme0n1p1 online from"} {
			if r := handlerResult(t, st, name); r.Status != handlers.ResultOK || !strings.Contains(strings.Join(r.Notes, "\n"), want) {
				t.Errorf("%s: %s %v, want a note %q", name, r.Status, r.Notes, want)
			}
		}
		// And online: the partition's file system stayed mounted as /.
		if out := v.must(t, "findmnt -n -o SOURCE,FSTYPE /"); strings.TrimSpace(out) != "/dev/nvme0n1p1 ext4" {
			t.Errorf("/ is %q", out)
		}
	})
	t.Run("the default user logs in with the fixture's key and has passwordless sudo", func(t *testing.T) {
		if out := v.must(t, "id -un; sudo -n true && echo sudo-ok"); !strings.Contains(out, guestUser) || !strings.Contains(out, "sudo-ok") {
			t.Errorf("login: %q", out)
		}
	})
	t.Run("the primary interface came up through flint's fallback configuration", func(t *testing.T) {
		out := v.must(t, "cat /etc/systemd/network/10-flint-primary.network; sudo -n systemctl show flint-local -p Result; ip -o -4 addr show")
		for _, want := range []string{"MACAddress=" + primaryMAC, "Result=success", "169.254.0.15/16"} {
			if !strings.Contains(out, want) {
				t.Errorf("no %q in:\n%s", want, out)
			}
		}
	})
	t.Run("the second ENI got its addresses, table and rules", func(t *testing.T) {
		out := v.must(t, "ip -o -4 addr show; ip rule; ip route show table 10001")
		for _, want := range []string{"10.0.2.40/24", "10.0.2.41", "from 10.0.2.40 lookup 10001", "default via 10.0.2.1"} {
			if !strings.Contains(out, want) {
				t.Errorf("no %q in:\n%s", want, out)
			}
		}
	})
	t.Run("the module bundle for the guest's release is installed and loaded", func(t *testing.T) {
		out := v.must(t, "uname -r; ls /lib/modules/$(uname -r)/; cat /proc/modules")
		if !strings.HasPrefix(out, k.release+"\n") || !strings.Contains(out, "modules.dep") {
			t.Errorf("release and tree:\n%s", out)
		}
		for _, m := range []string{"dummy ", "vxlan "} {
			if !strings.Contains(out, "\n"+m) {
				t.Errorf("module %s is not loaded:\n%s", m, out)
			}
		}
	})
	if len(emu.Log()) == 0 || emu.Log()[0].Method != "PUT" {
		t.Errorf("the emulator saw no token request first: %v", emu.Log())
	}
	// Connections are kept alive: each new one costs a relay process on
	// the host here and a handshake on an instance.
	if n, conns := imdsConnections(emu); conns > maxIMDSConnections {
		t.Errorf("the first boot's %d IMDS requests came over %d connections, want at most %d", n, conns, maxIMDSConnections)
	} else {
		t.Logf("the first boot's %d IMDS requests came over %d connections", n, conns)
	}
	hostKey1 := v.must(t, "cat /etc/ssh/ssh_host_ed25519_key.pub")

	counts := func() string {
		return strings.Join(strings.Fields(v.must(t, "wc -l < /var/lib/flint-test-bootcmd; wc -l < /var/lib/flint-test-runcmd")), " ")
	}
	if c := counts(); c != "1 1" {
		t.Errorf("after the first boot: bootcmd, runcmd ran %s times, want 1 1", c)
	}
	v.poweroff(t)
	v = startVM(t, k, disk, srv.forward, key, guestUser)
	boot2 := v.waitSSH(t, boot1, 10*time.Minute)
	t.Logf("reboot: kernel start to SSH %v; flint.service start to READY %v", time.Since(v.started).Round(100*time.Millisecond), v.ready(t))
	t.Logf("flint analyze (reboot):\n%s", v.must(t, "sudo -n flint analyze"))
	// Grown on the first boot, the root has nothing left to grow.
	st := v.status(t)
	for name, want := range map[string]string{"growpart": "nochange", "resize-rootfs": "already fills /dev/nvme0n1p1"} {
		if r := handlerResult(t, st, name); r.Status != handlers.ResultOK || !strings.Contains(strings.Join(r.Notes, "\n"), want) {
			t.Errorf("reboot: %s: %s %v, want a note %q", name, r.Status, r.Notes, want)
		}
	}
	if c := counts(); c != "2 1" {
		t.Errorf("after a reboot: bootcmd, runcmd ran %s times, want 2 1", c)
	}
	if k := v.must(t, "cat /etc/ssh/ssh_host_ed25519_key.pub"); k != hostKey1 {
		t.Errorf("a reboot changed the host key")
	}
	if p := parseProps(v.must(t, "sudo -n systemctl show flint-host-keys -p ConditionResult -p ExecMainStartTimestampMonotonic")); p["ConditionResult"] != "no" || p["ExecMainStartTimestampMonotonic"] != "0" {
		t.Errorf("reboot: flint-host-keys.service ran: %v", p)
	}

	emu.Set("meta-data/instance-id", []byte("i-0fedcba9876543210"))
	v.poweroff(t)
	v = startVM(t, k, disk, srv.forward, key, guestUser)
	v.waitSSH(t, boot2, 10*time.Minute)
	t.Logf("new instance-id, bundle installed: kernel start to SSH %v; flint.service start to READY %v", time.Since(v.started).Round(100*time.Millisecond), v.ready(t))
	t.Logf("flint analyze (new instance-id):\n%s", v.must(t, "sudo -n flint analyze"))
	if c := counts(); c != "3 2" {
		t.Errorf("after a new instance-id: bootcmd, runcmd ran %s times, want 3 2", c)
	}
	if k := v.must(t, "cat /etc/ssh/ssh_host_ed25519_key.pub"); k == hostKey1 {
		t.Errorf("a new instance kept its host key")
	}
	// is-failed exits 1 for a unit that did not fail: read what it says.
	if out, _ := v.ssh("sudo -n flint status --wait >/dev/null; echo rc=$?; sudo -n systemctl is-failed flint"); !strings.Contains(out, "rc=0\nactive") {
		t.Errorf("status after a new instance-id: %s", out)
	}

	t.Run("dpkg -r and dpkg --purge leave a clean system", func(t *testing.T) {
		v.must(t, "sudo -n dpkg -r flint")
		out, _ := v.ssh("ls /usr/bin/flint /lib/systemd/system/flint*.service /usr/lib/systemd/system/flint*.service /etc/systemd/system/*/flint*.service 2>/dev/null; dpkg-query -W -f='${Status}' flint")
		if strings.Contains(out, "flint") && !strings.Contains(out, "deinstall ok config-files") {
			t.Errorf("after dpkg -r:\n%s", out)
		}
		v.must(t, "sudo -n dpkg --purge flint")
		out, _ = v.ssh("ls -d /etc/flint /usr/bin/flint /lib/systemd/system/flint* /usr/lib/systemd/system/flint* /etc/systemd/system/*/flint* /etc/ssh/sshd_config.d/*flint* 2>/dev/null; dpkg-query -W flint 2>&1")
		if strings.Contains(out, "/") {
			t.Errorf("after dpkg --purge:\n%s", out)
		}
	})
	v.poweroff(t)
}

func parseProps(s string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), "="); ok {
			m[k] = v
		}
	}
	return m
}
