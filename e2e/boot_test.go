package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/flint-dev/flint/imds/imdstest"
	"github.com/flint-dev/flint/internal/testenv"
)

// nicModules load the guest's virtio NIC from the initramfs, as an image's
// initrd does: everything else comes from the bundle flint installs.
var nicModules = []string{
	"kernel/drivers/virtio/virtio_ring.ko",
	"kernel/drivers/virtio/virtio.ko",
	"kernel/drivers/virtio/virtio_pci_modern_dev.ko",
	"kernel/drivers/virtio/virtio_pci_legacy_dev.ko",
	"kernel/drivers/virtio/virtio_pci.ko",
	"kernel/net/core/failover.ko",
	"kernel/drivers/net/net_failover.ko",
	"kernel/drivers/net/virtio_net.ko",
}

// busyboxApplets are linked into the initramfs's /bin.
var busyboxApplets = []string{"sh", "mount", "ip", "insmod", "poweroff", "cat", "echo", "ls", "sleep", "mkdir", "uname", "grep", "find"}

// kernel is Debian's cloud kernel, unpacked by modules/testdata/fetch-kernel.sh.
type kernel struct {
	release string
	vmlinuz string
	modules string // the package's lib/modules/<release>
	cache   string
}

func findKernel(t *testing.T) kernel {
	t.Helper()
	cache := os.Getenv("FLINT_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "flint")
	}
	dir := filepath.Join(cache, "kernel")
	rel, err := os.ReadFile(filepath.Join(dir, "release"))
	testenv.Need(t, err == nil, "needs Debian's cloud kernel in "+dir+" (sh modules/testdata/fetch-kernel.sh, run by make deps)")
	k := kernel{release: strings.TrimSpace(string(rel)), cache: dir}
	k.vmlinuz = filepath.Join(dir, "pkg/boot/vmlinuz-"+k.release)
	k.modules = filepath.Join(dir, "pkg/lib/modules", k.release)
	_, err = os.Stat(k.vmlinuz)
	testenv.Need(t, err == nil, "needs "+k.vmlinuz)
	return k
}

// guest is one QEMU boot: the initramfs to build, the host-side services the
// guest reaches through slirp's guestfwd (never anything off the host).
type guest struct {
	k       kernel
	rd      *initramfs
	forward map[string]string // guest "ip:port" → host "127.0.0.1:port"
	macs    []string
}

func newGuest(t *testing.T, k kernel) *guest {
	t.Helper()
	g := &guest{k: k, rd: newInitramfs(), forward: map[string]string{}}
	busybox := "/bin/busybox"
	_, err := os.Stat(busybox)
	testenv.Need(t, err == nil, "needs busybox-static (/bin/busybox)")
	if err := g.rd.copyFile("bin/busybox", 0o755, busybox); err != nil {
		t.Fatal(err)
	}
	for _, a := range busyboxApplets {
		g.rd.symlink("bin/"+a, "busybox")
	}
	for _, m := range nicModules {
		if err := g.rd.copyFile("boot-modules/"+filepath.Base(m), 0o644, filepath.Join(k.modules, m)); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"proc", "sys", "dev", "run", "tmp", "etc", "lib/modules", "var/lib", "root"} {
		g.rd.dir(d)
	}
	g.rd.file("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\n"))
	g.rd.file("etc/group", 0o644, []byte("root:x:0:\n"))
	return g
}

// guestIMDSAddr is where the guest finds the metadata service. It exists
// only inside the guest's slirp network: guestfwd relays it to a listener
// on the host's loopback, and nothing on the host dials it.
const guestIMDSAddr = "169.254.169.254:80"

// slirpNetdev is the guest's first NIC: user-mode networking with
// restrict=on (nothing off the host is reachable) and a guestfwd relay
// for each guest-side address in forward to its host loopback listener.
func slirpNetdev(forward map[string]string) string {
	// slirp only forwards to addresses inside its network: make that the
	// link-local /16, as on an instance, with the gateway at .0.2.
	netdev := "user,id=n0,restrict=on,net=169.254.0.0/16,host=169.254.0.2,dns=169.254.0.3,dhcpstart=169.254.0.15"
	// A "tcp:" target would be one chardev connection that every guest
	// connection shares (their bytes interleave); "cmd:" starts a relay per
	// guest connection, and the relay only ever dials the host's loopback.
	for guestAddr, host := range forward {
		h, p, _ := strings.Cut(host, ":")
		netdev += ",guestfwd=tcp:" + guestAddr + "-cmd:/bin/busybox nc " + h + " " + p
	}
	return netdev
}

// serve starts an HTTP server on the host's loopback and makes it reach-
// able from the guest at guestAddr.
func (g *guest) serve(t *testing.T, guestAddr string, h http.Handler) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	g.forward[guestAddr] = ln.Addr().String()
}

// initScript is /init: bring the NIC up from the initramfs's modules, run
// the body, print markers the test parses, power off.
func initScript(body string) string {
	var b strings.Builder
	b.WriteString("#!/bin/sh\n")
	b.WriteString("mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev; mount -t tmpfs run /run\n")
	b.WriteString("export PATH=/usr/bin:/bin\n")
	for _, m := range nicModules {
		fmt.Fprintf(&b, "insmod /boot-modules/%s || echo FLINT-E2E-INSMOD-FAILED %s\n", filepath.Base(m), filepath.Base(m))
	}
	b.WriteString("ip link set lo up\n")
	b.WriteString("for i in 1 2 3 4 5 6 7 8 9 10; do ip link show eth0 >/dev/null 2>&1 && break; sleep 0.2; done\n")
	b.WriteString("ip link set eth0 up; ip addr add 169.254.0.15/16 dev eth0; ip route add default via 169.254.0.2\n")
	b.WriteString("echo FLINT-E2E-BEGIN\n")
	b.WriteString(body)
	b.WriteString("\necho FLINT-E2E-END\npoweroff -f\n")
	return b.String()
}

// boot runs QEMU (TCG unless /dev/kvm works) until the guest powers off and
// returns the console output.
func (g *guest) boot(t *testing.T, body string) string {
	t.Helper()
	qemu := testenv.Tool(t, "qemu-system-x86_64")
	g.rd.file("init", 0o755, []byte(initScript(body)))
	dir := t.TempDir()
	var img bytes.Buffer
	if err := g.rd.write(&img); err != nil {
		t.Fatal(err)
	}
	initrd := filepath.Join(dir, "initrd.cpio")
	if err := os.WriteFile(initrd, img.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	netdev := slirpNetdev(g.forward)
	mac := "0e:49:61:0f:c3:11"
	if len(g.macs) > 0 {
		mac = g.macs[0]
	}
	args := []string{
		"-machine", "q35", "-accel", accel(), "-cpu", "max", "-m", "768", "-smp", "1",
		"-nodefaults", "-no-reboot", "-display", "none", "-serial", "stdio",
		"-kernel", g.k.vmlinuz, "-initrd", initrd,
		"-append", "console=ttyS0 panic=-1 rdinit=/init loglevel=4",
		"-netdev", netdev, "-device", "virtio-net-pci,netdev=n0,mac=" + mac,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, qemu, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	begin := time.Now()
	err := cmd.Run()
	t.Logf("guest ran %v", time.Since(begin).Round(time.Millisecond))
	console := out.String()
	if err != nil || !strings.Contains(console, "FLINT-E2E-END") || strings.Contains(console, "FLINT-E2E-INSMOD-FAILED") {
		t.Fatalf("qemu: %v\nconsole:\n%s", err, tail(console, 6000))
	}
	_, after, _ := strings.Cut(console, "FLINT-E2E-BEGIN")
	body2, _, _ := strings.Cut(after, "FLINT-E2E-END")
	return strings.ReplaceAll(body2, "\r\n", "\n")
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// accel prefers KVM when it can run guests, else TCG.
func accel() string {
	if f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0); err == nil {
		f.Close()
		if os.Getenv("FLINT_E2E_KVM") == "1" {
			return "kvm"
		}
	}
	return "tcg"
}

func section(console, name string) string {
	re := regexp.MustCompile(`(?s)==` + regexp.QuoteMeta(name) + `==\n(.*?)==end==`)
	m := re.FindStringSubmatch(console)
	if m == nil {
		return ""
	}
	return m[1]
}

func emulator(t *testing.T) *imdstest.Server {
	tree, err := imdstest.ParseFixture(imdstest.DefaultFixture)
	if err != nil {
		t.Fatal(err)
	}
	emu := imdstest.New(tree, imdstest.Options{V2Only: true})
	t.Cleanup(emu.Close)
	return emu
}

func TestGuestReachesTheEmulatorThroughTheLinkLocalAddress(t *testing.T) {
	testenv.Short(t)
	k := findKernel(t)
	g := newGuest(t, k)
	emu := emulator(t)
	g.serve(t, guestIMDSAddr, emu)
	if err := g.rd.copyFile("usr/bin/flint", 0o755, testenv.FlintBinary(t)); err != nil {
		t.Fatal(err)
	}
	console := g.boot(t, "echo ==id==; flint get meta-data/instance-id; echo ==end==; echo ==uname==; uname -r; echo ==end==")
	if got := strings.TrimSpace(section(console, "id")); got != "i-0123456789abcdef0" {
		t.Errorf("instance id from the guest: %q\n%s", got, console)
	}
	if got := strings.TrimSpace(section(console, "uname")); got != k.release {
		t.Errorf("guest kernel %q, want %q", got, k.release)
	}
	if log := emu.Log(); len(log) < 2 || log[0].Method != "PUT" {
		t.Errorf("emulator log %v", log)
	}
}
