package cloudconfig

import (
	"fmt"
	"net/url"
	"sort"

	"github.com/flint-dev/flint/userdata"
)

// phoneHomeAll is cloud-init's POST_LIST_ALL.
var phoneHomeAll = []string{"pub_key_dsa", "pub_key_rsa", "pub_key_ecdsa", "pub_key_ed25519", "instance_id", "hostname", "fqdn"}

// PhoneHomeHostKeys are the host public key files phone_home reads, by
// field name.
var PhoneHomeHostKeys = map[string]string{
	"pub_key_dsa":     "/etc/ssh/ssh_host_dsa_key.pub",
	"pub_key_rsa":     "/etc/ssh/ssh_host_rsa_key.pub",
	"pub_key_ecdsa":   "/etc/ssh/ssh_host_ecdsa_key.pub",
	"pub_key_ed25519": "/etc/ssh/ssh_host_ed25519_key.pub",
}

// PhoneHomeFacts is what phone_home can report: the instance id, the
// hostname and FQDN, and the host key files' contents by field name
// (absent files left out).
type PhoneHomeFacts struct {
	InstanceID, Hostname, FQDN string
	HostKeys                   map[string]string
}

// PhoneHomePlan is the POST cc_phone_home sends: URL, the form body
// (application/x-www-form-urlencoded) and how many tries, 3 s apart.
type PhoneHomePlan struct {
	URL   string
	Form  url.Values
	Tries int
	// Missing names requested fields that had no value ("N/A" sent);
	// cloud-init warns about each.
	Missing []string
}

// PhoneHome plans cc_phone_home (frequency once per instance) as
// cloud-init 22.4 does: post "all" (the default) or a list of field
// names; a field without a value is sent as "N/A"; tries defaults to 10
// when missing or not an integer; $INSTANCE_ID / ${INSTANCE_ID} in the URL
// is the instance id. Without a url the module does nothing.
func PhoneHome(v any, facts PhoneHomeFacts) (*PhoneHomePlan, error) {
	if v == nil {
		return nil, nil
	}
	cfg, ok := v.(map[string]any)
	if !ok {
		return nil, configErrorf("phone_home", "is %s, not a mapping", typeName(v))
	}
	rawURL, ok := cfg["url"]
	if !ok {
		return nil, nil
	}
	tries := 10
	if n, err := pyInt(cfg["tries"]); err == nil {
		tries = int(n)
	}
	fields := phoneHomeAll
	if p, ok := cfg["post"]; ok && userdata.PyStr(p) != "all" {
		l, ok := p.([]any)
		if !ok {
			return nil, configErrorf("phone_home.post", "is %s; want \"all\" or a list of field names", typeName(p))
		}
		fields = nil
		for _, f := range l {
			fields = append(fields, userdata.PyStr(f))
		}
	}
	all := map[string]string{"instance_id": facts.InstanceID, "hostname": facts.Hostname, "fqdn": facts.FQDN}
	for k, c := range facts.HostKeys {
		all[k] = c
	}
	p := &PhoneHomePlan{Form: url.Values{}, Tries: tries}
	for _, f := range fields {
		if val, ok := all[f]; ok {
			p.Form.Set(f, val)
		} else {
			p.Form.Set(f, "N/A")
			p.Missing = append(p.Missing, f)
		}
	}
	sort.Strings(p.Missing)
	u, err := basicRender(userdata.PyStr(rawURL), map[string]any{"INSTANCE_ID": facts.InstanceID})
	if err != nil {
		return nil, configErrorf("phone_home.url", "%v", err)
	}
	if pu, err := url.Parse(u); err != nil || pu.Scheme == "" || pu.Host == "" {
		return nil, configErrorf("phone_home.url", "%s", fmt.Sprintf("%q is not an absolute URL", u))
	}
	p.URL = u
	return p, nil
}
