package cloudconfig

import (
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/flint-dev/flint/internal/testenv"
)

func TestAptWritesWhatCloudInitWrites(t *testing.T) {
	key := testenv.ArmoredKey(t)
	type refCase struct {
		Name            string         `json:"name"`
		Cfg             map[string]any `json:"cfg"`
		DefaultPrimary  string         `json:"default_primary"`
		DefaultSecurity string         `json:"default_security"`
	}
	const dp, ds = "https://deb.debian.org/debian", "https://deb.debian.org/debian-security"
	cases := []refCase{
		{"defaults: sources.list from the template", map[string]any{}, dp, ds},
		{"primary mirror for the arch", map[string]any{"primary": []any{
			map[string]any{"arches": []any{"arm64"}, "uri": "http://arm.example/debian"},
			map[string]any{"arches": []any{"default"}, "uri": "http://mirror.example/debian"}}}, dp, ds},
		{"primary and security", map[string]any{"primary": []any{map[string]any{"arches": []any{"amd64"}, "uri": "http://p.example/d"}},
			"security": []any{map[string]any{"arches": []any{"default"}, "uri": "http://s.example/d"}}}, dp, ds},
		{"disabled suites", map[string]any{"disable_suites": []any{"backports", "updates", "bookworm-security"}}, dp, ds},
		{"a sources_list template", map[string]any{"sources_list": "deb $MIRROR $RELEASE main\ndeb ${SECURITY} $RELEASE-security main\n"}, dp, ds},
		{"preserve sources.list", map[string]any{"preserve_sources_list": true}, dp, ds},
		{"proxies and conf", map[string]any{"preserve_sources_list": true, "proxy": "http://proxy:3128", "https_proxy": "http://sproxy:3129",
			"conf": "APT::Get::Assume-Yes \"true\";\n"}, dp, ds},
		{"sources with a key, substitutions and signed-by", map[string]any{"preserve_sources_list": true, "sources": map[string]any{
			"plain.list":   map[string]any{"source": "deb $MIRROR $RELEASE-extra main"},
			"trusted":      map[string]any{"source": "deb http://repo.example/ $RELEASE main", "key": key},
			"signed":       map[string]any{"source": "deb [signed-by=$KEY_FILE] http://repo.example/ $RELEASE main", "key": key},
			"keyonly":      map[string]any{"key": key, "filename": "keyonly.list"},
			"/etc/apt/abs": map[string]any{"source": "deb http://abs.example/ stable main"},
			"ppa":          map[string]any{"source": "ppa:someone/thing"},
		}}, dp, ds},
		{"two sources appending to one file, and one replacing", map[string]any{"preserve_sources_list": true, "sources": map[string]any{
			"a": map[string]any{"source": "deb http://a.example/ x main", "filename": "shared.list"},
			"b": map[string]any{"source": "deb http://b.example/ x main", "filename": "shared.list"},
			"c": map[string]any{"source": "deb http://c.example/ x main", "append": false},
		}}, dp, ds},
	}
	var ref map[string]struct {
		Files map[string]string `json:"files"`
		Calls [][]string        `json:"calls"`
		Error string            `json:"error"`
	}
	runReference(t, "apt_ref.py", cases, &ref)
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			r := ref[c.Name]
			if r.Error != "" {
				t.Fatalf("cloud-init: %s", r.Error)
			}
			p, err := Apt(AptInput{Config: c.Cfg, Release: "bookworm", Arch: "amd64", DefaultPrimary: c.DefaultPrimary, DefaultSecurity: c.DefaultSecurity})
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, f := range append(p.Files, p.Keys...) {
				got[f.Path] = hex.EncodeToString(f.Content)
			}
			for _, s := range p.Sources {
				prev, _ := hex.DecodeString(got[s.Path])
				if s.Replace {
					prev = nil
				}
				got[s.Path] = hex.EncodeToString(append(prev, s.Line...))
			}
			if !reflect.DeepEqual(got, r.Files) {
				t.Errorf("files differ")
				for k := range merge(got, r.Files) {
					if got[k] != r.Files[k] {
						g, _ := hex.DecodeString(got[k])
						w, _ := hex.DecodeString(r.Files[k])
						t.Errorf("%s:\nflint      %q\ncloud-init %q", k, g, w)
					}
				}
			}
			if !reflect.DeepEqual(p.Commands, r.Calls) && !(len(p.Commands) == 0 && len(r.Calls) == 0) {
				t.Errorf("commands: flint %q, cloud-init %q", p.Commands, r.Calls)
			}
		})
	}
}

func merge(a, b map[string]string) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

func TestAptBadInput(t *testing.T) {
	key := testenv.ArmoredKey(t)
	damaged := strings.Replace(key, "\n\n", "\n\nAAAA", 1)
	tests := []struct {
		name, errKey, want string
		cfg                map[string]any
	}{
		{"a key that is not armored", "apt.sources.repo.key", "not an ASCII-armored", map[string]any{"sources": map[string]any{"repo": map[string]any{"source": "deb http://x/ y main", "key": "not a key"}}}},
		{"a damaged key", "apt.sources.repo.key", "checksum", map[string]any{"sources": map[string]any{"repo": map[string]any{"source": "deb http://x/ y main", "key": damaged}}}},
		{"an unknown template variable", "apt.sources.repo.source", "$NOPE", map[string]any{"sources": map[string]any{"repo": map[string]any{"source": "deb $NOPE y main"}}}},
		{"sources that are a list", "apt.sources", "not a mapping", map[string]any{"sources": []any{"x"}}},
		{"a search mirror", "apt.primary", "search", map[string]any{"primary": []any{map[string]any{"arches": []any{"default"}, "search": []any{"http://x"}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Apt(AptInput{Config: tt.cfg, Release: "bookworm", Arch: "amd64"})
			var ce *ConfigError
			if p != nil || !errors.As(err, &ce) || ce.Key != tt.errKey || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, %v; want a ConfigError for %s saying %q", p, err, tt.errKey, tt.want)
			}
		})
	}
	t.Run("a keyid is fetched first, then used", func(t *testing.T) {
		cfg := map[string]any{"preserve_sources_list": true, "sources": map[string]any{"r": map[string]any{"keyid": "ABCD 1234", "source": "deb [signed-by=$KEY_FILE] http://x/ y main"}}}
		p, err := Apt(AptInput{Config: cfg})
		if err != nil || len(p.KeyFetches) != 1 || p.KeyFetches[0].URL != "https://keyserver.ubuntu.com/pks/lookup?op=get&options=mr&search=0xABCD1234" || len(p.Sources) != 0 {
			t.Fatalf("%+v %v", p, err)
		}
		p, err = Apt(AptInput{Config: cfg, KeyFetched: map[string]string{"ABCD 1234": key}})
		if err != nil || len(p.Keys) != 1 || p.Keys[0].Path != AptSignedByDir+"r.gpg" || !strings.Contains(p.Sources[0].Line, "signed-by="+AptSignedByDir+"r.gpg") {
			t.Fatalf("%+v %v", p, err)
		}
	})
	t.Run("the dearmored key is what gpg reads", func(t *testing.T) {
		bin, err := Dearmor(key)
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(t.TempDir(), "k.gpg")
		os.WriteFile(f, bin, 0o644)
		out, err := exec.Command("gpg", "--batch", "--show-keys", f).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "repo@example.test") {
			t.Fatalf("gpg --show-keys: %v %s", err, out)
		}
	})
}
