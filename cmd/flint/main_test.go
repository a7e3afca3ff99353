package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flint-dev/flint/imds/imdstest"
)

func run(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = dispatch(context.Background(), append([]string{"flint"}, args...), &o, &e)
	return code, o.String(), e.String()
}

func emulator(t *testing.T) (*imdstest.Server, string) {
	tree, err := imdstest.ParseFixture(imdstest.DefaultFixture)
	if err != nil {
		t.Fatal(err)
	}
	emu := imdstest.New(tree, imdstest.Options{})
	ts := httptest.NewServer(emu)
	t.Cleanup(func() { emu.Close(); ts.Close() })
	return emu, ts.URL
}

func TestBadInputIsOneClearLineAndANonZeroExit(t *testing.T) {
	emu, url := emulator(t)
	emu.Set("meta-data/junk/a\x02b", []byte("x"))
	big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "PUT" {
			w.Write([]byte("token"))
			return
		}
		w.Write(bytes.Repeat([]byte("x"), 2<<20))
	}))
	defer big.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Read(make([]byte, 4096))
			c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\ntrunc"))
			c.Close()
		}
	}()
	defer ln.Close()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"a garbage endpoint", []string{"get", "--endpoint", "not a url", "meta-data/ami-id"}, "is not a metadata endpoint URL"},
		{"a non-numeric TTL", []string{"get", "--endpoint", url, "--token-ttl", "abc", "meta-data/ami-id"}, "--token-ttl \"abc\""},
		{"an out-of-range TTL", []string{"dump", "--endpoint", url, "--token-ttl", "99999"}, "1 to 21600"},
		{"an unknown mode", []string{"get", "--endpoint", url, "--imds-mode", "v3", "meta-data/ami-id"}, "unknown IMDS mode"},
		{"an oversized response", []string{"get", "--endpoint", big.URL, "meta-data/ami-id"}, "larger than"},
		{"a truncated response", []string{"get", "--endpoint", "http://" + ln.Addr().String(), "--imds-mode", "v1", "meta-data/ami-id"}, "unexpected EOF"},
		{"a listing with junk lines", []string{"dump", "--endpoint", url, "meta-data/junk"}, "malformed line"},
		{"an absent key", []string{"get", "--endpoint", url, "meta-data/ramdisk-id"}, "not found in instance metadata"},
		{"an unknown command", []string{"frobnicate"}, "unknown command"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := run(tc.args...)
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if code == 0 || len(lines) != 1 || !strings.Contains(stderr, tc.want) || !strings.HasPrefix(stderr, "flint") {
				t.Fatalf("exit %d, stderr %q; want one line with %q and a non-zero exit", code, stderr, tc.want)
			}
		})
	}
}

func TestGetAndDump(t *testing.T) {
	_, url := emulator(t)
	if code, out, _ := run("get", "--endpoint", url, "meta-data/placement/"); code != 0 || out != "availability-zone\navailability-zone-id\nregion\n" {
		t.Errorf("get listing: %d %q", code, out)
	}
	code, out, _ := run("dump", "--json", "--endpoint", url)
	if code != 0 || !strings.Contains(out, `"instance-id": "i-0123456789abcdef0"`) || !strings.Contains(out, `"user-data": "base64:H4sI`) {
		t.Errorf("dump --json: %d %s", code, out[:min(len(out), 300)])
	}
}

func TestInvokedAsEC2MetadataItIsQuery(t *testing.T) {
	_, url := emulator(t)
	var o, e bytes.Buffer
	code := dispatch(context.Background(), []string{"/usr/bin/ec2-metadata", "--endpoint", url, "-i"}, &o, &e)
	if code != 0 || o.String() != "instance-id: i-0123456789abcdef0\n" {
		t.Fatalf("ec2-metadata -i: %d %q %q", code, o.String(), e.String())
	}
}

func TestNetworkReadsTheConfigFile(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc/flint"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/flint/flint.yaml"), []byte("network:\n  mtu: 1500\n  bogus: 1\n"), 0o644)
	code, _, stderr := run("network", "plan", "--root", root, "--endpoint", "http://127.0.0.1:9")
	if code == 0 || !strings.Contains(stderr, "flint.yaml:3: unknown key \"bogus\"") {
		t.Fatalf("exit %d, stderr %q: the network section of ROOT/etc/flint/flint.yaml was not read strictly", code, stderr)
	}
}

func TestRoleCredentialsAreRedactedUnlessShowSecrets(t *testing.T) {
	_, url := emulator(t)
	const secret, token = "exampleSecretKeyDoNotUse", "exampleSessionTokenDoNotUse"
	for _, args := range [][]string{
		{"get", "--endpoint", url, "meta-data/iam/security-credentials/web-role"},
		{"dump", "--endpoint", url},
		{"dump", "--json", "--endpoint", url},
		{"dump", "--endpoint", url, "meta-data/iam/"},
		{"query", "--endpoint", url, "--path", "meta-data/iam/security-credentials/web-role"},
	} {
		code, out, _ := run(args...)
		if code != 0 || strings.Contains(out, secret) || strings.Contains(out, token) {
			t.Errorf("%v: exit %d, a secret is shown:\n%s", args, code, out)
		}
		if !strings.Contains(out, "ASIAEXAMPLEKEYID0001") || !strings.Contains(out, "redacted") {
			t.Errorf("%v: the key id should stay and the secrets be marked redacted:\n%s", args, out)
		}
		code, out, _ = run(append(args, "--show-secrets")...)
		if code != 0 || !strings.Contains(out, secret) || !strings.Contains(out, token) {
			t.Errorf("%v --show-secrets: exit %d, secrets not shown:\n%s", args, code, out)
		}
	}
}

func TestUserdataInspectRedactsPasswordsAndKeys(t *testing.T) {
	f := filepath.Join(t.TempDir(), "ud")
	doc := "#cloud-config\nchpasswd:\n  list: |\n    root:hunter2-secret\nusers:\n  - name: bob\n    passwd: $6$hash-secret\n" +
		"write_files:\n  - path: /etc/k\n    content: |\n      -----BEGIN PRIVATE KEY-----\n      key-secret\n      -----END PRIVATE KEY-----\n"
	os.WriteFile(f, []byte(doc), 0o600)
	for _, args := range [][]string{{"userdata", "inspect", f}, {"userdata", "inspect", "--json", f}} {
		code, out, _ := run(args...)
		if code != 0 || strings.Contains(out, "-secret") || !strings.Contains(out, "bob") {
			t.Errorf("%v: exit %d:\n%s", args, code, out)
		}
	}
	if _, out, _ := run("userdata", "inspect", "--show-secrets", f); !strings.Contains(out, "hunter2-secret") {
		t.Errorf("--show-secrets: %s", out)
	}
}

func TestADryRunExitsAsTheRealRunWouldEnd(t *testing.T) {
	emu, url := emulator(t)
	emu.AddFault(imdstest.Fault{Path: "user-data", Status: 500})
	root := t.TempDir()
	cfg := filepath.Join(t.TempDir(), "flint.yaml")
	os.WriteFile(cfg, []byte("imds:\n  deadline: 1s\n"), 0o644)
	args := []string{"run", "--root", root, "--config", cfg, "--endpoint", url, "--skip", "network,kernel-modules"}
	dry, _, dryErr := run(append(args, "--dry-run")...)
	real, _, realErr := run(args...)
	if dry != 2 || real != 2 {
		t.Fatalf("dry run exit %d, real run exit %d, want 2 (degraded) for both\n%s\n%s", dry, real, dryErr, realErr)
	}
	code, out, _ := run("status", "--root", root)
	if code != 2 || strings.Count(out, "user-data could not be read") != 1 || !strings.Contains(out, "warning: ") {
		t.Fatalf("status: exit %d, want 2 and the user-data failure once as a warning:\n%s", code, out)
	}
}

func TestStatusWaitTimingOutHasItsOwnExitCode(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "run/flint"), 0o755)
	os.WriteFile(filepath.Join(root, "run/flint/status.json"), []byte(`{"state":"running","started":"2026-01-01T00:00:00Z","handlers":[]}`), 0o644)
	code, _, stderr := run("status", "--root", root, "--wait", "--timeout", "200ms")
	if code != exitTimeout || !strings.Contains(stderr, "has not finished after 200ms (state: running)") {
		t.Fatalf("exit %d, stderr %q; want %d and one line", code, stderr, exitTimeout)
	}
	if code, _, _ := run("status", "--root", root); code != exitFail {
		t.Fatalf("status without --wait of a running run: exit %d, want %d", code, exitFail)
	}
}

func TestANamedConfigFileThatIsMissingIsAnError(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	for _, args := range [][]string{
		{"run", "--root", t.TempDir(), "--config", missing, "--dry-run", "--endpoint", "http://127.0.0.1:9"},
		{"config", "check", missing},
		{"events", "--config", missing, "--endpoint", "http://127.0.0.1:9"},
		{"modules", "install", "--root", t.TempDir(), "--release", "6.1.0-0-cloud-amd64", "--config", missing, "--endpoint", "http://127.0.0.1:9"},
	} {
		code, _, stderr := run(args...)
		if code != exitFail || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, missing+" does not exist") {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr)
		}
	}
}

func TestSSHKeysServesTheDistributionsDefaultUserWhenTheConfigNamesNone(t *testing.T) {
	_, url := emulator(t)
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/os-release"), []byte("ID=debian\n"), 0o644)
	code, out, _ := run("ssh-keys", "--root", root, "--endpoint", url, "admin")
	if code != 0 || !strings.Contains(out, "alice@laptop") {
		t.Fatalf("ssh-keys admin on a Debian image: exit %d, %q; want the instance's keys, as the users handler gives them to admin", code, out)
	}
	if _, out, _ := run("ssh-keys", "--root", root, "--endpoint", url, "someone"); strings.Contains(out, "alice@laptop") {
		t.Fatalf("ssh-keys someone got the instance's keys: %q", out)
	}
}
