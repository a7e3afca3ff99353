package userdata

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/ardanlabs/jinja"
)

// This file renders "## template: jinja" parts as cloud-init 22.4 does:
// python jinja2 with trim_blocks (not lstrip_blocks), one trailing newline
// kept, and undefined variables rendered as CI_MISSING_JINJA_VAR/<name>.
// The engine is github.com/ardanlabs/jinja; what it does differently from
// jinja2 is bridged here, before it sees the template:
//
//   - it always strips the indentation before a block tag (lstrip_blocks);
//     jinja2 under cloud-init keeps it, so that indentation is moved into
//     an expression the engine leaves alone;
//   - its undefined values have no name and render empty; an output
//     expression that is a plain variable path ({{ v1.foo }},
//     {{ ds['meta-data'].x[0] }}) is resolved here first, and a missing one
//     is replaced by its CI_MISSING_JINJA_VAR text, or fails the template
//     where jinja2 raises (a path through an undefined value);
//   - python %-formatting of strings is refused instead of rendered wrong.

var jinjaTypeLine = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?i)^##\s*template:(.*)`) })

// MissingJinjaPrefix is what an undefined variable renders as, exactly as
// in cloud-init, so scripts that test for it keep working.
const MissingJinjaPrefix = "CI_MISSING_JINJA_VAR/"

// TemplateError is a jinja part that cannot be rendered: a syntax error,
// an unknown filter, a lookup through an undefined variable. cloud-init
// logs such a part and drops it; flint drops it too and reports it so the
// run can be marked degraded. It never quotes the template's text beyond
// the construct at fault.
type TemplateError struct {
	// Part is the part's filename (part-001, or its MIME filename).
	Part string
	Err  error
}

func (e *TemplateError) Error() string {
	return fmt.Sprintf("%s: jinja template not rendered: %v", e.Part, e.Err)
}

func (e *TemplateError) Unwrap() error { return e.Err }

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

// RenderJinja renders a "## template: jinja" payload (header line
// included) against instance data shaped like cloud-init's
// instance-data.json (see BuildInstanceData). The header line is not part
// of the output.
func RenderJinja(payload []byte, instanceData map[string]any) (out []byte, err error) {
	text := string(payload)
	ident, rest, _ := strings.Cut(text, "\n")
	m := jinjaTypeLine().FindStringSubmatch(ident)
	if m == nil {
		return nil, errors.New("not a jinja template")
	}
	if t := strings.ToLower(pyStrip(m[1])); t != "jinja" {
		return nil, fmt.Errorf("unknown template type %q", t)
	}
	// jinja2 reads \r\n and \r as \n, drops one trailing newline, and
	// cloud-init puts it back.
	rest = strings.ReplaceAll(strings.ReplaceAll(rest, "\r\n", "\n"), "\r", "\n")
	trailing := strings.HasSuffix(rest, "\n")
	rest = strings.TrimSuffix(rest, "\n")
	vars := jinjaVars(instanceData)
	src, err := bridgeJinja(rest, vars)
	if err != nil {
		return nil, err
	}
	defer func() {
		// The engine must not take the run down with a template.
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("template engine failed: %v", r)
		}
	}()
	tmpl, err := jinja.Compile(src)
	if err != nil {
		return nil, err
	}
	s, err := tmpl.Render(vars)
	if err != nil {
		return nil, err
	}
	if trailing {
		s += "\n"
	}
	return []byte(s), nil
}

// renderJinja is RenderJinja; the name the parser has always called.
func renderJinja(payload []byte, instanceData map[string]any) ([]byte, error) {
	return RenderJinja(payload, instanceData)
}

// jinjaSegment is a piece of template source: text, or a tag with its
// delimiters ("{{", "{%", "{#") and inner text.
type jinjaSegment struct {
	open  string // "" for text
	inner string
	line  int
}

// scanJinja splits src into text and tags; string literals inside tags
// may hold closing delimiters.
func scanJinja(src string) ([]jinjaSegment, error) {
	var segs []jinjaSegment
	line := 1
	for len(src) > 0 {
		i := indexOpener(src)
		if i < 0 {
			segs = append(segs, jinjaSegment{inner: src, line: line})
			break
		}
		if i > 0 {
			segs = append(segs, jinjaSegment{inner: src[:i], line: line})
			line += strings.Count(src[:i], "\n")
			src = src[i:]
		}
		open := src[:2]
		closer := map[string]string{"{{": "}}", "{%": "%}", "{#": "#}"}[open]
		end := -1
		if open == "{#" {
			if j := strings.Index(src[2:], closer); j >= 0 {
				end = 2 + j
			}
		} else {
			end = indexCloser(src[2:], closer)
			if end >= 0 {
				end += 2
			}
		}
		if end < 0 {
			return nil, fmt.Errorf("line %d: %s is never closed by %s", line, open, closer)
		}
		inner := src[2:end]
		segs = append(segs, jinjaSegment{open: open, inner: inner, line: line})
		line += strings.Count(src[:end+2], "\n")
		src = src[end+2:]
	}
	return segs, nil
}

func indexOpener(s string) int {
	for i := 0; i+1 < len(s); i++ {
		if s[i] == '{' && (s[i+1] == '{' || s[i+1] == '%' || s[i+1] == '#') {
			return i
		}
	}
	return -1
}

// indexCloser finds closer in a tag's body, outside string literals.
func indexCloser(s, closer string) int {
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0 && c == '\\':
			i++
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case strings.HasPrefix(s[i:], closer):
			return i
		}
	}
	return -1
}

var (
	jinjaBound = sync.OnceValue(func() *regexp.Regexp {
		// Names a template binds itself: loop variables, set targets,
		// macro parameters. Their values are the engine's to look up.
		return regexp.MustCompile(`^\s*[-+]?\s*(?:for|set|macro|call|with)\b([^=]*?)(?:\bin\b|=|$)`)
	})
	jinjaName     = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_]*`) })
	jinjaStrPct   = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?:'[^']*'|"[^"]*")\s*%[^}%]`) })
	jinjaHyphened = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_.]*)-([A-Za-z_][A-Za-z0-9_]*)$`)
	})
)

// bridgeJinja rewrites the template source so that the engine renders it
// as cloud-init's jinja2 would (see the top of this file).
func bridgeJinja(src string, vars map[string]any) (string, error) {
	segs, err := scanJinja(src)
	if err != nil {
		return "", err
	}
	bound := map[string]bool{}
	for _, s := range segs {
		if s.open == "{%" {
			if m := jinjaBound().FindStringSubmatch(s.inner); m != nil {
				for _, n := range jinjaName().FindAllString(m[1], -1) {
					bound[n] = true
				}
			}
			if strings.HasPrefix(strings.TrimSpace(s.inner), "macro") {
				if _, params, ok := strings.Cut(s.inner, "("); ok {
					for _, n := range jinjaName().FindAllString(params, -1) {
						bound[n] = true
					}
				}
			}
		}
	}
	var b, rawText strings.Builder
	raw := false
	for i, s := range segs {
		if raw {
			if s.open != "{%" || stmtWord(s.inner) != "endraw" {
				rawText.WriteString(s.open + s.inner + closerOf(s.open))
				continue
			}
			// The engine loses whitespace inside raw blocks: their text
			// goes to it as one string literal, trimmed as jinja2 would.
			t := rawText.String()
			if strings.HasPrefix(s.inner, "-") {
				t = strings.TrimRight(t, " \t\n")
			}
			b.WriteString("{{ '" + jinjaQuote(t) + "' }}{% endif " + trimMark(s.inner) + "%}")
			raw = false
			continue
		}
		if s.open == "" {
			b.WriteString(s.inner)
			continue
		}
		// Keep the indentation before a block tag or comment (no
		// lstrip_blocks): hand it to the engine as an expression.
		if s.open != "{{" && !strings.HasPrefix(s.inner, "-") && i > 0 && segs[i-1].open == "" {
			if ind := lineIndent(b.String(), i == 1); ind != "" {
				out := b.String()
				b.Reset()
				b.WriteString(out[:len(out)-len(ind)])
				b.WriteString("{{ '" + ind + "' }}")
			}
		}
		if s.open == "{%" && stmtWord(s.inner) == "raw" {
			raw = true
			rawText.Reset()
			lead := ""
			if strings.HasPrefix(s.inner, "-") {
				lead = "-"
			}
			b.WriteString("{%" + lead + " if true %}")
			// The tag's own "-%}" applies to the raw text (jinja2's
			// trim_blocks does not).
			if i+1 < len(segs) && segs[i+1].open == "" && strings.HasSuffix(s.inner, "-") {
				segs[i+1].inner = strings.TrimLeft(segs[i+1].inner, " \t\n")
			}
			continue
		}
		if s.open == "{%" {
			if w := stmtWord(s.inner); (w == "if" || w == "elif") && strings.Trim(strings.TrimSpace(s.inner), "-+") == w {
				return "", fmt.Errorf("line %d: {%% %s %%} has no condition", s.line, w)
			}
		}
		if s.open == "{{" || s.open == "{%" {
			if jinjaStrPct().MatchString(s.inner) {
				return "", fmt.Errorf("line %d: python %%-formatting of strings is not supported; use ~ or the format filter", s.line)
			}
		}
		if s.open != "{{" {
			b.WriteString(s.open + s.inner + closerOf(s.open))
			continue
		}
		lead, expr, trail := splitTrim(s.inner)
		if m := jinjaHyphened().FindStringSubmatch(strings.TrimSpace(expr)); m != nil && !bound[rootName(m[1])] {
			if _, st, _ := resolvePath(m[1], vars); st != pathFound {
				return "", fmt.Errorf("line %d: undefined jinja variable %q: jinja reads %q as a subtraction; perhaps you meant %q", s.line,
					m[0], m[0], strings.ReplaceAll(m[0], "-", "_"))
			}
		}
		if path := strings.TrimSpace(expr); isPlainPath(path) && !bound[rootName(path)] {
			v, st, name := resolvePath(path, vars)
			switch st {
			case pathFound:
				if v == nil { // python's None
					b.WriteString("{{" + lead + " 'None' " + trail + "}}")
					continue
				}
			case pathMissing:
				if !strings.ContainsAny(name, `'\`) {
					b.WriteString("{{" + lead + " '" + MissingJinjaPrefix + name + "' " + trail + "}}")
					continue
				}
			case pathBroken:
				return "", fmt.Errorf("line %d: {{ %s }}: %q is undefined, so it has no attribute or item to look up", s.line, path, name)
			}
		}
		b.WriteString(s.open + s.inner + "}}")
	}
	return b.String(), nil
}

// jinjaQuote escapes s for a single-quoted string literal.
func jinjaQuote(s string) string {
	return strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s)
}

// trimMark is the "-" of a tag ending "-%}", if any.
func trimMark(inner string) string {
	if strings.HasSuffix(inner, "-") {
		return "-"
	}
	return ""
}

func closerOf(open string) string {
	return map[string]string{"{{": "}}", "{%": "%}", "{#": "#}"}[open]
}

// stmtWord is a block tag's keyword.
func stmtWord(inner string) string {
	inner = strings.TrimLeft(strings.TrimSpace(inner), "-+")
	return jinjaName().FindString(strings.TrimSpace(inner))
}

// lineIndent is the run of spaces and tabs ending out, when it starts a
// line (or the template).
func lineIndent(out string, atStart bool) string {
	j := len(out)
	for j > 0 && (out[j-1] == ' ' || out[j-1] == '\t') {
		j--
	}
	if j == len(out) || !(j == 0 && atStart || j > 0 && out[j-1] == '\n') {
		return ""
	}
	return out[j:]
}

// splitTrim separates a "{{- x -}}" body into its whitespace-control
// markers and the expression.
func splitTrim(inner string) (lead, expr, trail string) {
	if strings.HasPrefix(inner, "-") || strings.HasPrefix(inner, "+") {
		lead, inner = inner[:1], inner[1:]
	}
	if strings.HasSuffix(inner, "-") || strings.HasSuffix(inner, "+") {
		trail, inner = inner[len(inner)-1:], inner[:len(inner)-1]
	}
	return lead, inner, trail
}

var jinjaPathStep = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^(?:\.\s*([A-Za-z_][A-Za-z0-9_]*)|\[\s*'([^'\\]*)'\s*\]|\[\s*"([^"\\]*)"\s*\]|\[\s*(-?[0-9]+)\s*\])\s*`)
})

func isPlainPath(expr string) bool {
	name := jinjaName().FindString(expr)
	if name == "" || !strings.HasPrefix(expr, name) || isJinjaLiteral(name) {
		return false
	}
	rest := strings.TrimSpace(expr[len(name):])
	for rest != "" {
		g := jinjaPathStep().FindString(rest)
		if g == "" {
			return false
		}
		rest = rest[len(g):]
	}
	return true
}

func isJinjaLiteral(name string) bool {
	switch name {
	case "true", "false", "none", "True", "False", "None", "loop", "range", "namespace", "dict", "joiner", "cycler", "lipsum":
		return true
	}
	return false
}

func rootName(path string) string { return jinjaName().FindString(path) }

type pathState int

const (
	pathFound   pathState = iota
	pathMissing           // the last step is undefined: CI_MISSING_JINJA_VAR
	pathBroken            // a step before the last is undefined: jinja2 raises
	pathUnknown           // a step into a value the engine handles (strings' methods, ...)
)

// resolvePath follows a plain variable path through vars as jinja2's
// getattr/getitem would for dicts and lists, and reports where it stops:
// for pathMissing and pathBroken, name is the undefined step's name.
func resolvePath(path string, vars map[string]any) (any, pathState, string) {
	root := rootName(path)
	cur, ok := vars[root]
	if !ok {
		if strings.TrimSpace(path) == root {
			return nil, pathMissing, root
		}
		return nil, pathBroken, root
	}
	rest := strings.TrimSpace(path[len(root):])
	for rest != "" {
		g := jinjaPathStep().FindStringSubmatch(rest)
		rest = rest[len(g[0]):]
		key, idx := g[1]+g[2]+g[3], g[4]
		last := rest == ""
		missing := func(name string) (any, pathState, string) {
			if last {
				return nil, pathMissing, name
			}
			return nil, pathBroken, name
		}
		switch c := cur.(type) {
		case map[string]any:
			if idx != "" {
				key = idx
			}
			v, ok := c[key]
			if !ok {
				if g[1] != "" && dictMethod(key) {
					return nil, pathUnknown, ""
				}
				return missing(key)
			}
			cur = v
		case []any:
			if idx == "" {
				return nil, pathUnknown, ""
			}
			i, err := strconv.Atoi(idx)
			if i < 0 {
				i += len(c)
			}
			if err != nil || i < 0 || i >= len(c) {
				return missing(idx)
			}
			cur = c[i]
		default:
			return nil, pathUnknown, ""
		}
	}
	return cur, pathFound, ""
}

// dictMethod reports whether jinja2 would find a python dict method under
// this attribute name (d.items, d.get, ...).
func dictMethod(name string) bool {
	switch name {
	case "items", "keys", "values", "get", "pop", "update", "copy", "clear", "setdefault", "popitem", "fromkeys":
		return true
	}
	return false
}
