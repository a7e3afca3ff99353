package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestModulesVendorSubcommandsFollowTheUsageConvention(t *testing.T) {
	for _, sub := range []string{"pack"} {
		t.Run(sub+" --help prints usage to stdout and succeeds", func(t *testing.T) {
			code, out, errOut := run("modules", sub, "--help")
			if code != exitOK || !strings.Contains(out, "usage: flint modules "+sub) || errOut != "" {
				t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
			}
		})
		t.Run(sub+" with a bad flag is one line on stderr and exit 2", func(t *testing.T) {
			code, out, errOut := run("modules", sub, "--no-such-flag")
			if code != exitUsage || out != "" || strings.Count(errOut, "\n") != 1 {
				t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
			}
		})
	}
}

func TestModulesPackWritesTheBundleAndTheManifestEntry(t *testing.T) {
	dir := t.TempDir()
	tree := filepath.Join(dir, "6.1.0-99-cloud-amd64")
	os.MkdirAll(filepath.Join(tree, "kernel"), 0o755)
	os.WriteFile(filepath.Join(tree, "kernel", "a.ko"), []byte("a"), 0o644)
	os.Symlink("/usr/src/linux", filepath.Join(tree, "build"))
	out := filepath.Join(dir, "pub", "b.tar.gz")
	os.MkdirAll(filepath.Dir(out), 0o755)
	manifest := filepath.Join(dir, "pub", "manifest.json")
	code, stdout, stderr := run("modules", "pack", tree, "--format", "tar.gz", "-o", out, "--manifest", manifest)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "flint: pack: dropped build -> /usr/src/linux") {
		t.Errorf("the dropped build link is not reported: %q", stderr)
	}
	if !strings.Contains(stdout, "release 6.1.0-99-cloud-amd64, arch amd64, 1 files") || !strings.Contains(stdout, "added the entry") {
		t.Errorf("stdout %q", stdout)
	}
	m, err := os.ReadFile(manifest)
	if err != nil || !strings.Contains(string(m), `"url": "b.tar.gz"`) || !strings.Contains(string(m), `"format": "tar.gz"`) {
		t.Fatalf("manifest %s %v", m, err)
	}
}
