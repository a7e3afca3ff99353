package cloudconfig

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestCACertsWritesWhatCloudInitWrites(t *testing.T) {
	const cert1 = "-----BEGIN CERTIFICATE-----\nMIIB1\n-----END CERTIFICATE-----\n"
	const cert2 = "-----BEGIN CERTIFICATE-----\nMIIB2\n-----END CERTIFICATE-----"
	type refCase struct {
		Name string         `json:"name"`
		Cfg  map[string]any `json:"cfg"`
		Conf *string        `json:"conf"`
	}
	str := func(s string) *string { return &s }
	debianConf := "# comment\nmozilla/Foo.crt\ncloud-init-ca-certs.crt\n!mozilla/Bar.crt\n\n\n"
	cases := []refCase{
		{"trusted certificates", map[string]any{"ca_certs": map[string]any{"trusted": []any{cert1, cert2}}}, str(debianConf)},
		{"one certificate as a string", map[string]any{"ca_certs": map[string]any{"trusted": cert1}}, str(debianConf)},
		{"remove defaults and trust one", map[string]any{"ca_certs": map[string]any{"remove_defaults": true, "trusted": []any{cert2}}}, str(debianConf)},
		{"remove defaults given as a string", map[string]any{"ca_certs": map[string]any{"remove_defaults": "false"}}, str(debianConf)},
		{"the deprecated spellings", map[string]any{"ca-certs": map[string]any{"remove-defaults": true}}, str(debianConf)},
		{"both spellings: ca_certs wins", map[string]any{"ca-certs": map[string]any{"remove-defaults": true}, "ca_certs": map[string]any{"trusted": []any{cert1}}}, str("")},
		{"nothing to do but update", map[string]any{"ca_certs": map[string]any{}}, str(debianConf)},
		{"an empty trusted list", map[string]any{"ca_certs": map[string]any{"trusted": []any{}}}, str(debianConf)},
	}
	var ref map[string]struct {
		Files map[string]string `json:"files"`
		Calls []struct {
			Args []string `json:"args"`
			Data *string  `json:"data"`
		} `json:"calls"`
		Error string `json:"error"`
	}
	runReference(t, "cacerts_ref.py", cases, &ref)
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			r := ref[c.Name]
			if r.Error != "" {
				t.Fatalf("cloud-init: %s", r.Error)
			}
			fsys := map[string]string{
				CACertPath + "default.crt":       "",
				CACertSystemPath + "default.crt": "",
			}
			in := CACertsInput{}
			in.Config, in.Present = c.Cfg["ca_certs"]
			in.Deprecated, in.DeprecatedPresent = c.Cfg["ca-certs"]
			if c.Conf != nil {
				fsys[CACertConfig] = *c.Conf
				in.CurrentConfig = []byte(*c.Conf)
			}
			p, err := CACerts(in)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range p.EmptyDirs {
				for f := range fsys {
					if strings.HasPrefix(f, d) {
						delete(fsys, f)
					}
				}
			}
			for _, f := range p.Files {
				fsys[f.Path] = string(f.Content)
			}
			if !reflect.DeepEqual(fsys, r.Files) {
				t.Errorf("files:\nflint      %q\ncloud-init %q", fsys, r.Files)
			}
			var calls [][]string
			for _, call := range r.Calls {
				if call.Args[0] == "debconf-set-selections" {
					if call.Data == nil || *call.Data != p.DebconfSelections {
						t.Errorf("debconf: flint %q, cloud-init %v", p.DebconfSelections, call.Data)
					}
					continue
				}
				calls = append(calls, call.Args)
			}
			if !reflect.DeepEqual(calls, p.Commands) {
				t.Errorf("commands: flint %q, cloud-init %q", p.Commands, calls)
			}
		})
	}
}

func TestCACertsOddValues(t *testing.T) {
	if p, err := CACerts(CACertsInput{}); p != nil || err != nil {
		t.Fatalf("no key: %v %v", p, err)
	}
	_, err := CACerts(CACertsInput{Present: true, Config: []any{"x"}})
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Key != "ca_certs" {
		t.Fatalf("a list: %v", err)
	}
	p, err := CACerts(CACertsInput{Present: true, Config: map[string]any{"trusted": []any{"c"}}})
	if err != nil || string(p.Files[1].Content) != CACertFilename+"\n" {
		t.Fatalf("no ca-certificates.conf: %+v %v", p, err)
	}
}
