// Package hostnames turns free text into valid host names: the sanitising
// rules flint applies to every name it sets, and the decision of a host
// name from an instance tag (hostname.from_tag). It is pure; setting the
// name is the hostname handler's business.
package hostnames

import (
	"fmt"
	"strings"
)

// Names is a decided host name and its fully qualified form.
type Names struct {
	Hostname string
	FQDN     string
}

// Sanitize lower-cases a name, replaces characters outside [a-z0-9-] in
// each label with "-", trims "-" from label ends, drops empty labels,
// cuts labels to 63 bytes and the whole name to 253 (at a label boundary
// where there is one).
func Sanitize(s string) string {
	var labels []string
	for _, l := range strings.Split(strings.ToLower(strings.TrimSpace(s)), ".") {
		l = strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
				return r
			}
			return '-'
		}, l)
		if len(l) > 63 {
			l = l[:63]
		}
		l = strings.Trim(l, "-")
		if l != "" {
			labels = append(labels, l)
		}
	}
	out := strings.Join(labels, ".")
	for len(out) > 253 {
		i := strings.LastIndexByte(out, '.')
		if i < 0 {
			out = out[:253]
			break
		}
		out = out[:i]
	}
	return out
}

// FromTag decides the host names from a tag's value (the Name tag, say
// "Web server #1"). Tag values are free text, so each run of characters
// a host name cannot hold becomes one "-" ("web-server-1") before
// Sanitize. A value with dots is a fully qualified name; one without
// takes the domain of localHostname (meta-data/local-hostname, "" when
// absent). A value that leaves nothing usable is an error.
func FromTag(value, localHostname string) (Names, error) {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(strings.TrimSpace(value)) {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.'
		switch {
		case ok:
			b.WriteRune(r)
			dash = false
		case !dash:
			b.WriteByte('-')
			dash = true
		}
	}
	name := Sanitize(b.String())
	if name == "" {
		return Names{}, fmt.Errorf("tag value %q gives no usable host name (want letters or digits)", truncate(value, 64))
	}
	short, _, hasDot := strings.Cut(name, ".")
	if hasDot {
		return Names{Hostname: short, FQDN: name}, nil
	}
	fqdn := short
	if _, domain, ok := strings.Cut(Sanitize(localHostname), "."); ok && domain != "" {
		fqdn = Sanitize(short + "." + domain)
	}
	return Names{Hostname: short, FQDN: fqdn}, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
