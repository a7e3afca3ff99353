package cloudconfig

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/flint-dev/flint/userdata"
)

// yumCase is one yum_repos document, the files already on the system,
// and, for a deliberate difference from cloud-init 22.4, why.
type yumCase struct {
	Name     string   `json:"name"`
	YAML     string   `json:"yaml"`
	Existing []string `json:"existing"`
	differs  string
}

var yumNow = time.Unix(1700000000, 0)

// yumPlan plans a case as the yum-repos handler does: the document
// parsed as user-data, the key order read from it.
func yumPlan(t *testing.T, c yumCase) (*YumReposPlan, error) {
	t.Helper()
	ud, err := userdata.Parse(context.Background(), []byte("#cloud-config\n"+c.YAML), userdata.Options{NoInclude: true})
	if err != nil {
		t.Fatal(err)
	}
	existing := map[string]bool{}
	for _, p := range c.Existing {
		existing[p] = true
	}
	return YumRepos(YumReposInput{Config: ud.Config, Order: ReadKeyOrder(ud, "yum_repos"), Now: yumNow,
		Exists: func(p string) bool { return existing[p] }})
}

func TestYumReposWritesWhatCloudInitWrites(t *testing.T) {
	cases := []yumCase{
		{Name: "cloud-init's example with its own directory", YAML: "yum_repos:\n  my_repo:\n    baseurl: http://blah.org/pub/epel/testing/5/$basearch/\nyum_repo_dir: /store/custom/yum.repos.d\n"},
		{Name: "cloud-init's copr example: keys in document order, booleans as 1", YAML: `yum_repos:
  cloud-init-daily:
    name: Copr repo for cloud-init-dev owned by @cloud-init
    baseurl: https://download.copr.fedorainfracloud.org/results/@cloud-init/cloud-init-dev/epel-8-$basearch/
    type: rpm-md
    skip_if_unavailable: true
    gpgcheck: true
    gpgkey: https://download.copr.fedorainfracloud.org/results/@cloud-init/cloud-init-dev/pubkey.gpg
    enabled_metadata: 1
`},
		{Name: "an id with spaces, false, two repositories in document order", YAML: `yum_repos:
  zeta:
    baseurl: http://z.example/
    enabled: false
  my package stream:
    mirrorlist: http://some-url-to-list-of-baseurls
    baseurl: http://blah.org/pub/epel/testing/5/$basearch/
    repo_gpgcheck: 1
    enable_gpgcheck: true
`},
		{Name: "keys cleaned: case, dashes, spaces; the first place and the last value", YAML: `yum_repos:
  r:
    BaseURL: http://a.example/
    Skip-If-Unavailable: yes
    " gpgcheck ": no
    gpgCheck: 1
    "": dropped
`},
		{Name: "values: lists one per line, numbers, null, floats, empty", YAML: `yum_repos:
  r:
    baseurl: [http://a.example/, http://b.example/, [http://c.example/, true]]
    gpgkey:
      - file:///etc/pki/a
    cost: 0644
    priority: 1.50
    timeout: 1e3
    proxy: null
    username: ""
    exclude: []
    name: "Ünïcode — repo %(x)s 100%%"
`},
		{Name: "an existing file is left alone", YAML: "yum_repos:\n  old: {baseurl: http://o.example/}\n  new: {baseurl: http://n.example/}\n", Existing: []string{"/etc/yum.repos.d/old.repo"}},
		{Name: "two ids, one file: the first wins", YAML: "yum_repos:\n  my repo: {baseurl: http://1.example/}\n  my-repo: {baseurl: http://2.example/}\n"},
		{Name: "a repository without baseurl is skipped, the others written", YAML: "yum_repos:\n  good: {baseurl: http://g.example/}\n  bad: {name: no url}\n  empty:\n"},
		{Name: "empty yum_repos", YAML: "yum_repos: {}\n"},
		{Name: "null yum_repos", YAML: "yum_repos:\n"},
		{Name: "yum_repos a list", YAML: "yum_repos: [a, b]\n"},
		{Name: "a repository given as a string", YAML: "yum_repos:\n  a: {baseurl: http://a.example/}\n  b: http://b.example/\n"},
		{Name: "metalink alone", YAML: "yum_repos:\n  fedora:\n    metalink: https://mirrors.fedoraproject.org/metalink?repo=fedora-$releasever&arch=$basearch\n",
			differs: "cloud-init 22.4 wants baseurl; later releases, and flint, accept metalink or mirrorlist"},
		{Name: "a lone percent", YAML: "yum_repos:\n  a: {baseurl: http://a.example/}\n  b: {baseurl: http://b.example/%20x}\n  c: {baseurl: http://c.example/}\n",
			differs: "cloud-init writes a, fails at b and never writes c; flint skips b alone"},
		{Name: "a mapping as a value", YAML: "yum_repos:\n  a: {baseurl: http://a.example/, gpgkey: {k: v}}\n",
			differs: "cloud-init writes Python's repr {'k': 'v'}, which yum cannot use; flint skips the repository"},
		{Name: "an id with a slash", YAML: "yum_repos:\n  ../../etc/evil: {baseurl: http://a.example/}\n",
			differs: "cloud-init writes outside yum_repo_dir; flint skips the repository"},
	}
	var ref map[string]struct {
		Files map[string]string `json:"files"`
		Error string            `json:"error"`
	}
	runReference(t, "yumrepos_ref.py", map[string]any{"now": yumNow.Unix(), "cases": cases}, &ref)
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			r := ref[c.Name]
			p, err := yumPlan(t, c)
			if r.Error != "" && c.differs == "" {
				// cloud-init fails the module before writing: so does flint.
				var ce *ConfigError
				if !errors.As(err, &ce) || len(r.Files) != 0 {
					t.Fatalf("cloud-init: %s, files %q; flint: %v", r.Error, r.Files, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("flint: %v (cloud-init: %q)", err, r.Error)
			}
			got := map[string]string{}
			for _, e := range c.Existing {
				got[e] = "existing\n"
			}
			var problems []string
			if p != nil {
				for _, f := range p.Files {
					if f.Mode != 0o644 {
						t.Errorf("%s mode %v", f.Path, f.Mode)
					}
					got[f.Path] = string(f.Content)
				}
				problems = p.Problems
			}
			if c.differs != "" {
				if reflect.DeepEqual(got, r.Files) && r.Error == "" {
					t.Fatalf("listed as a difference (%s), but flint and cloud-init agree: %q", c.differs, got)
				}
				t.Logf("deliberate difference: %s\nflint      %q %q\ncloud-init %q %s", c.differs, got, problems, r.Files, r.Error)
				return
			}
			if !reflect.DeepEqual(got, r.Files) {
				t.Errorf("files:\nflint      %q\ncloud-init %q", got, r.Files)
			}
		})
	}
}

func TestYumReposOddValues(t *testing.T) {
	plan := func(yaml string) *YumReposPlan {
		t.Helper()
		p, err := yumPlan(t, yumCase{YAML: yaml})
		if err != nil {
			t.Fatalf("%q: %v", yaml, err)
		}
		return p
	}
	if p := plan("yum_repos:\n  fedora: {metalink: https://m.example/}\n  updates: {mirrorlist: https://l.example/}\n"); len(p.Files) != 2 || len(p.Problems) != 0 {
		t.Errorf("metalink or mirrorlist alone: %+v", p)
	}
	p := plan("yum_repos:\n  a: {baseurl: http://a.example/}\n  b: {baseurl: http://b.example/%20x}\n  c: {name: c}\n  DEFAULT: {baseurl: http://d.example/}\n  ../x: {baseurl: http://x.example/}\n  m: {baseurl: http://m.example/, gpgkey: {k: v}}\n")
	if len(p.Files) != 1 || p.Files[0].Path != "/etc/yum.repos.d/a.repo" {
		t.Errorf("files %+v, want a.repo alone", p.Files)
	}
	for _, want := range []string{`"b" has a % in baseurl`, `"c" has none of baseurl, metalink or mirrorlist`, `"DEFAULT" is not a name`, `"../x" has a /`, `"m" has a mapping as the value of gpgkey`} {
		found := false
		for _, pr := range p.Problems {
			found = found || strings.Contains(pr, want) && !strings.Contains(pr, "\n")
		}
		if !found {
			t.Errorf("no one-line problem %q in %q", want, p.Problems)
		}
	}
	for _, bad := range []string{"yum_repos: [a]\n", "yum_repos: text\n", "yum_repos: {a: text}\n", "yum_repos: {a: {baseurl: x}}\nyum_repo_dir:\n", "yum_repos: {a: {baseurl: x}}\nyum_repo_dir: [a]\n"} {
		var ce *ConfigError
		if p, err := yumPlan(t, yumCase{YAML: bad}); p != nil || !errors.As(err, &ce) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: %+v %v, want one ConfigError line and no plan", bad, p, err)
		}
	}
	if p := plan("yum_repos:\n  r: {baseurl: x}\nyum_repo_dir: etc/yum.repos.d\n"); p.Files[0].Path != "/etc/yum.repos.d/r.repo" {
		t.Errorf("a relative yum_repo_dir is below / (cloud-init's working directory): %s", p.Files[0].Path)
	}
	if p := plan("other: 1\n"); p != nil {
		t.Errorf("no yum_repos: %+v", p)
	}
}

// BenchmarkYumReposPlan measures the decision alone: the key order read
// from the user-data and three repositories rendered.
//
//	go test -run '^$' -bench YumReposPlan ./cloudconfig
func BenchmarkYumReposPlan(b *testing.B) {
	ud, err := userdata.Parse(context.Background(), []byte("#cloud-config\nyum_repos:\n"+
		"  epel: {name: EPEL, baseurl: 'http://e.example/$basearch/', gpgcheck: true, gpgkey: [file:///a, file:///b]}\n"+
		"  copr: {metalink: 'https://m.example/?repo=x', enabled: false}\n"+
		"  local repo: {baseurl: file:///srv/repo, priority: 10}\n"), userdata.Options{NoInclude: true})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		p, err := YumRepos(YumReposInput{Config: ud.Config, Order: ReadKeyOrder(ud, "yum_repos"), Now: yumNow, Exists: func(string) bool { return false }})
		if err != nil || len(p.Files) != 3 {
			b.Fatalf("%+v %v", p, err)
		}
	}
}
