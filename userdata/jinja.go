package userdata

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// This file renders the subset of jinja that user-data templates use in
// practice: `{{ v1.local_hostname }}`, `{{ ds.meta_data.instance_id }}`,
// `{{ v1['availability-zone'] }}`. Anything else (blocks, filters,
// expressions) is rejected with an error naming the construct, rather than
// rendered differently from cloud-init.

var jinjaTypeLine = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?i)^##\s*template:(.*)`) })

// MissingJinjaPrefix is what an undefined variable renders as, exactly as
// in cloud-init, so scripts that test for it keep working.
const MissingJinjaPrefix = "CI_MISSING_JINJA_VAR/"

var jinjaOperator = strings.NewReplacer(
	"+", "_", "-", "_", "/", "_", "*", "_", "%", "_", "~", "_", "[", "_", "]", "_",
	"(", "_", ")", "_", "{", "_", "}", "_", "=", "_", "!", "_", ">", "_", "<", "_",
	".", "_", ":", "_", "|", "_", ",", "_", ";", "_",
)

// jinjaVars converts instance data the way cloud-init's
// convert_jinja_instance_data does: keys under v1 (any vN) are copied to
// the top level, and keys containing operators get underscore aliases.
func jinjaVars(data map[string]any) map[string]any {
	out := map[string]any{}
	for _, k := range sortedKeys(data) {
		v := data[k]
		if m, ok := v.(map[string]any); ok {
			cv := jinjaVars(m)
			out[k] = cv
			if isVersionKey(k) {
				for sk, sv := range cv {
					out[sk] = sv
				}
			}
		} else {
			out[k] = v
		}
		if alias := jinjaOperator.Replace(k); alias != k {
			out[alias] = out[k]
		}
	}
	return out
}

func isVersionKey(k string) bool {
	if len(k) < 2 || k[0] != 'v' {
		return false
	}
	for _, c := range k[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

var jinjaExpr = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`\{\{(.*?)\}\}`) })

// renderJinja renders a "## template: jinja" payload (header line
// included) against instance data.
func renderJinja(payload []byte, instanceData map[string]any) ([]byte, error) {
	text := string(payload)
	ident, rest, _ := strings.Cut(text, "\n")
	m := jinjaTypeLine().FindStringSubmatch(ident)
	if m == nil {
		return nil, fmt.Errorf("not a jinja template")
	}
	if t := strings.ToLower(pyStrip(m[1])); t != "jinja" {
		return nil, fmt.Errorf("unknown template type %q", t)
	}
	for _, tok := range []string{"{%", "{#"} {
		if i := strings.Index(rest, tok); i >= 0 {
			return nil, fmt.Errorf("jinja %s...%s blocks are not supported (line %d)", tok, closing(tok), 1+strings.Count(text[:len(ident)+1+i], "\n"))
		}
	}
	vars := jinjaVars(instanceData)
	var rerr error
	out := jinjaExpr().ReplaceAllStringFunc(rest, func(s string) string {
		if rerr != nil {
			return ""
		}
		v, err := evalJinja(strings.TrimSpace(s[2:len(s)-2]), vars)
		if err != nil {
			rerr = err
		}
		return v
	})
	if rerr != nil {
		return nil, rerr
	}
	if strings.Contains(out, "{{") {
		return nil, fmt.Errorf("unterminated {{ in jinja template")
	}
	// jinja drops one trailing newline and normalises line endings;
	// cloud-init puts a final newline back.
	trailing := strings.HasSuffix(rest, "\n")
	out = strings.ReplaceAll(strings.ReplaceAll(out, "\r\n", "\n"), "\r", "\n")
	if trailing {
		out = strings.TrimSuffix(out, "\n")
		out += "\n"
	}
	return []byte(out), nil
}

func closing(tok string) string {
	if tok == "{%" {
		return "%}"
	}
	return "#}"
}

var jinjaPathStep = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^(?:\.\s*([A-Za-z_][A-Za-z0-9_]*)|\[\s*'([^']*)'\s*\]|\[\s*"([^"]*)"\s*\]|\[\s*([0-9]+)\s*\])`)
})
var jinjaIdent = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*`) })

type undefined struct{ name string }

func evalJinja(expr string, vars map[string]any) (string, error) {
	name := jinjaIdent().FindString(expr)
	if name == "" {
		return "", fmt.Errorf("jinja expression {{ %s }} is not supported (only variable lookups are)", expr)
	}
	var cur any = undefined{name}
	if v, ok := vars[name]; ok {
		cur = v
	}
	rest := strings.TrimSpace(expr[len(name):])
	for rest != "" {
		g := jinjaPathStep().FindStringSubmatch(rest)
		if g == nil {
			return "", fmt.Errorf("jinja expression {{ %s }} is not supported (only variable lookups are)", expr)
		}
		rest = strings.TrimSpace(rest[len(g[0]):])
		key := g[1] + g[2] + g[3]
		if u, ok := cur.(undefined); ok {
			return "", fmt.Errorf("jinja variable %q is undefined", u.name)
		}
		switch c := cur.(type) {
		case map[string]any:
			if g[4] != "" {
				key = g[4]
			}
			if v, ok := c[key]; ok {
				cur = v
			} else {
				cur = undefined{key}
			}
		case []any:
			i, err := strconv.Atoi(g[4])
			if g[4] == "" || err != nil || i >= len(c) {
				cur = undefined{key + g[4]}
			} else {
				cur = c[i]
			}
		default:
			cur = undefined{key + g[4]}
		}
	}
	switch c := cur.(type) {
	case undefined:
		return MissingJinjaPrefix + c.name, nil
	case map[string]any, []any:
		return "", fmt.Errorf("jinja expression {{ %s }} is a %s; only scalars can be rendered", expr, strings.TrimPrefix(typeName(c), "a "))
	}
	return pyStr(cur), nil
}
