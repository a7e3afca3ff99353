package userdata

import (
	"regexp"
	"strings"
	"sync"
)

// Redacted stands in for a secret that `flint userdata inspect` does not
// show.
const Redacted = "<redacted>"

// secretKeyParts are the words that make a cloud-config key's value a
// secret wherever the key stands: users[].passwd, chpasswd.users[].password,
// password, rh_subscription.password, ubuntu_advantage.token,
// ssh_keys.rsa_private, chef.validation_key, landscape's registration_key …
var secretKeyParts = []string{"passw", "secret", "token", "private", "validation_key", "validation_cert", "registration_key"}

// secretKey reports whether a mapping key names a secret value.
func secretKey(k string) bool {
	k = strings.ToLower(k)
	for _, p := range secretKeyParts {
		if strings.Contains(k, p) {
			return true
		}
	}
	return false
}

// urlPassword matches the password of a URL's user information
// (apt's proxy: http://user:password@host:3128).
var urlPassword = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]+:)([^/\s@]+)(@)`)
})

// Redact returns a copy of a cloud-config tree with its secrets replaced
// by Redacted: the values of keys that name passwords, tokens, private
// keys and the like (see secretKey); each password of chpasswd's `list`
// ("user:password" lines); any text that holds a PEM private key (a key
// in write_files content); and the password of a URL with user
// information. What a person needs to check the config (user names, key
// names, paths, public keys) stays.
func Redact(cfg map[string]any) map[string]any {
	if cfg == nil {
		return nil
	}
	return redactMap(cfg, "").(map[string]any)
}

func redactMap(m map[string]any, parent string) any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		switch {
		case v == nil:
			out[k] = nil
		case k == "chpasswd":
			// chpasswd holds passwords (see below) and switches (expire).
			out[k] = redactValue(v, k)
		case secretKey(k):
			out[k] = redactLeaves(v)
		case parent == "chpasswd" && k == "list":
			out[k] = redactChpasswdList(v)
		default:
			out[k] = redactValue(v, k)
		}
	}
	return out
}

func redactValue(v any, key string) any {
	switch v := v.(type) {
	case map[string]any:
		return redactMap(v, key)
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = redactValue(x, key)
		}
		return out
	case string:
		return redactString(v)
	}
	return v
}

// redactLeaves replaces every scalar below a secret key, keeping the shape
// (a list of passwords stays a list).
func redactLeaves(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = redactLeaves(x)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = redactLeaves(x)
		}
		return out
	case nil:
		return nil
	case bool:
		// lock_passwd: true, ssh_pwauth … are switches, not secrets.
		return v
	}
	return Redacted
}

func redactString(s string) string {
	if strings.Contains(s, "PRIVATE KEY") && strings.Contains(s, "-----BEGIN") {
		return Redacted
	}
	if strings.Contains(s, "://") {
		s = urlPassword().ReplaceAllString(s, "${1}"+Redacted+"${3}")
	}
	return s
}

// redactChpasswdList keeps the user of each "user:password" entry of
// chpasswd's list, as a string of lines or a list of strings.
func redactChpasswdList(v any) any {
	line := func(l string) string {
		if i := strings.IndexByte(l, ':'); i >= 0 {
			return l[:i+1] + Redacted
		}
		if strings.TrimSpace(l) == "" {
			return l
		}
		return Redacted
	}
	switch v := v.(type) {
	case string:
		lines := strings.Split(v, "\n")
		for i, l := range lines {
			lines[i] = line(l)
		}
		return strings.Join(lines, "\n")
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			if s, ok := x.(string); ok {
				out[i] = line(s)
			} else {
				out[i] = redactLeaves(x)
			}
		}
		return out
	}
	return redactLeaves(v)
}
