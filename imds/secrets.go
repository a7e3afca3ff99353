package imds

import (
	"bytes"
	"strings"
)

// Redacted stands in for a secret that a command does not show.
const Redacted = "<redacted>"

// secretFields are the members of a credentials document that grant
// access: the role's secret key and its session token. AccessKeyId,
// Expiration and the rest stay readable, since they are what a person
// debugging an instance compares.
var secretFields = []string{"SecretAccessKey", "Token"}

// SecretPath reports whether a metadata path (relative to /latest/, or
// from the server root) holds credentials: the instance role's
// (meta-data/iam/security-credentials/ROLE) and the instance identity
// role's (meta-data/identity-credentials/…/security-credentials/…).
func SecretPath(path string) bool {
	p := strings.TrimPrefix(path, "/")
	if i := strings.Index(p, "meta-data/"); i >= 0 {
		p = p[i:]
	} else {
		return false
	}
	if !strings.HasPrefix(p, "meta-data/iam/security-credentials/") &&
		!strings.HasPrefix(p, "meta-data/identity-credentials/") {
		return false
	}
	// Listings (role names) are not secret; only a role's document is.
	return !strings.HasSuffix(p, "/") && strings.Contains(p, "security-credentials/")
}

// RedactValue returns v with the secret members of a credentials document
// replaced by Redacted, when path is a credentials path; any other value
// is returned as it is. The document keeps its layout byte for byte
// around the replaced strings, so a person sees what the service sent. A
// credentials value that is not the expected JSON is replaced whole: a
// secret in an unexpected shape is still a secret.
func RedactValue(path string, v []byte) []byte {
	if !SecretPath(path) || len(bytes.TrimSpace(v)) == 0 {
		return v
	}
	out, ok := redactJSONStrings(v, secretFields)
	if !ok {
		return []byte(Redacted)
	}
	return out
}

// redactJSONStrings replaces the string values of the named members of a
// flat JSON object. ok is false when the text is not such an object or a
// named member's value is not a plain string.
func redactJSONStrings(v []byte, names []string) (out []byte, ok bool) {
	t := bytes.TrimSpace(v)
	if len(t) < 2 || t[0] != '{' || t[len(t)-1] != '}' {
		return nil, false
	}
	out = make([]byte, 0, len(v))
	i := 0
	for i < len(v) {
		c := v[i]
		if c != '"' {
			out = append(out, c)
			i++
			continue
		}
		end, ok := stringEnd(v, i)
		if !ok {
			return nil, false
		}
		key := string(v[i+1 : end])
		out = append(out, v[i:end+1]...)
		i = end + 1
		// A member name is followed by ':'; copy the gap and look.
		j := i
		for j < len(v) && (v[j] == ' ' || v[j] == '\t' || v[j] == '\n' || v[j] == '\r') {
			j++
		}
		if j >= len(v) || v[j] != ':' || !contains(names, key) {
			continue
		}
		j++
		for j < len(v) && (v[j] == ' ' || v[j] == '\t' || v[j] == '\n' || v[j] == '\r') {
			j++
		}
		if j >= len(v) || v[j] != '"' {
			return nil, false
		}
		vend, ok := stringEnd(v, j)
		if !ok {
			return nil, false
		}
		out = append(out, v[i:j+1]...)
		out = append(out, Redacted...)
		out = append(out, '"')
		i = vend + 1
	}
	return out, true
}

// stringEnd returns the index of the quote that closes the JSON string
// starting at v[start].
func stringEnd(v []byte, start int) (int, bool) {
	for k := start + 1; k < len(v); k++ {
		switch v[k] {
		case '\\':
			k++
		case '"':
			return k, true
		}
	}
	return 0, false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
