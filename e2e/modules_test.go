package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/internal/testenv"
)

// bundleModules go into the bundle the guest fetches: vxlan needs two
// others, so loading it exercises the dependency order.
var bundleModules = []string{
	"kernel/drivers/net/dummy.ko",
	"kernel/drivers/net/vxlan/vxlan.ko",
	"kernel/net/ipv4/udp_tunnel.ko",
	"kernel/net/ipv6/ip6_udp_tunnel.ko",
}

// bundleConfig is the flint.yaml part that points the guest at the
// bundle served at 169.254.0.100:8080, by digest.
func bundleConfig(sum []byte) string {
	return fmt.Sprintf(`network:
  # slirp's link is the instance's link here: leave its MTU alone.
  mtu: -1
modules:
  url: http://169.254.0.100:8080/bundles/{release}/{arch}/{kernel_id}.tar.gz
  sha256: %s
  load: [dummy, vxlan]
`, hex.EncodeToString(sum))
}

// makeBundle tars lib/modules/<release>/{those modules, modules.order,
// modules.builtin*} from Debian's package, gzip'd, as a bundle publisher
// would (without modules.dep: flint runs depmod).
func makeBundle(t *testing.T, k kernel) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	base := "lib/modules/" + k.release + "/"
	dirs := map[string]bool{}
	add := func(rel string) {
		b, err := os.ReadFile(filepath.Join(k.modules, rel))
		if err != nil {
			t.Fatal(err)
		}
		for d := filepath.Dir(base + rel); d != "." && !dirs[d]; d = filepath.Dir(d) {
			dirs[d] = true
			tw.WriteHeader(&tar.Header{Name: d + "/", Mode: 0o755, Typeflag: tar.TypeDir})
		}
		tw.WriteHeader(&tar.Header{Name: base + rel, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg})
		tw.Write(b)
	}
	for _, m := range append([]string{"modules.order", "modules.builtin", "modules.builtin.modinfo"}, bundleModules...) {
		add(m)
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

// TestFirstBootInAGuestInstallsAndLoadsTheKernelsModules boots Debian's
// cloud kernel with an initramfs that has no /lib/modules/<release>: the
// real `flint run` reads IMDS at 169.254.169.254 (the emulator, through
// slirp), fetches the bundle, verifies its digest, unpacks it, runs depmod,
// loads dummy and vxlan (with its two dependencies) via finit_module, sets
// the host name and runs the fixture's user-data script.
func TestFirstBootInAGuestInstallsAndLoadsTheKernelsModules(t *testing.T) {
	testenv.Short(t)
	k := findKernel(t)
	g := newGuest(t, k)
	emu := emulator(t)
	g.serve(t, guestIMDSAddr, emu)
	bundle := makeBundle(t, k)
	sum := sha256.Sum256(bundle)
	var bundleGets int
	g.serve(t, "169.254.0.100:8080", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/bundles/"+k.release+"/amd64/aki-0a4a7cd4e1bb2ab4c.tar.gz" {
			http.NotFound(w, r)
			return
		}
		bundleGets++
		w.Write(bundle)
	}))
	if err := g.rd.copyFile("usr/bin/flint", 0o755, testenv.FlintBinary(t)); err != nil {
		t.Fatal(err)
	}
	g.rd.symlink("sbin/depmod", "/bin/busybox")
	g.rd.dir("var/tmp")
	g.rd.file("etc/flint/flint.yaml", 0o644, []byte(fmt.Sprintf(`imds:
  deadline: 90s
handlers:
  # A busybox initramfs has no useradd, sshd or package manager.
  disable: [users, ssh-keys, host-keys, packages]
%s`, bundleConfig(sum[:]))))
	console := g.boot(t, `
flint run; echo "run-exit=$?"
echo ==status==; flint status --json; echo ==end==
echo ==modules==; cat /proc/modules; echo ==end==
echo ==tree==; ls /lib/modules/$(uname -r)/; echo ==end==
echo ==hostname==; cat /proc/sys/kernel/hostname; echo ==end==
echo ==script==; cat /var/tmp/flint-userdata-script; echo ==end==
echo ==again==; flint run >/dev/null 2>&1; flint status --json; echo ==end==
`)
	if !strings.Contains(console, "run-exit=0") {
		t.Errorf("flint run in the guest did not exit 0:\n%s", console)
	}
	var st handlers.Status
	if err := json.Unmarshal([]byte(section(console, "status")), &st); err != nil {
		t.Fatalf("status from the guest: %v\n%s", err, console)
	}
	for _, r := range st.Handlers {
		if r.Status == handlers.ResultFailed {
			t.Errorf("handler %s failed in the guest: %s", r.Name, r.Reason)
		}
	}
	loaded := map[string]bool{}
	for _, l := range strings.Split(section(console, "modules"), "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			loaded[f[0]] = true
		}
	}
	for _, m := range []string{"dummy", "vxlan", "udp_tunnel", "ip6_udp_tunnel"} {
		if !loaded[m] {
			t.Errorf("module %s is not loaded in the guest:\n%s", m, section(console, "modules"))
		}
	}
	if tree := section(console, "tree"); !strings.Contains(tree, "modules.dep") || !strings.Contains(tree, "kernel") {
		t.Errorf("lib/modules/%s in the guest:\n%s", k.release, tree)
	}
	if h := strings.TrimSpace(section(console, "hostname")); h != "web-1" {
		t.Errorf("guest host name %q, want web-1 (from the fixture's cloud-config)", h)
	}
	if s := strings.TrimSpace(section(console, "script")); s != "user-data script ran" {
		t.Errorf("user-data script output %q", s)
	}
	var again handlers.Status
	if err := json.Unmarshal([]byte(section(console, "again")), &again); err != nil {
		t.Fatalf("second status: %v", err)
	}
	for _, r := range again.Handlers {
		if r.Name == "kernel-modules" && !strings.Contains(strings.Join(r.Notes, " "), "is complete") {
			t.Errorf("second run's kernel-modules: %+v", r)
		}
	}
	if bundleGets != 1 {
		t.Errorf("the bundle was fetched %d times, want once", bundleGets)
	}
}
