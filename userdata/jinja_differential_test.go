package userdata

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/flint-dev/flint/imds"
	"github.com/flint-dev/flint/internal/testenv"
)

// jinjaIMDS is one instance's metadata service: listings (paths ending in
// "/") and leaves, as IMDS answers them. cloud-init crawls it with its own
// materializer; flint builds its tree from the leaves as imds.Walk would.
var jinjaIMDS = map[string]string{
	"meta-data/": "ami-id\nami-launch-index\nhostname\niam/\ninstance-id\ninstance-type\n" +
		"local-hostname\nlocal-ipv4\nplacement/\npublic-keys/\nsecurity-groups",
	"meta-data/ami-id":                       "ami-0abcdef1234567890",
	"meta-data/ami-launch-index":             "0",
	"meta-data/hostname":                     "ip-10-0-0-5.ec2.internal",
	"meta-data/iam/":                         "info\nsecurity-credentials/",
	"meta-data/iam/info":                     `{"Code":"Success","InstanceProfileArn":"arn:aws:iam::123456789012:instance-profile/web"}`,
	"meta-data/iam/security-credentials/":    "web",
	"meta-data/iam/security-credentials/web": `{"AccessKeyId":"AKIAEXAMPLE","SecretAccessKey":"secret"}`,
	"meta-data/instance-id":                  "i-0123456789abcdef0",
	"meta-data/instance-type":                "t3.micro",
	"meta-data/local-hostname":               "ip-10-0-0-5.ec2.internal",
	"meta-data/local-ipv4":                   "10.0.0.5",
	"meta-data/placement/":                   "availability-zone\nregion",
	"meta-data/placement/availability-zone":  "us-east-1a",
	"meta-data/placement/region":             "us-east-1",
	"meta-data/public-keys/":                 "0=deploy\n1=backup",
	"meta-data/public-keys/0/openssh-key":    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA deploy@example",
	"meta-data/public-keys/1/openssh-key":    "ssh-rsa AAAAB3NzaC1yc2E backup@example",
	"meta-data/security-groups":              "default\nweb",
	"dynamic/instance-identity/":             "document\nsignature",
	"dynamic/instance-identity/document":     `{"accountId":"123456789012","availabilityZone":"us-east-1a","instanceId":"i-0123456789abcdef0","region":"us-east-1","architecture":"x86_64"}`,
	"dynamic/instance-identity/signature":    "c2lnbmF0dXJl",
}

// jinjaSources is jinjaIMDS as flint reads it.
func jinjaSources(t testing.TB) InstanceSources {
	entries := map[string][]imds.Entry{}
	for p, v := range jinjaIMDS {
		if !strings.HasSuffix(p, "/") {
			root, _, _ := strings.Cut(p, "/")
			entries[root] = append(entries[root], imds.Entry{Path: p, Value: []byte(v)})
		}
	}
	names := map[string]string{}
	for _, l := range strings.Split(jinjaIMDS["meta-data/public-keys/"], "\n") {
		if i, n, ok := strings.Cut(l, "="); ok {
			names[i] = n
		}
	}
	return InstanceSources{
		MetaData:       imds.Tree(entries["meta-data"], "meta-data"),
		Dynamic:        imds.Tree(entries["dynamic"], "dynamic"),
		PublicKeyNames: names,
	}
}

// jinjaCorpus is rendered by both; each text follows a
// "## template: jinja" line.
var jinjaCorpus = []struct{ name, text string }{
	{"v1 variable", "#cloud-config\nhostname: {{ v1.local_hostname }}\n"},
	{"top-level copies of v1", "{{ instance_id }} {{ region }} {{ cloud_name }} {{ platform }} {{ cloud_id }} {{ subplatform }}\n"},
	{"hyphenated keys and their aliases", "{{ ds.meta_data.instance_id }} {{ ds.meta_data.placement.availability_zone }} {{ ds['meta-data']['local-hostname'] }} {{ v1['availability-zone'] }}\n"},
	{"missing variables", "{{ v1.nope }} {{ nope }} {{ ds.meta_data.nope }} {{ v1['no-such'] }}\n"},
	{"missing list index", "{{ v1.public_ssh_keys[5] }}\n"},
	{"missing with whitespace control", "a   {{- v1.nope -}}   b\n"},
	{"if elif else", "{% if v1.region == 'eu-west-1' %}\nwest\n{% elif v1.region.startswith('us') %}\nus\n{% else %}\nother\n{% endif %}\n"},
	{"if on a missing variable", "{% if v1.nope %}yes{% else %}no{% endif %}\n"},
	{"defined tests", "{% if v1.nope is defined %}d{% else %}u{% endif %} {% if v1.region is defined %}d{% endif %}\n"},
	{"for over the ssh keys", "#cloud-config\nssh_authorized_keys:\n{% for k in v1.public_ssh_keys %}\n  - {{ k }}\n{% endfor %}\n"},
	{"loop variables", "{% for g in ds.meta_data.security_groups %}{{ loop.index }}={{ g }}{% if not loop.last %},{% endif %}{% endfor %}\n"},
	{"default filter", "{{ v1.nope | default('fallback') }} {{ v1.region | default('x') }} {{ nope | d('y') }}\n"},
	{"filters", "{{ v1.region | upper }} {{ v1.region | replace('-', '_') }} {{ v1.public_ssh_keys | length }} {{ ds.meta_data.security_groups | join(',') }}\n"},
	{"method calls", "{{ v1.region.upper() }} {{ v1.local_hostname.split('-')[0] }} {{ v1.availability_zone[-1] }} {{ v1.region.replace('us', 'US') }}\n"},
	{"set", "{% set az = v1.availability_zone %}{{ az }}-{{ az | length }}\n"},
	{"dictsort", "{% for k, v in ds.meta_data.placement | dictsort %}{{ k }}={{ v }};{% endfor %}\n"},
	{"indentation before blocks is kept", "#cloud-config\nruncmd:\n  {% if true %}\n  - echo a\n  {% endif %}\n  - echo b\n"},
	{"indentation at the start", "  {% if true %}x{% endif %}\n"},
	{"whitespace control", "a\n  {%- if true -%}\n  b\n  {%- endif %}\nc\n"},
	{"comments", "x {# note #} y\n  {# indented #}\nz\n"},
	{"raw", "{% raw %}{{ not rendered }} {% if %}{% endraw %}\n"},
	{"raw with trim markers", "{% raw -%}\n  {{ x }}  {%- endraw %}\nafter\n"},
	{"raw with quotes and backslashes", "  {% raw %}\nit's \\ \"{{ y }}\"\n  {% endraw %}\nz\n"},
	{"no trailing newline", "{{ v1.region }}"},
	{"two trailing newlines", "{{ v1.region }}\n\n"},
	{"crlf", "a\r\n{{ v1.region }}\r\nb\r\n"},
	{"merged_cfg", "{{ merged_cfg._doc }}\n"},
	{"inline if and arithmetic", "{{ 'many' if v1.public_ssh_keys | length > 1 else 'one' }} {{ 7 // 2 }} {{ 2 ** 3 }}\n"},
	{"concatenation", "{{ v1.region ~ '/' ~ v1.instance_id }}\n"},
	{"identity document", "{{ ds.dynamic.instance_identity.document.accountId }} {{ ds.dynamic['instance-identity'].document.architecture }}\n"},
	{"multi-line leaves become lists", "{{ ds.meta_data.security_groups[1] }} {{ ds.meta_data.security_groups | length }}\n"},
	{"json leaves become mappings", "{{ ds.meta_data.iam.info.InstanceProfileArn }}\n"},
	{"credentials are left out", "{{ ds.meta_data.iam.security_credentials }}\n"},
	{"public keys by name", "{{ ds.meta_data.public_keys.deploy }}\n"},
	{"in operator", "{% if 'east' in v1.region %}yes{% endif %} {% if 'web' in ds.meta_data.security_groups %}web{% endif %}\n"},
	{"macro", "{% macro greet(n) %}hi {{ n }}{% endmacro %}{{ greet(v1.region) }}\n"},
	{"loop variable shadowing a top-level name", "{% for region in ['a', 'b'] %}{{ region }}{% endfor %} {{ region }}\n"},
	{"hyphen read as subtraction", "{{ v1.local-hostname }}\n"},
	{"lookup through an undefined variable", "{{ nope.deeper }}\n"},
	{"syntax error", "{% if %}\n"},
	{"empty condition", "{% if %}x{% endif %}\n"},
	{"unclosed block", "{% if true %}\nx\n"},
	{"unknown filter", "{{ v1.region | nosuchfilter }}\n"},
	{"string percent formatting", "{{ '%s!' % v1.region }}\n"},
	{"missing variable inside an expression", "{{ 'a' ~ v1.nope }}\n"},
	{"host facts", "{{ v1.distro }} {{ v1.kernel_release }}\n"},
	{"do extension", "{% set l = [] %}{% do l.append(1) %}{{ l }}\n"},
}

// jinjaDeliberate lists the corpus entries where flint departs from
// cloud-init on purpose, with the reason. The test checks flint's side of
// each (failing where it says flint fails).
var jinjaDeliberate = map[string]struct {
	flintFails bool
	reason     string
}{
	"string percent formatting": {true, "the engine has no python %-formatting (it would render 0); flint refuses the template instead of rendering it wrong"},
	"missing variable inside an expression": {false, "an undefined value inside a larger expression renders empty, not as CI_MISSING_JINJA_VAR/<name>: " +
		"only output expressions that are plain variable paths are resolved before the engine runs"},
	"host facts":   {false, "v1 keys cloud-init takes from the host (distro, kernel_release, machine, python_version, system_platform, variant) are not provided"},
	"do extension": {true, "the jinja2 'do' extension is not available in the engine"},
}

func TestJinjaRendersLikeCloudInit(t *testing.T) {
	py := testenv.Tool(t, referencePython)
	out, err := exec.Command(py, "-c", "import cloudinit.handlers.jinja_template, jinja2").CombinedOutput()
	testenv.Need(t, err == nil, fmt.Sprintf("Debian's cloud-init and jinja2 importable by %s: %v %s", py, err, out))

	type tmpl struct {
		Name string `json:"name"`
		Text string `json:"text"`
	}
	req := struct {
		IMDS      map[string]string `json:"imds"`
		Templates []tmpl            `json:"templates"`
	}{IMDS: jinjaIMDS}
	for _, c := range jinjaCorpus {
		req.Templates = append(req.Templates, tmpl{c.name, "## template: jinja\n" + c.text})
	}
	dir := t.TempDir()
	mf := filepath.Join(dir, "manifest.json")
	b, _ := json.Marshal(req)
	if err := os.WriteFile(mf, b, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "testdata/jinja_ref.py", mf)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + dir, "LANG=C.UTF-8"}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("jinja_ref.py: %v\n%s", err, stderr.String())
	}
	var ref struct {
		InstanceData map[string]any `json:"instance_data"`
		Results      map[string]struct {
			Out   *string `json:"out"`
			Error string  `json:"error"`
		} `json:"results"`
	}
	if err := json.Unmarshal(stdout, &ref); err != nil {
		t.Fatalf("jinja_ref.py output: %v", err)
	}

	data := BuildInstanceData(jinjaSources(t))
	t.Run("instance data is cloud-init's for the same IMDS", func(t *testing.T) {
		want := ref.InstanceData
		// What cloud-init reads from the host, not from IMDS.
		delete(want, "sys_info")
		delete(want, "sensitive_keys")
		v1, _ := want["v1"].(map[string]any)
		for _, k := range []string{"distro", "distro_release", "distro_version", "kernel_release", "machine", "python_version", "system_platform", "variant"} {
			delete(v1, k)
		}
		got := jsonNormal(t, data)
		if !reflect.DeepEqual(got, jsonNormal(t, want)) {
			g, _ := json.MarshalIndent(got, "", " ")
			w, _ := json.MarshalIndent(want, "", " ")
			t.Fatalf("instance data differs\nflint:\n%s\ncloud-init:\n%s", g, w)
		}
	})

	names := make([]string, 0, len(jinjaCorpus))
	for _, c := range jinjaCorpus {
		names = append(names, c.name)
	}
	sort.Strings(names)
	for _, c := range jinjaCorpus {
		t.Run(c.name, func(t *testing.T) {
			r, ok := ref.Results[c.name]
			if !ok {
				t.Fatal("no reference result")
			}
			got, err := RenderJinja([]byte("## template: jinja\n"+c.text), data)
			if d, ok := jinjaDeliberate[c.name]; ok {
				if d.flintFails != (err != nil) {
					t.Fatalf("flint: %q, %v; listed as deliberate (%s)", got, err, d.reason)
				}
				if r.Out != nil && err == nil && string(got) == *r.Out {
					t.Fatalf("listed as a deliberate difference but renders as cloud-init does: %q", got)
				}
				return
			}
			switch {
			case r.Out == nil && err == nil:
				t.Fatalf("cloud-init fails (%s); flint renders %q", r.Error, got)
			case r.Out != nil && err != nil:
				t.Fatalf("cloud-init renders %q; flint fails: %v", *r.Out, err)
			case r.Out != nil && string(got) != *r.Out:
				t.Fatalf("flint renders\n%q\ncloud-init renders\n%q", got, *r.Out)
			}
		})
	}
}
