package hostnames

import (
	"strings"
	"testing"
)

func TestSanitize(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"a valid name is kept", "web-1", "web-1"},
		{"capitals are lowered", "Web-1.Example.COM", "web-1.example.com"},
		{"underscores and spaces become dashes", "my_host name", "my-host-name"},
		{"dashes at label ends are trimmed", "-web-.-x-", "web.x"},
		{"empty labels are dropped", "a..b.", "a.b"},
		{"a label is cut to 63 bytes", strings.Repeat("a", 70), strings.Repeat("a", 63)},
		{"a name is cut to 253 bytes at a label boundary", strings.Repeat(strings.Repeat("b", 60)+".", 5), strings.TrimSuffix(strings.Repeat(strings.Repeat("b", 60)+".", 4), ".")},
		{"nothing usable gives empty", " --- ", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Sanitize(tc.in); got != tc.want {
				t.Fatalf("Sanitize(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestFromTag(t *testing.T) {
	for _, tc := range []struct {
		name, value, local string
		want               Names
		err                string
	}{
		{name: "a plain tag takes the domain of local-hostname", value: "web-1", local: "ip-10-0-1-23.eu-west-1.compute.internal",
			want: Names{"web-1", "web-1.eu-west-1.compute.internal"}},
		{name: "free text becomes one dash per run of other characters", value: "Web Server #1 (prod)", local: "",
			want: Names{"web-server-1-prod", "web-server-1-prod"}},
		{name: "a dotted tag is the fully qualified name", value: "db.Example.org", local: "ip-10-0-1-23.eu-west-1.compute.internal",
			want: Names{"db", "db.example.org"}},
		{name: "non-ASCII letters become dashes", value: "café-ünïcode", local: "",
			want: Names{"caf-n-code", "caf-n-code"}},
		{name: "a local-hostname without a domain gives the short name", value: "web", local: "localhost",
			want: Names{"web", "web"}},
		{name: "a tag with nothing usable is an error", value: "###", err: `tag value "###" gives no usable host name`},
		{name: "an empty tag is an error", value: "", err: "no usable host name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := FromTag(tc.value, tc.local)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("FromTag(%q, %q) = %+v, %v; want %+v", tc.value, tc.local, got, err, tc.want)
			}
		})
	}
}
