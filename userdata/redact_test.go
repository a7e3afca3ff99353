package userdata

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
)

const secretConfig = `#cloud-config
password: topsecret-1
chpasswd:
  expire: false
  list: |
    root:topsecret-2
    alice:RANDOM
  users:
    - {name: bob, password: topsecret-3, type: text}
users:
  - default
  - name: carol
    passwd: "$6$topsecret-4"
    plain_text_passwd: topsecret-5
    lock_passwd: false
    ssh_authorized_keys: [ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPublicKeyStaysVisible carol@host]
ssh_keys:
  ed25519_private: |
    -----BEGIN OPENSSH PRIVATE KEY-----
    topsecret-6
    -----END OPENSSH PRIVATE KEY-----
  ed25519_public: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostPublicKeyStays host
write_files:
  - path: /etc/app/key.pem
    content: |
      -----BEGIN PRIVATE KEY-----
      topsecret-7
      -----END PRIVATE KEY-----
  - path: /etc/motd
    content: hello visible
apt:
  proxy: http://proxyuser:topsecret-8@proxy.example:3128
ubuntu_advantage:
  token: topsecret-9
`

func TestRedactHidesEverySecretOfACloudConfig(t *testing.T) {
	ins, err := Inspect(context.Background(), []byte(secretConfig), Options{NoInclude: true})
	if err != nil {
		t.Fatal(err)
	}
	var buf strings.Builder
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(Redact(ins.CloudConfig)); err != nil {
		t.Fatal(err)
	}
	s := buf.String()
	if strings.Contains(s, "topsecret") {
		t.Errorf("a secret is still shown: %s", s)
	}
	for _, visible := range []string{"carol", "bob", "root:" + Redacted, "alice:" + Redacted, "PublicKeyStaysVisible",
		"HostPublicKeyStays", "/etc/app/key.pem", "hello visible", "http://proxyuser:" + Redacted + "@proxy.example:3128",
		`"lock_passwd":false`, `"expire":false`} {
		if !strings.Contains(s, visible) {
			t.Errorf("%q should stay visible in %s", visible, s)
		}
	}
}

func TestRedactLeavesTheInputUnchanged(t *testing.T) {
	cfg := map[string]any{"password": "p", "users": []any{map[string]any{"passwd": "q"}}}
	_ = Redact(cfg)
	if cfg["password"] != "p" || cfg["users"].([]any)[0].(map[string]any)["passwd"] != "q" {
		t.Errorf("Redact changed its input: %v", cfg)
	}
}

func TestRedactKeepsAChpasswdListGivenAsAList(t *testing.T) {
	got := Redact(map[string]any{"chpasswd": map[string]any{"list": []any{"root:pw1", "nocolon"}}})
	want := []any{"root:" + Redacted, Redacted}
	list := got["chpasswd"].(map[string]any)["list"].([]any)
	if len(list) != 2 || list[0] != want[0] || list[1] != want[1] {
		t.Errorf("got %v, want %v", list, want)
	}
}
