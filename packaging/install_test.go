package packaging

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/flint-dev/flint/internal/testenv"
)

// debFile returns the .deb under test: $FLINT_DEB (make test builds it
// with make packages), else one built here from FLINT_BIN with this
// package's builder, as make packages does.
func debFile(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("FLINT_DEB"); p != "" {
		return p
	}
	bin := testenv.FlintBinary(t)
	top, cmds, err := CollectHelp(context.Background(), bin)
	if err != nil {
		t.Fatal(err)
	}
	gen := t.TempDir()
	page, _ := Gzip(ManPage("0.0.1", time.Unix(0, 0), top, cmds))
	changelog, _ := Gzip([]byte(Changelog("0.0.1", time.Unix(0, 0))))
	for name, data := range map[string][]byte{"flint.8.gz": page, "copyright": []byte(Copyright), "changelog.gz": changelog} {
		if err := os.WriteFile(filepath.Join(gen, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b := Build{Format: "deb", Version: "0.0.1", Arch: "amd64", Binary: bin, Src: ".", Gen: gen, MTime: time.Unix(0, 0)}
	path := filepath.Join(t.TempDir(), b.FileName())
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := b.Write(f); err != nil {
		t.Fatal(err)
	}
	return path
}

// imageRoot makes a throwaway root that dpkg can install into and whose
// maintainer scripts run chrooted in it: busybox as the shell and its
// tools, an empty dpkg database, the directories an image with systemd has.
func imageRoot(t *testing.T) string {
	t.Helper()
	root := testenv.BusyboxRoot(t, t.TempDir())
	for _, d := range []string{"etc/systemd/system", "var/lib/dpkg/info", "var/lib/dpkg/updates", "var/log", "run"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(root, "var/lib/dpkg/status"), nil, 0o644)
	return root
}

// dpkg runs dpkg against the root (its database and, chrooted, its
// maintainer scripts) and returns what it printed.
func dpkg(t *testing.T, root string, args ...string) string {
	t.Helper()
	cmd := exec.Command(testenv.Tool(t, "dpkg"), append([]string{"--root=" + root, "--force-not-root"}, args...)...)
	cmd.Env = append(os.Environ(), "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND=noninteractive")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// tree lists every path below root (dpkg's own database left out) with
// what it is: a digest of a file, a link's target, or "dir".
func tree(t *testing.T, root string) map[string]string {
	t.Helper()
	m := map[string]string{}
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "var/lib/dpkg" {
			return filepath.SkipDir
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			m[rel] = "-> " + target
		case d.IsDir():
			m[rel] = "dir"
		default:
			data, _ := os.ReadFile(p)
			m[rel] = fmt.Sprintf("%s %x", fi(d).Mode(), sha256.Sum256(data))
		}
		return nil
	})
	return m
}

func fi(d fs.DirEntry) fs.FileInfo {
	info, _ := d.Info()
	return info
}

// diffTrees says what differs between two trees, one line per path.
func diffTrees(before, after map[string]string) string {
	var lines []string
	for p, v := range after {
		if w, ok := before[p]; !ok {
			lines = append(lines, "+ "+p)
		} else if w != v {
			lines = append(lines, "~ "+p)
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			lines = append(lines, "- "+p)
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func readlink(t *testing.T, p string) string {
	t.Helper()
	s, err := os.Readlink(p)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDebInstallsEnablesWithoutStartingAndPurgeLeavesTheRootAsItWas(t *testing.T) {
	testenv.Root(t)
	deb := debFile(t)
	root := imageRoot(t)
	before := tree(t, root)

	dpkg(t, root, "-i", deb)
	for _, p := range []string{"usr/bin/flint", "usr/lib/systemd/system/flint.service", "usr/lib/systemd/system/flint-network.service", "usr/lib/systemd/system/flint-host-keys.service",
		"etc/flint/flint.yaml", "etc/ssh/sshd_config.d/99-flint.conf", "usr/share/man/man8/flint.8.gz", "usr/share/doc/flint/copyright"} {
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Errorf("installed package lacks %s: %v", p, err)
		}
	}
	// Enabled as `systemctl enable` would for WantedBy=multi-user.target.
	if got := readlink(t, filepath.Join(root, "etc/systemd/system/multi-user.target.wants/flint.service")); got != "/usr/lib/systemd/system/flint.service" {
		t.Errorf("flint.service wants link points at %q", got)
	}
	// The early stage brings the primary interface up before networking.
	if got := readlink(t, filepath.Join(root, "etc/systemd/system/sysinit.target.wants/flint-local.service")); got != "/usr/lib/systemd/system/flint-local.service" {
		t.Errorf("flint-local.service wants link points at %q", got)
	}
	for _, u := range []string{"flint-network.service", "flint-events.service"} {
		if _, err := os.Lstat(filepath.Join(root, "etc/systemd/system/multi-user.target.wants", u)); err == nil {
			t.Errorf("%s was enabled; it is opt-in", u)
		}
		if _, err := os.Stat(filepath.Join(root, "usr/lib/systemd/system", u)); err != nil {
			t.Errorf("the package lacks %s: %v", u, err)
		}
	}
	if got := readlink(t, filepath.Join(root, "usr/bin/ec2-metadata")); got != "flint" {
		t.Errorf("ec2-metadata link points at %q, want flint", got)
	}
	// Never started: nothing flint writes when it runs exists.
	for _, p := range []string{"var/lib/flint", "run/flint", "var/log/flint-output.log"} {
		if _, err := os.Lstat(filepath.Join(root, p)); err == nil {
			t.Errorf("installing the package ran flint: %s exists", p)
		}
	}

	// An administrator's edit of the conffile survives a reinstall.
	conf := filepath.Join(root, "etc/flint/flint.yaml")
	edited := []byte("log:\n  level: debug\n")
	os.WriteFile(conf, edited, 0o644)
	dpkg(t, root, "--force-confold", "-i", deb)
	if got, _ := os.ReadFile(conf); !bytes.Equal(got, edited) {
		t.Errorf("reinstall replaced the edited %s:\n%s", conf, got)
	}

	// What a boot leaves, for purge to take away.
	os.MkdirAll(filepath.Join(root, "var/lib/flint/instances/i-1/sem"), 0o700)
	os.MkdirAll(filepath.Join(root, "run/flint"), 0o755)
	os.WriteFile(filepath.Join(root, "run/flint/status.json"), []byte("{}"), 0o644)
	os.WriteFile(filepath.Join(root, "var/log/flint-output.log"), []byte("x"), 0o640)
	os.MkdirAll(filepath.Join(root, "etc/flint/handlers.d"), 0o755)

	dpkg(t, root, "-r", "flint")
	for _, p := range []string{"usr/bin/flint", "usr/bin/ec2-metadata", "usr/lib/systemd/system/flint.service",
		"etc/systemd/system/multi-user.target.wants/flint.service", "etc/systemd/system/sysinit.target.wants/flint-local.service",
		"usr/share/man/man8/flint.8.gz"} {
		if _, err := os.Lstat(filepath.Join(root, p)); err == nil {
			t.Errorf("dpkg -r left %s", p)
		}
	}
	if _, err := os.Stat(conf); err != nil {
		t.Errorf("dpkg -r removed the conffile (purge's job): %v", err)
	}
	dpkg(t, root, "--purge", "flint")
	if d := diffTrees(before, tree(t, root)); d != "" {
		t.Errorf("after dpkg --purge the root differs from before the install:\n%s", d)
	}
}

func TestDebLeavesAnotherPackagesEc2MetadataAlone(t *testing.T) {
	testenv.Root(t)
	deb := debFile(t)
	root := imageRoot(t)
	// amazon-ec2-utils' ec2-metadata, installed by dpkg from a package of
	// that name: the host's real script when it has one.
	script := []byte("#!/bin/sh\necho ec2-metadata of amazon-ec2-utils\n")
	if data, err := os.ReadFile("/usr/bin/ec2-metadata"); err == nil && !bytes.HasPrefix(data, []byte("\x7fELF")) {
		script = data
	}
	pkg := t.TempDir()
	os.MkdirAll(filepath.Join(pkg, "DEBIAN"), 0o755)
	os.MkdirAll(filepath.Join(pkg, "usr/bin"), 0o755)
	os.WriteFile(filepath.Join(pkg, "DEBIAN/control"), []byte("Package: amazon-ec2-utils\nVersion: 2.0-1\nArchitecture: all\nMaintainer: test <test@example.com>\nDescription: stand-in\n"), 0o644)
	os.WriteFile(filepath.Join(pkg, "usr/bin/ec2-metadata"), script, 0o755)
	utils := filepath.Join(t.TempDir(), "amazon-ec2-utils.deb")
	if out, err := exec.Command(testenv.Tool(t, "dpkg-deb"), "--root-owner-group", "-b", pkg, utils).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -b: %v\n%s", err, out)
	}
	dpkg(t, root, "-i", utils)
	before := tree(t, root)

	out := dpkg(t, root, "-i", deb)
	if !strings.Contains(out, "/usr/bin/ec2-metadata is another package's") {
		t.Errorf("install did not say it left ec2-metadata alone:\n%s", out)
	}
	check := func(when string) {
		t.Helper()
		fi, err := os.Lstat(filepath.Join(root, "usr/bin/ec2-metadata"))
		if err != nil || !fi.Mode().IsRegular() {
			t.Fatalf("%s: amazon-ec2-utils' ec2-metadata is gone or replaced (%v, %v)", when, fi, err)
		}
		if got, _ := os.ReadFile(filepath.Join(root, "usr/bin/ec2-metadata")); !bytes.Equal(got, script) {
			t.Errorf("%s: amazon-ec2-utils' ec2-metadata was changed", when)
		}
	}
	check("after install")
	if owner := dpkg(t, root, "-S", "/usr/bin/ec2-metadata"); !strings.HasPrefix(owner, "amazon-ec2-utils:") {
		t.Errorf("dpkg -S /usr/bin/ec2-metadata: %s", owner)
	}
	dpkg(t, root, "--purge", "flint")
	check("after purge")
	if d := diffTrees(before, tree(t, root)); d != "" {
		t.Errorf("installing and purging flint changed the root:\n%s", d)
	}
}
