package userdata

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// maxYAMLNodes bounds the values built from one document, so that aliases
// expanding into one another ("billion laughs") cannot exhaust memory.
const maxYAMLNodes = 200000

// maxYAMLDepth bounds nesting, which also stops self-referencing aliases.
const maxYAMLDepth = 200

// YAML 1.1 implicit resolvers as PyYAML's SafeLoader applies them; yaml.v3
// resolves YAML 1.2, which would read `yes` as a string and `0644` as 644.
var (
	yaml11Bool = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$`)
	})
	yaml11Int = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$`)
	})
	yaml11Float = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9_]+(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$`)
	})
	yaml11Null = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(?:~|null|Null|NULL|)$`) })
)

// errNotSingleDocument mirrors PyYAML's safe_load refusing a stream of
// several documents.
var errNotSingleDocument = errors.New("expected a single YAML document, found several")

// decodeYAML11 parses one YAML document into generic values (map[string]any,
// []any, string, int64, float64, bool, nil) with YAML 1.1 scalar resolution
// and merge keys, as cloud-init's safe loader sees it. An empty document
// gives nil.
func decodeYAML11(data []byte) (v any, err error) {
	defer func() {
		// yaml.v3 is not expected to panic, but input is hostile; a panic
		// must surface as a parse error, never kill the agent.
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("yaml: %v", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, errNotSingleDocument
	} else if !errors.Is(err, io.EOF) {
		return nil, err
	}
	b := &yamlBuilder{}
	return b.value(&doc, 0)
}

type yamlBuilder struct{ nodes int }

func (b *yamlBuilder) value(n *yaml.Node, depth int) (any, error) {
	if depth > maxYAMLDepth {
		return nil, fmt.Errorf("yaml: nesting deeper than %d levels at line %d", maxYAMLDepth, n.Line)
	}
	b.nodes++
	if b.nodes > maxYAMLNodes {
		return nil, fmt.Errorf("yaml: document expands to more than %d values (alias bomb?)", maxYAMLNodes)
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return b.value(n.Content[0], depth+1)
	case yaml.AliasNode:
		if n.Alias == nil {
			return nil, fmt.Errorf("yaml: unknown alias at line %d", n.Line)
		}
		return b.value(n.Alias, depth+1)
	case yaml.ScalarNode:
		return scalar11(n)
	case yaml.SequenceNode:
		if err := checkTag(n); err != nil {
			return nil, err
		}
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := b.value(c, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		return b.mapping(n, depth)
	}
	return nil, fmt.Errorf("yaml: unexpected node kind %d at line %d", n.Kind, n.Line)
}

// mapping builds a map the way PyYAML's SafeConstructor does: merge keys
// (`<<`) are flattened first (their entries go before the mapping's own,
// a list of merges in reverse so the earlier one wins), then entries are
// inserted in order into a Python dict, where equal keys (1, 1.0 and
// true are equal in Python) keep the first key's spelling and the last
// value. Mappings and lists cannot be keys (they are unhashable).
func (b *yamlBuilder) mapping(n *yaml.Node, depth int) (any, error) {
	pairs, err := b.flatten(n, depth)
	if err != nil {
		return nil, err
	}
	out := make(map[string]any, len(pairs))
	spelling := make(map[string]string, len(pairs))
	for _, p := range pairs {
		k, ok := spelling[p.id]
		if !ok {
			k = p.repr
			spelling[p.id] = k
		}
		out[k] = p.value
	}
	return out, nil
}

type yamlPair struct {
	id, repr string
	value    any
}

const quotedStyles = yaml.SingleQuotedStyle | yaml.DoubleQuotedStyle | yaml.LiteralStyle | yaml.FoldedStyle

func (b *yamlBuilder) flatten(n *yaml.Node, depth int) ([]yamlPair, error) {
	b.nodes += 1 + len(n.Content)/2
	if b.nodes > maxYAMLNodes {
		return nil, fmt.Errorf("yaml: document expands to more than %d values (alias bomb?)", maxYAMLNodes)
	}
	if depth > maxYAMLDepth {
		return nil, fmt.Errorf("yaml: nesting deeper than %d levels at line %d", maxYAMLDepth, n.Line)
	}
	if err := checkTag(n); err != nil {
		return nil, err
	}
	var merged, own []yamlPair
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := n.Content[i], n.Content[i+1]
		if kn.Kind == yaml.ScalarNode && kn.Value == "<<" && kn.Style&quotedStyles == 0 {
			target := deref(vn)
			switch target.Kind {
			case yaml.MappingNode:
				p, err := b.flatten(target, depth+1)
				if err != nil {
					return nil, err
				}
				merged = append(merged, p...)
			case yaml.SequenceNode:
				var subs [][]yamlPair
				for _, s := range target.Content {
					s = deref(s)
					if s.Kind != yaml.MappingNode {
						return nil, fmt.Errorf("yaml: merge key at line %d expects mappings", vn.Line)
					}
					p, err := b.flatten(s, depth+1)
					if err != nil {
						return nil, err
					}
					subs = append(subs, p)
				}
				for j := len(subs) - 1; j >= 0; j-- {
					merged = append(merged, subs[j]...)
				}
			default:
				return nil, fmt.Errorf("yaml: merge key at line %d expects a mapping or a list of mappings", vn.Line)
			}
			continue
		}
		var k any
		if kn.Kind == yaml.ScalarNode && kn.Value == "=" && kn.Style&(quotedStyles|yaml.TaggedStyle) == 0 {
			// PyYAML turns a "=" (!!value) key into a string.
			k = "="
		} else {
			var err error
			if k, err = b.value(kn, depth+1); err != nil {
				return nil, err
			}
		}
		switch k.(type) {
		case map[string]any, []any:
			return nil, fmt.Errorf("yaml: %s cannot be a mapping key (line %d)", typeName(k), kn.Line)
		}
		v, err := b.value(vn, depth+1)
		if err != nil {
			return nil, err
		}
		id, repr := keyIdentity(k)
		own = append(own, yamlPair{id, repr, v})
	}
	return append(merged, own...), nil
}

func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < maxYAMLDepth; i++ {
		n = n.Alias
	}
	return n
}

// checkTag refuses explicit tags on collections that PyYAML's safe loader
// cannot construct (it fails the whole document on them); !!set, !!omap
// and !!pairs are refused too rather than approximated.
func checkTag(n *yaml.Node) error {
	if n.Style&yaml.TaggedStyle == 0 {
		return nil
	}
	switch n.Tag {
	case "!!map", "!!seq", "!":
		return nil
	}
	return fmt.Errorf("yaml: tag %s at line %d is not supported", n.Tag, n.Line)
}

// keyIdentity returns a key's identity under Python dict equality and
// its spelling once json.dumps has turned it into a string.
func keyIdentity(k any) (id, repr string) {
	switch k := k.(type) {
	case string:
		return "s" + k, k
	case nil:
		return "none", "null"
	case bool:
		if k {
			return "n1", "true"
		}
		return "n0", "false"
	case int64:
		s := strconv.FormatInt(k, 10)
		return "n" + s, s
	case float64:
		if k == math.Trunc(k) && math.Abs(k) < 1<<62 {
			return "n" + strconv.FormatInt(int64(k), 10), pyFloatRepr(k)
		}
		return "f" + strconv.FormatFloat(k, 'g', -1, 64), pyFloatRepr(k)
	}
	s := fmt.Sprint(k)
	return "?" + s, s
}

// pyFloatRepr formats a float as Python's repr does: shortest digits,
// exponent form only below 1e-4 or from 1e16 on, and always a decimal
// point or an exponent.
func pyFloatRepr(f float64) string {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	if f == 0 {
		if math.Signbit(f) {
			return "-0.0"
		}
		return "0.0"
	}
	mant, expStr, _ := strings.Cut(strconv.FormatFloat(f, 'e', -1, 64), "e")
	exp, _ := strconv.Atoi(expStr)
	if exp < -4 || exp >= 16 {
		return mant + "e" + fmt.Sprintf("%+03d", exp)
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}

func scalar11(n *yaml.Node) (any, error) {
	tag := n.Tag
	s := n.Value
	if n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		if tag == "" || tag == "!!str" || tag == "!" {
			return s, nil
		}
	}
	// yaml.v3 fills Tag with its own (YAML 1.2) resolution for plain
	// scalars; only an explicit tag in the source overrides YAML 1.1 rules.
	explicit := ""
	if n.Style&yaml.TaggedStyle != 0 {
		explicit = tag
	}
	switch explicit {
	case "!!str":
		return s, nil
	case "!!int":
		return int11(s)
	case "!!float":
		return float11(s)
	case "!!bool":
		return bool11(s)
	case "!!null":
		return nil, nil
	case "!!binary":
		raw, err := pyBase64(s)
		if err != nil {
			return nil, fmt.Errorf("yaml: bad !!binary at line %d: %w", n.Line, err)
		}
		return string(raw), nil
	case "", "!":
		if explicit == "!" {
			return s, nil
		}
	case "!!timestamp", "!!python/unicode":
		// Timestamps keep their text (JSON has no dates).
		return s, nil
	default:
		// PyYAML's safe loader fails the whole document on other tags.
		return nil, fmt.Errorf("yaml: tag %s at line %d is not supported", explicit, n.Line)
	}
	if s == "=" {
		// PyYAML resolves a lone "=" to the !!value tag, which its safe
		// loader cannot construct.
		return nil, fmt.Errorf("yaml: could not determine a constructor for \"=\" at line %d", n.Line)
	}
	if s != "" && !strings.ContainsRune("0123456789+-.~nNyYtTfFoO", rune(s[0])) {
		// Cannot be a YAML 1.1 null, bool, int or float.
		return s, nil
	}
	switch {
	case yaml11Null().MatchString(s):
		return nil, nil
	case yaml11Bool().MatchString(s):
		return bool11(s)
	case yaml11Int().MatchString(s):
		v, err := int11(s)
		if err != nil {
			// Larger than int64: Python keeps it exact, JSON readers will
			// see a float either way.
			return float11(s)
		}
		return v, nil
	case yaml11Float().MatchString(s):
		return float11(s)
	}
	return s, nil
}

func bool11(s string) (any, error) {
	switch strings.ToLower(s) {
	case "yes", "true", "on":
		return true, nil
	case "no", "false", "off":
		return false, nil
	}
	return nil, fmt.Errorf("yaml: %q is not a boolean", s)
}

func int11(s string) (any, error) {
	v := strings.ReplaceAll(s, "_", "")
	sign := int64(1)
	if strings.HasPrefix(v, "-") {
		sign, v = -1, v[1:]
	} else if strings.HasPrefix(v, "+") {
		v = v[1:]
	}
	var n int64
	var err error
	switch {
	case v == "0":
		return int64(0), nil
	case strings.HasPrefix(v, "0b"):
		n, err = strconv.ParseInt(v[2:], 2, 64)
	case strings.HasPrefix(v, "0x"):
		n, err = strconv.ParseInt(v[2:], 16, 64)
	case strings.HasPrefix(v, "0") && !strings.Contains(v, ":"):
		n, err = strconv.ParseInt(v[1:], 8, 64)
	case strings.Contains(v, ":"):
		for _, d := range strings.Split(v, ":") {
			x, e := strconv.ParseInt(d, 10, 64)
			if e != nil {
				return nil, fmt.Errorf("yaml: bad integer %q", s)
			}
			n = n*60 + x
		}
	default:
		n, err = strconv.ParseInt(v, 10, 64)
	}
	if err != nil {
		return nil, fmt.Errorf("yaml: bad integer %q", s)
	}
	return sign * n, nil
}

func float11(s string) (any, error) {
	v := strings.ToLower(strings.ReplaceAll(s, "_", ""))
	sign := 1.0
	if strings.HasPrefix(v, "-") {
		sign, v = -1, v[1:]
	} else if strings.HasPrefix(v, "+") {
		v = v[1:]
	}
	switch {
	case v == ".inf":
		// JSON cannot carry infinities; keep the YAML spelling.
		if sign < 0 {
			return "-.inf", nil
		}
		return ".inf", nil
	case v == ".nan":
		return ".nan", nil
	case strings.Contains(v, ":"):
		parts := strings.Split(v, ":")
		f := 0.0
		for _, d := range parts {
			x, err := strconv.ParseFloat(d, 64)
			if err != nil {
				return nil, fmt.Errorf("yaml: bad float %q", s)
			}
			f = f*60 + x
		}
		return sign * f, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return nil, fmt.Errorf("yaml: bad float %q", s)
	}
	if math.IsInf(f, 0) {
		if sign < 0 {
			return "-.inf", nil
		}
		return ".inf", nil
	}
	return sign * f, nil
}

// pyBase64 decodes base64 as PyYAML's !!binary does (binascii.a2b_base64,
// not strict): characters outside the alphabet are skipped, a complete pad
// ends the data, and only a final incomplete group is an error. cloud-init's
// own write_files example ends its content with "....", which Go's strict
// decoder refuses.
func pyBase64(s string) ([]byte, error) {
	out := make([]byte, 0, len(s)*3/4)
	var left byte
	quad, pads := 0, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '=' {
			if quad >= 2 {
				pads++
				if quad+pads >= 4 {
					return out, nil
				}
			}
			continue
		}
		v := base64Value(c)
		if v < 0 {
			continue
		}
		b := byte(v)
		pads = 0
		switch quad {
		case 0:
			left = b
		case 1:
			out = append(out, left<<2|b>>4)
			left = b & 0x0f
		case 2:
			out = append(out, left<<4|b>>2)
			left = b & 0x03
		case 3:
			out = append(out, left<<6|b)
		}
		quad = (quad + 1) % 4
	}
	switch quad {
	case 0:
		return out, nil
	case 1:
		return nil, errors.New("base64 data has one character more than a multiple of 4")
	}
	return nil, errors.New("base64 data has incorrect padding")
}

func base64Value(c byte) int {
	switch {
	case c >= 'A' && c <= 'Z':
		return int(c - 'A')
	case c >= 'a' && c <= 'z':
		return int(c-'a') + 26
	case c >= '0' && c <= '9':
		return int(c-'0') + 52
	case c == '+':
		return 62
	case c == '/':
		return 63
	}
	return -1
}
