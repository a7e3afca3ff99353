package cloudconfig

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// smallRef is the reference for groups, power_state, phone_home and
// ssh_redirect_user, run once for all their cases.
type smallRef struct {
	Groups     map[string]refOut `json:"groups"`
	PowerState map[string]refOut `json:"power_state"`
	PhoneHome  map[string]struct {
		refOut
		Posted struct {
			URL     string            `json:"url"`
			Data    map[string]string `json:"data"`
			Retries int               `json:"retries"`
		} `json:"posted"`
	} `json:"phone_home"`
	Redirect map[string][]string `json:"redirect"`
}

type refOut struct {
	Out   any    `json:"out"`
	Error string `json:"error"`
}

var (
	groupCases = map[string]any{
		"a comma-separated string": "admins, web,ops",
		"names and mappings":       []any{"plain", map[string]any{"web": []any{"bob", "alice", "bob"}}, map[string]any{"ops": "carol,dave,"}},
		"one mapping":              map[string]any{"db": []any{"x"}, "cache": "y"},
		"a bad member type":        []any{map[string]any{"web": 5}},
		"a bad group type":         []any{5},
	}
	powerCases = map[string]any{
		"reboot now":            map[string]any{"mode": "reboot"},
		"poweroff in 5 minutes": map[string]any{"mode": "poweroff", "delay": "+5", "message": "bye", "timeout": 10, "condition": "test -f /x"},
		"halt with a number":    map[string]any{"mode": "halt", "delay": 3, "condition": []any{"true"}},
		"static false":          map[string]any{"mode": "reboot", "condition": false},
		"a bad mode":            map[string]any{"mode": "sleep"},
		"a bad delay":           map[string]any{"mode": "reboot", "delay": "soon"},
		"a bad timeout":         map[string]any{"mode": "reboot", "timeout": "long"},
		"a bad condition":       map[string]any{"mode": "reboot", "condition": 5},
	}
	phoneCases = map[string]any{
		"all":                     map[string]any{"url": "http://example.test/$INSTANCE_ID/"},
		"chosen fields and tries": map[string]any{"url": "http://example.test/${INSTANCE_ID}", "post": []any{"instance_id", "pub_key_rsa", "nope"}, "tries": 3},
		"tries not a number":      map[string]any{"url": "http://example.test/", "post": []any{"hostname"}, "tries": "many"},
	}
	phoneKeys = map[string]string{"/etc/ssh/ssh_host_ed25519_key.pub": "ssh-ed25519 AAAAhost root@web-1\n", "/etc/ssh/ssh_host_rsa_key.pub": "ssh-rsa AAAArsa root@web-1\n"}
)

func TestSmallModulesDecideAsCloudInit(t *testing.T) {
	redirectKeys := []string{"ssh-ed25519 AAAAC3Nz deploy@example", "no-pty ssh-rsa AAAAB3Nz backup@example"}
	req := map[string]any{
		"groups": groupCases, "power_state": powerCases, "phone_home": phoneCases, "host_keys": phoneKeys,
		"redirect": map[string]any{"legacy": map[string]any{"user": "legacy", "default": "admin", "keys": redirectKeys}},
	}
	var ref smallRef
	runReference(t, "small_ref.py", req, &ref)

	for name, v := range groupCases {
		t.Run("groups: "+name, func(t *testing.T) {
			plans, err := Groups(v)
			r := ref.Groups[name]
			if (err != nil) != (r.Error != "") {
				t.Fatalf("flint %v, cloud-init %s", err, r.Error)
			}
			if err != nil {
				return
			}
			got := map[string]any{}
			for _, p := range plans {
				got[p.Name] = toAny(p.Members)
			}
			if !reflect.DeepEqual(got, r.Out) {
				t.Fatalf("flint %v, cloud-init %v", got, r.Out)
			}
		})
	}
	for name, v := range powerCases {
		t.Run("power_state: "+name, func(t *testing.T) {
			p, err := PowerState(v)
			r := ref.PowerState[name]
			if (err != nil) != (r.Error != "") {
				t.Fatalf("flint %v, cloud-init %s", err, r.Error)
			}
			if err != nil {
				return
			}
			out := r.Out.([]any)
			if p == nil {
				if out[2] != false {
					t.Fatalf("flint does nothing; cloud-init %v", out)
				}
				return
			}
			var cond any = p.Static
			if p.ConditionShell {
				cond = p.Condition[0]
			} else if !p.Static {
				cond = toAny(p.Condition)
			}
			if !reflect.DeepEqual([]any{toAny(p.Command), p.Timeout, cond}, out) {
				t.Fatalf("flint %q %v %v, cloud-init %v", p.Command, p.Timeout, cond, out)
			}
		})
	}
	facts := PhoneHomeFacts{InstanceID: "i-0abc", Hostname: "web-1", FQDN: "web-1.example.internal", HostKeys: map[string]string{}}
	for field, path := range PhoneHomeHostKeys {
		if c, ok := phoneKeys[path]; ok {
			facts.HostKeys[field] = c
		}
	}
	for name, v := range phoneCases {
		t.Run("phone_home: "+name, func(t *testing.T) {
			p, err := PhoneHome(v, facts)
			if err != nil {
				t.Fatal(err)
			}
			r := ref.PhoneHome[name]
			got := map[string]string{}
			for k := range p.Form {
				got[k] = p.Form.Get(k)
			}
			if p.URL != r.Posted.URL || p.Tries-1 != r.Posted.Retries || !reflect.DeepEqual(got, r.Posted.Data) {
				t.Fatalf("flint %s %v %d, cloud-init %s %v %d", p.URL, got, p.Tries-1, r.Posted.URL, r.Posted.Data, r.Posted.Retries)
			}
		})
	}
	t.Run("ssh_redirect_user", func(t *testing.T) {
		lines, note, err := SSHRedirect("legacy", map[string]any{"ssh_redirect_user": true}, "admin", redirectKeys)
		if err != nil || note != "" || !reflect.DeepEqual(lines, ref.Redirect["legacy"]) {
			t.Fatalf("flint %q %q %v\ncloud-init %q", lines, note, err, ref.Redirect["legacy"])
		}
	})
}

func TestSmallModulesOddValues(t *testing.T) {
	var ce *ConfigError
	if _, _, err := SSHRedirect("u", map[string]any{"ssh_redirect_user": "yes"}, "admin", []string{"k"}); !errors.As(err, &ce) {
		t.Errorf("ssh_redirect_user yes: %v", err)
	}
	if _, _, err := SSHRedirect("u", map[string]any{"ssh_redirect_user": true, "ssh_authorized_keys": []any{}}, "admin", []string{"k"}); !errors.As(err, &ce) {
		t.Errorf("with ssh_authorized_keys: %v", err)
	}
	if l, note, err := SSHRedirect("u", map[string]any{"ssh_redirect_user": "default"}, "admin", nil); l != nil || err != nil || !strings.Contains(note, "no instance public keys") {
		t.Errorf("no keys: %v %q %v", l, note, err)
	}
	if p, err := PhoneHome(map[string]any{"url": "not a url"}, PhoneHomeFacts{}); p != nil || !errors.As(err, &ce) {
		t.Errorf("bad url: %v %v", p, err)
	}
}
