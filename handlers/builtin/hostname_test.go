package builtin

import (
	"strings"
	"testing"

	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/handlers/handlerstest"
)

func TestHostnameFromTagIsOptInAndYieldsToCloudConfig(t *testing.T) {
	const local = "ip-10-0-1-23"
	for _, tc := range []struct {
		name, config, userData, tagValue string
		noTags                           bool
		wantHost, wantNote, wantErr      string
		wantFQDN                         string
	}{
		{name: "off by default", userData: "#cloud-config\n{}\n", tagValue: "Web server #1", wantHost: local},
		{name: "the tag's value, sanitised", config: "hostname:\n  from_tag: Name\n", userData: "#cloud-config\n{}\n",
			tagValue: "Web server #1", wantHost: "web-server-1", wantNote: "host name from tag Name",
			wantFQDN: "web-server-1.eu-west-1.compute.internal"},
		{name: "cloud-config's hostname wins", config: "hostname:\n  from_tag: Name\n", userData: "#cloud-config\nhostname: app\n",
			tagValue: "Web server #1", wantHost: "app", wantNote: "cloud-config names the host"},
		{name: "no tags exposed", config: "hostname:\n  from_tag: Name\n", userData: "#cloud-config\n{}\n",
			noTags: true, wantHost: local, wantNote: "does not expose tags"},
		{name: "no such tag", config: "hostname:\n  from_tag: Owner\n", userData: "#cloud-config\n{}\n",
			tagValue: "web", wantHost: local, wantNote: "has no tag Owner"},
		{name: "a value with no usable name", config: "hostname:\n  from_tag: Name\n", userData: "#cloud-config\n{}\n",
			tagValue: "###", wantHost: local, wantErr: `hostname.from_tag Name: tag value "###" gives no usable host name`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := udInstance(t, tc.userData)
			if tc.config != "" {
				in.Config(t, tc.config)
			}
			if tc.noTags {
				in.Emu.Delete("meta-data/tags")
			} else {
				in.Emu.Set("meta-data/tags/instance/Name", []byte(tc.tagValue))
			}
			st, _ := runUD(t, in, func(s *handlers.Setup) { s.Only = []string{"hostname"} })
			r := handlerstest.Result(st, "hostname")
			if got := strings.TrimSpace(in.ReadFile(t, "etc/hostname")); got != tc.wantHost {
				t.Errorf("etc/hostname %q, want %q (notes %q, %s)", got, tc.wantHost, r.Notes, r.Reason)
			}
			if hosts := in.ReadFile(t, "etc/hosts"); tc.wantFQDN != "" && !strings.Contains(hosts, "127.0.1.1 "+tc.wantFQDN+" "+tc.wantHost+" ") {
				t.Errorf("etc/hosts lacks %s %s (the domain of local-hostname):\n%s", tc.wantFQDN, tc.wantHost, hosts)
			}
			if tc.wantNote != "" && !notesWith(r.Notes, tc.wantNote) {
				t.Errorf("notes %q, want one with %q", r.Notes, tc.wantNote)
			}
			switch {
			case tc.wantErr != "" && (r.Status != handlers.ResultFailed || !strings.Contains(r.Reason, tc.wantErr)):
				t.Errorf("hostname %s (%s), want failed with %q", r.Status, r.Reason, tc.wantErr)
			case tc.wantErr == "" && r.Status != handlers.ResultOK:
				t.Errorf("hostname %s (%s), want ok", r.Status, r.Reason)
			}
		})
	}
}
