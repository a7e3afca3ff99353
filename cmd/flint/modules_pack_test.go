package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/flint-dev/flint/modules"
)

func TestModulesVendorSubcommandsFollowTheUsageConvention(t *testing.T) {
	for _, sub := range []string{"pack", "keygen", "sign", "verify"} {
		t.Run(sub+" --help prints usage to stdout and succeeds", func(t *testing.T) {
			code, out, errOut := run("modules", sub, "--help")
			if code != exitOK || !strings.Contains(out, "Usage: flint modules "+sub) || errOut != "" {
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
	code, stdout, stderr := run("modules", "pack", tree, "--format", "tar.gz", "-o", out, "--manifest", manifest, "--no-index")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "flint: pack: dropped build -> /usr/src/linux") {
		t.Errorf("the dropped build link is not reported: %q", stderr)
	}
	if !strings.Contains(stdout, "release 6.1.0-99-cloud-amd64, arch amd64, 1 files") || !strings.Contains(stdout, "no module index") || !strings.Contains(stdout, "added the entry") {
		t.Errorf("stdout %q", stdout)
	}
	m, err := os.ReadFile(manifest)
	if err != nil || !strings.Contains(string(m), `"url": "b.tar.gz"`) || !strings.Contains(string(m), `"format": "tar.gz"`) {
		t.Fatalf("manifest %s %v", m, err)
	}
}

func TestModulesKeygenSignVerifyRoundTrip(t *testing.T) {
	dir := t.TempDir()
	prefix := filepath.Join(dir, "vendor")
	code, out, errOut := run("modules", "keygen", "--out", prefix)
	if code != exitOK || !strings.Contains(out, "public_key: ") {
		t.Fatalf("keygen: exit %d %q %q", code, out, errOut)
	}
	if fi, err := os.Stat(prefix + ".key"); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("private key file: %v %v", fi, err)
	}
	if code, _, errOut := run("modules", "keygen", "--out", prefix); code != exitFail || !strings.Contains(errOut, "nothing overwritten") {
		t.Fatalf("a second keygen over the first: exit %d %q", code, errOut)
	}
	manifest := filepath.Join(dir, "manifest.json")
	os.WriteFile(manifest, []byte(`{"bundles": [{"release": "6.1.0-99-cloud-amd64", "url": "b.tar.zst", "sha256": "`+strings.Repeat("0", 64)+`"}]}`), 0o644)
	if code, out, errOut := run("modules", "sign", "--key", prefix+".key", manifest); code != exitOK || !strings.Contains(out, "signed") {
		t.Fatalf("sign: exit %d %q %q", code, out, errOut)
	}
	if code, out, errOut := run("modules", "verify", "--key", prefix+".pub", manifest); code != exitOK || !strings.Contains(out, "signature good") || !strings.Contains(out, "release 6.1.0-99-cloud-amd64") {
		t.Fatalf("verify: exit %d %q %q", code, out, errOut)
	}
	os.WriteFile(manifest, []byte(`{"bundles": []}`), 0o644)
	code, _, errOut = run("modules", "verify", "--key", prefix+".pub", manifest)
	if code != exitFail || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "does not verify") {
		t.Fatalf("a changed manifest: exit %d %q", code, errOut)
	}
}

func TestConfigCheckValidatesTheModulesSection(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc", "flint"), 0o755)
	conf := filepath.Join(root, "etc", "flint", "flint.yaml")
	os.WriteFile(conf, []byte("modules:\n  manifest: s3://bucket/manifest.json\n  public_key: not-a-key\n"), 0o644)
	code, _, errOut := run("config", "check", "--root", root)
	if code != exitFail || !strings.Contains(errOut, "modules.public_key") {
		t.Fatalf("a bad public key: exit %d %q", code, errOut)
	}
	_, pub, _, err := modules.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	indented := "    " + strings.ReplaceAll(strings.TrimSpace(string(pub)), "\n", "\n    ")
	os.WriteFile(conf, []byte("modules:\n  manifest: s3://bucket/manifest.json\n  public_key: |\n"+indented+"\n"), 0o644)
	if code, _, errOut := run("config", "check", "--root", root); code != exitOK {
		t.Fatalf("a PEM public key: exit %d %q", code, errOut)
	}
}

func TestConfigCheckPrintsEveryHandlerSectionItLoads(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "etc", "flint")
	os.MkdirAll(filepath.Join(dir, "flint.d"), 0o755)
	_, pub, _, err := modules.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	indented := "    " + strings.ReplaceAll(strings.TrimSpace(string(pub)), "\n", "\n    ")
	os.WriteFile(filepath.Join(dir, "flint.yaml"), []byte("modules:\n  manifest: s3://bucket/manifest.json\n  public_key: |\n"+indented+"\n"+
		"scripts:\n  timeout: 10m\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "flint.d", "50-site.yaml"), []byte("scripts:\n  timeout: 20m\n"), 0o644)
	code, out, errOut := run("config", "check", "--root", root)
	if code != exitOK {
		t.Fatalf("exit %d %q", code, errOut)
	}
	var got map[string]any
	if err := yaml.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("the effective configuration is not one YAML document: %v\n%s", err, out)
	}
	modulesSection, _ := got["modules"].(map[string]any)
	scripts, _ := got["scripts"].(map[string]any)
	if modulesSection["manifest"] != "s3://bucket/manifest.json" || modulesSection["public_key"] != string(pub) ||
		scripts["timeout"] != "20m0s" || got["imds"] == nil {
		t.Errorf("the handlers' sections are not printed as the files set them (the drop-in last):\n%s", out)
	}
	if !strings.Contains(out, "\n# network: not set (the network handler's defaults)\n") {
		t.Errorf("a section no file sets is not named:\n%s", out)
	}
	if hostname, _ := got["hostname"].(map[string]any); hostname["manage_etc_hosts"] != true {
		t.Errorf("a section no file sets whose defaults are known is not printed with them:\n%s", out)
	}
	// What it prints is a configuration it accepts.
	again := filepath.Join(t.TempDir(), "effective.yaml")
	os.WriteFile(again, []byte(out), 0o644)
	if code, _, errOut := run("config", "check", again); code != exitOK {
		t.Errorf("config check of its own output: exit %d %q", code, errOut)
	}
}
