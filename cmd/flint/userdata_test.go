package main

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/flint-dev/flint/internal/testenv"
)

const inspectDoc = `Content-Type: multipart/mixed; boundary="B"
MIME-Version: 1.0

--B
Content-Type: text/cloud-config
Content-Disposition: attachment; filename="a.yaml"

#cloud-config
hostname: h1
runcmd: [one]
ratio: .nan

--B
Content-Type: text/x-shellscript

#!/bin/sh
echo <b>&amp;</b>

--B
Content-Type: text/cloud-config
Merge-Type: list(append)+dict(recurse_array)+str()

#cloud-config
runcmd: [two]
--B--
`

type inspectOut struct {
	Parts []struct {
		ContentType string `json:"content_type"`
		Filename    string `json:"filename"`
		Size        int    `json:"size"`
		SHA256      string `json:"sha256"`
	} `json:"parts"`
	CloudConfig map[string]any `json:"cloud_config"`
}

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func TestUserdataInspectJSONListsPartsAndTheMergedCloudConfig(t *testing.T) {
	var gzdoc bytes.Buffer
	zw := gzip.NewWriter(&gzdoc)
	zw.Write([]byte(inspectDoc))
	zw.Close()
	file := filepath.Join(t.TempDir(), "ud.gz")
	os.WriteFile(file, gzdoc.Bytes(), 0o600)

	for _, args := range [][]string{
		{"userdata", "inspect", file, "--json"},
		{"userdata", "inspect", "--json", file},
	} {
		code, stdout, stderr := run(args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
		var raw map[string]json.RawMessage
		if err := json.Unmarshal([]byte(stdout), &raw); err != nil || len(raw) != 2 || raw["parts"] == nil || raw["cloud_config"] == nil {
			t.Fatalf("output is not {parts, cloud_config}: %v\n%s", err, stdout)
		}
		var out inspectOut
		json.Unmarshal([]byte(stdout), &out)
		script := "#!/bin/sh\necho <b>&amp;</b>\n"
		if len(out.Parts) != 3 || out.Parts[0].Filename != "a.yaml" || out.Parts[0].ContentType != "text/cloud-config" ||
			out.Parts[1].Filename != "part-002" || out.Parts[1].ContentType != "text/x-shellscript" ||
			out.Parts[1].Size != len(script) || out.Parts[1].SHA256 != sum(script) {
			t.Errorf("parts: %+v", out.Parts)
		}
		if !strings.Contains(stdout, "<b>") && strings.Contains(stdout, `\u003c`) {
			t.Error("JSON escapes HTML characters")
		}
		wantCC := map[string]any{"hostname": "h1", "runcmd": []any{"one", "two"}, "ratio": ".nan"}
		if !reflect.DeepEqual(out.CloudConfig, wantCC) {
			t.Errorf("cloud_config = %v, want %v", out.CloudConfig, wantCC)
		}
		if strings.Contains(stdout, "warning") {
			t.Error("warnings went into the JSON")
		}
	}
}

func TestUserdataInspectReadsTheInstancesUserDataFromIMDS(t *testing.T) {
	emu, url := emulator(t)
	code, stdout, stderr := run("userdata", "inspect", "--json", "--endpoint", url)
	var out inspectOut
	if err := json.Unmarshal([]byte(stdout), &out); code != 0 || err != nil {
		t.Fatalf("exit %d, %v: %s", code, err, stderr)
	}
	if len(out.Parts) != 2 || out.Parts[0].Filename != "config.yaml" || out.Parts[1].Filename != "hello.sh" || out.CloudConfig["hostname"] != "web-1" {
		t.Errorf("fixture user-data: %+v", out)
	}
	code, stdout, _ = run("userdata", "inspect", "--endpoint", url)
	if code != 0 || !strings.Contains(stdout, "2 parts") || !strings.Contains(stdout, "hello.sh") || !strings.Contains(stdout, "hostname: web-1") {
		t.Errorf("text form (exit %d):\n%s", code, stdout)
	}
	// Parts for another launch index are left out, as at boot.
	emu.Set("user-data", []byte("Content-Type: multipart/mixed; boundary=B\nMIME-Version: 1.0\n\n--B\nContent-Type: text/x-shellscript\nLaunch-Index: 3\n\n#!/bin/sh\n--B\nContent-Type: text/x-shellscript\nLaunch-Index: 0\n\n#!/bin/sh\n--B--\n"))
	_, stdout, _ = run("userdata", "inspect", "--json", "--endpoint", url)
	json.Unmarshal([]byte(stdout), &out)
	if len(out.Parts) != 1 {
		t.Errorf("launch index 0 sees %d parts, want 1", len(out.Parts))
	}
	emu.Delete("user-data")
	code, stdout, stderr = run("userdata", "inspect", "--json", "--endpoint", url)
	if code != 0 || strings.Join(strings.Fields(stdout), "") != `{"parts":[],"cloud_config":{}}` {
		t.Errorf("no user-data: exit %d %q %s", code, stdout, stderr)
	}
}

func TestUserdataInspectBadUseIsOneLineAndANonZeroExit(t *testing.T) {
	bomb := filepath.Join(t.TempDir(), "bomb.gz")
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestSpeed)
	zw.Write(make([]byte, 17<<20))
	zw.Close()
	os.WriteFile(bomb, b.Bytes(), 0o600)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"userdata"}, 2, "flint userdata: missing command (see 'flint userdata --help')"},
		{[]string{"userdata", "bogus"}, 2, `flint userdata: unknown command "bogus"`},
		{[]string{"userdata", "inspect", "a", "b"}, 2, `flint userdata inspect: unexpected argument "b"`},
		{[]string{"userdata", "inspect", "--nope"}, 2, "flint userdata inspect: unknown flag --nope"},
		{[]string{"userdata", "inspect", "/does/not/exist"}, 1, "flint: open /does/not/exist: no such file or directory"},
		{[]string{"userdata", "inspect", bomb}, 1, "flint: user-data"},
	} {
		code, stdout, stderr := run(tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) || stdout != "" {
			t.Errorf("%v: exit %d, stderr %q, stdout %q; want exit %d and %q", tc.args, code, stderr, stdout, tc.code, tc.want)
		}
		if strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
			t.Errorf("%v: error is not one line: %q", tc.args, stderr)
		}
	}
}

func TestUserdataInspectReadsStdinAndWarnsOnStderr(t *testing.T) {
	cmd := exec.Command(testenv.FlintBinary(t), "userdata", "inspect", "-", "--json")
	cmd.Stdin = strings.NewReader("#cloud-config\nhostname: x\nno_such_key: 1\n")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v: %s", err, stderr.String())
	}
	var out inspectOut
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil || len(out.Parts) != 1 || out.Parts[0].ContentType != "text/cloud-config" || out.CloudConfig["no_such_key"] != float64(1) {
		t.Errorf("%v: %s", err, stdout.String())
	}
	if !strings.Contains(stderr.String(), "flint: warning: ") || !strings.Contains(stderr.String(), "no_such_key") {
		t.Errorf("stderr %q", stderr.String())
	}
}

func TestUserdataInspectRendersTemplatesWithTheInstancesData(t *testing.T) {
	emu, url := emulator(t)
	tmpl := "## template: jinja\n#cloud-config\nhostname: {{ v1.local_hostname }}\n" +
		"{% if v1.region.startswith('eu') %}\nregion: {{ v1.region | upper }}\n{% endif %}\n" +
		"keys: {{ ds.meta_data.public_keys.alice.split()[0] }}\nmissing: {{ v1.nope }}\n"
	emu.Set("user-data", []byte(tmpl))
	file := filepath.Join(t.TempDir(), "ud")
	os.WriteFile(file, []byte(tmpl), 0o600)
	want := map[string]any{"hostname": "ip-10-0-1-23", "region": "EU-WEST-1", "keys": "ssh-ed25519", "missing": "CI_MISSING_JINJA_VAR/nope"}

	for _, args := range [][]string{
		{"userdata", "inspect", "--json", "--endpoint", url},
		{"userdata", "inspect", "--json", file, "--endpoint", url},
	} {
		code, stdout, stderr := run(args...)
		var out inspectOut
		if err := json.Unmarshal([]byte(stdout), &out); code != 0 || err != nil {
			t.Fatalf("%v: exit %d %v: %s", args, code, err, stderr)
		}
		if !reflect.DeepEqual(out.CloudConfig, want) {
			t.Errorf("%v: cloud_config = %v, want %v (stderr %s)", args, out.CloudConfig, want, stderr)
		}
	}

	t.Run("a file alone is inspected offline, its templates reported", func(t *testing.T) {
		code, stdout, stderr := run("userdata", "inspect", "--json", file)
		if code != 0 || !strings.Contains(stderr, "no instance data") || !strings.Contains(stdout, `"cloud_config": {}`) {
			t.Fatalf("exit %d stdout %s stderr %s", code, stdout, stderr)
		}
	})
	t.Run("a template that fails is one warning line naming the part", func(t *testing.T) {
		os.WriteFile(file, []byte("## template: jinja\n#cloud-config\na: {{ nope.x }}\n"), 0o600)
		code, _, stderr := run("userdata", "inspect", file, "--endpoint", url)
		if code != 0 || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "part-001: jinja template not rendered") {
			t.Fatalf("exit %d stderr %q", code, stderr)
		}
	})
}
