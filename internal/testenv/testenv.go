// Package testenv decides whether a test that needs the machine (root, a tool,
// a network namespace, QEMU) can run here. Locally such a test is skipped
// with a reason; when FLINT_REQUIRE_ALL=1 (set by CI) a missing prerequisite
// fails the test instead, so nothing that should run is skipped silently.
package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/vishvananda/netns"
)

// RequireAll reports whether missing prerequisites must fail tests.
func RequireAll() bool { return os.Getenv("FLINT_REQUIRE_ALL") == "1" }

// Need skips (or, under FLINT_REQUIRE_ALL=1, fails) the test when ok is false.
func Need(t testing.TB, ok bool, reason string) {
	t.Helper()
	if ok {
		return
	}
	if RequireAll() {
		t.Fatalf("prerequisite missing (FLINT_REQUIRE_ALL=1): %s", reason)
	}
	t.Skipf("skipped: %s (set up the machine with 'make deps' to run it)", reason)
}

// Root requires the test to run as root.
func Root(t testing.TB) {
	t.Helper()
	Need(t, os.Geteuid() == 0, "needs root")
}

// Tool requires an executable on PATH (or at an absolute path) and returns its path.
func Tool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	Need(t, err == nil, "needs "+name+" installed")
	return p
}

// SSHD requires root and Debian's sshd and returns its path, with sshd's
// privilege separation directory (/run/sshd) present: sshd -t and -T refuse
// to check a configuration without it, and a machine where sshd has never
// run (a fresh CI machine, a container) has none.
func SSHD(t testing.TB) string {
	t.Helper()
	Root(t)
	sshd := Tool(t, "/usr/sbin/sshd")
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatal(err)
	}
	return sshd
}

// Short skips long tests under -short; it never fails, since -short is a
// developer's explicit choice and CI does not pass it.
func Short(t testing.TB) {
	t.Helper()
	if testing.Short() {
		if RequireAll() {
			t.Fatalf("-short given with FLINT_REQUIRE_ALL=1")
		}
		t.Skip("skipped in -short mode")
	}
}

// Netns creates a named network namespace (holding only a down lo) that is
// deleted when the test ends, and returns its name. Commands run inside it
// with "ip netns exec NAME ..."; Go code runs inside it with Do.
func Netns(t testing.TB) string {
	t.Helper()
	Root(t)
	ip := Tool(t, "ip")
	b := make([]byte, 4)
	rand.Read(b)
	name := "flint-t-" + hex.EncodeToString(b)
	if out, err := exec.Command(ip, "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() { exec.Command(ip, "netns", "del", name).Run() })
	if out, err := exec.Command(ip, "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("ip -n %s link set lo up: %v: %s", name, err, out)
	}
	return name
}

// Do runs fn on an OS thread that has entered the named network namespace.
// Sockets created in fn (listeners, netlink handles) stay bound to that
// namespace after fn returns. The thread is discarded afterwards rather than
// returned to the scheduler in a foreign namespace.
func Do(t testing.TB, name string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	var setupErr error
	go func() {
		defer close(done)
		runtime.LockOSThread()
		// Deliberately no UnlockOSThread: the thread dies with the goroutine.
		h, err := netns.GetFromName(name)
		if err != nil {
			setupErr = err
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			setupErr = err
			return
		}
		fn()
	}()
	<-done
	if setupErr != nil {
		t.Fatalf("enter netns %s: %v", name, setupErr)
	}
}

var (
	flintOnce sync.Once
	flintPath string
	flintErr  error
)

// FlintBinary returns the path of a flint binary for whole-process tests:
// $FLINT_BIN when set (the Makefile builds one), else one built once per
// test process from this checkout.
func FlintBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("FLINT_BIN"); p != "" {
		if abs, err := filepath.Abs(p); err == nil {
			return abs
		}
		return p
	}
	flintOnce.Do(func() {
		dir, err := os.MkdirTemp("", "flint-bin-")
		if err != nil {
			flintErr = err
			return
		}
		flintPath = filepath.Join(dir, "flint")
		cmd := exec.Command("go", "build", "-o", flintPath, "github.com/flint-dev/flint/cmd/flint")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			flintErr = fmt.Errorf("go build ./cmd/flint: %v: %s", err, out)
		}
	})
	if flintErr != nil {
		t.Fatal(flintErr)
	}
	return flintPath
}

// BusyboxRoot turns dir into a minimal root that programs can run
// chrooted in: busybox-static as /bin/busybox with a link for each of its
// applets (/bin/sh among them), and the /proc, /sys, /dev, /tmp mount
// points. It returns dir.
func BusyboxRoot(t testing.TB, dir string) string {
	t.Helper()
	bb := Tool(t, "busybox")
	out, err := exec.Command(bb, "--list").Output()
	if err != nil {
		t.Fatalf("busybox --list: %v", err)
	}
	for _, d := range []string{"bin", "proc", "sys", "dev", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// A copy, never a hard link: a test that writes into its root must
	// not be able to write the host's busybox.
	data, err := os.ReadFile(bb)
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "bin/busybox"), data, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range strings.Fields(string(out)) {
		if a != "busybox" {
			os.Symlink("busybox", filepath.Join(dir, "bin", a))
		}
	}
	return dir
}
