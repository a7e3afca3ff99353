package ec2metadata

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestJSONMapsLabelsToExactValues(t *testing.T) {
	v := instance()
	v["/latest/user-data"] = "\x1f\x8b\x08\x00binary"
	out, errOut, code := run(t, newFake(v), "--json", "-i", "-r", "-b", "-u", "-g", "-d", "-s", "-i", "--path", "placement/region")
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	want := `{
  "instance-id": "i-0123",
  "ramdisk-id": null,
  "block-device-mapping": {
    "ami": "/dev/xvda",
    "root": "/dev/xvda"
  },
  "public-keys": [
    {
      "index": "0",
      "name": "alice",
      "format": "openssh-key",
      "key": "ssh-ed25519 AAAA alice"
    },
    {
      "index": "1",
      "name": "deploy",
      "format": "openssh-key",
      "key": "ssh-rsa BBBB deploy\n"
    }
  ],
  "tags": {
    "Name": "web-1",
    "Env": "staging"
  },
  "user-data": {
    "base64": "H4sIAGJpbmFyeQ=="
  },
  "security-groups": "web\nssh",
  "latest/meta-data/placement/region": "eu-west-1"
}
`
	if out != want {
		t.Errorf("got:\n%s\nwant:\n%s", out, want)
	}
}

func TestJSONOfTheWholeListIsValidAndComplete(t *testing.T) {
	for _, args := range [][]string{{"--json"}, {"--json", "--all"}, {"--all", "--json", "--quiet"}} {
		out, _, code := run(t, newFake(instance()), args...)
		var m map[string]any
		if err := json.Unmarshal([]byte(out), &m); err != nil || code != 0 {
			t.Fatalf("%q: exit %d, invalid JSON %v:\n%s", args, code, err, out)
		}
		if len(m) != 20 || m["placement"] != "eu-west-1a" || m["ancestor-ami-ids"] != nil {
			t.Errorf("%q: %d labels: %v", args, len(m), m)
		}
	}
}

func TestJSONKeepsStdoutCleanOnBadArguments(t *testing.T) {
	out, errOut, code := run(t, newFake(instance()), "--json", "-i", "-x")
	if out != "" || code != 1 || !strings.Contains(errOut, "unknown option -x") {
		t.Errorf("got exit %d, stderr %q, output %q", code, errOut, out)
	}
	out, _, code = run(t, noMetadata{t}, "--json", "--help")
	if out != helpText || code != 0 {
		t.Errorf("--json --help: exit %d output %q", code, out)
	}
	out, _, code = run(t, failing{newFake(nil), errTest}, "--json", "-i")
	if out != "" || code != 1 {
		t.Errorf("unreachable with --json: exit %d output %q", code, out)
	}
}

func TestJSONDoesNotEscapeHTML(t *testing.T) {
	out, _, _ := run(t, newFake(map[string]string{"/latest/meta-data/ami-id": "<a&b>"}), "--json", "-a")
	if out != "{\n  \"ami-id\": \"<a&b>\"\n}\n" {
		t.Errorf("got %q", out)
	}
}
