package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// flint local --host-keys on an image tree: keys made into the root's
// run/flint/host-keys where the image has sshd and no instance's keys;
// nothing, with the reason, where the config disables the handler or a
// boot already made keys for an instance; a second run on the same boot
// leaves the first one's keys.
func TestLocalHostKeysMakesKeysOnlyForANewInstance(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc/ssh"), 0o755)
	os.MkdirAll(filepath.Join(root, "etc/flint"), 0o755)
	cfg := filepath.Join(root, "etc/flint/flint.yaml")
	os.WriteFile(cfg, []byte("host_keys:\n  types: [ed25519]\n"), 0o644)

	code, out, stderr := run("local", "--host-keys", "--root", root)
	if code != 0 || !strings.Contains(out, "made host keys ed25519 ahead of flint run") {
		t.Fatalf("exit %d\n%s%s", code, out, stderr)
	}
	dir := filepath.Join(root, "run/flint/host-keys")
	if _, err := os.Stat(filepath.Join(dir, "ed25519")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "rsa")); !os.IsNotExist(err) {
		t.Errorf("an rsa key was made though flint.yaml asks for ed25519 only: %v", err)
	}
	key, _ := os.ReadFile(filepath.Join(dir, "ed25519"))
	code, out, _ = run("local", "--host-keys", "--root", root)
	if again, _ := os.ReadFile(filepath.Join(dir, "ed25519")); code != 0 || !strings.Contains(out, "already made ahead") || string(again) != string(key) {
		t.Errorf("a second run on the same boot: exit %d %q, key kept %v", code, out, string(again) == string(key))
	}
	os.RemoveAll(dir)

	os.WriteFile(cfg, []byte("handlers:\n  disable: [host-keys]\n"), 0o644)
	if code, out, _ := run("local", "--host-keys", "--root", root); code != 0 || !strings.Contains(out, "no host keys made ahead: the host-keys handler is disabled") {
		t.Errorf("handler disabled: exit %d %q", code, out)
	}
	os.WriteFile(cfg, nil, 0o644)
	os.WriteFile(filepath.Join(root, "etc/ssh/ssh_host_keys.instance"), []byte("i-0123456789abcdef0\n"), 0o644)
	if code, out, _ := run("local", "--host-keys", "--root", root); code != 0 || !strings.Contains(out, "names instance i-0123456789abcdef0") {
		t.Errorf("keys made for an instance: exit %d %q", code, out)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("keys were made: %v", err)
	}
	if code, _, stderr := run("local", "--host-keys", "--dry-run"); code != 2 || !strings.Contains(stderr, "--host-keys has no --dry-run") {
		t.Errorf("--host-keys --dry-run: exit %d %q", code, stderr)
	}
}
