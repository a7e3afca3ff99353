package userdata

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"

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
	yaml11Bool  = regexp.MustCompile(`^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$`)
	yaml11Int   = regexp.MustCompile(`^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$`)
	yaml11Float = regexp.MustCompile(`^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9_]+(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$`)
	yaml11Null  = regexp.MustCompile(`^(?:~|null|Null|NULL|)$`)
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

// mapping builds a map, applying merge keys (`<<`) the way PyYAML's
// flatten_mapping does: merged entries come first so the mapping's own keys
// win, and among several merged mappings the earlier one wins.
func (b *yamlBuilder) mapping(n *yaml.Node, depth int) (any, error) {
	b.nodes += 1 + len(n.Content)/2
	if b.nodes > maxYAMLNodes {
		return nil, fmt.Errorf("yaml: document expands to more than %d values (alias bomb?)", maxYAMLNodes)
	}
	if depth > maxYAMLDepth {
		return nil, fmt.Errorf("yaml: nesting deeper than %d levels at line %d", maxYAMLDepth, n.Line)
	}
	out := map[string]any{}
	var merges []*yaml.Node
	type kv struct {
		k string
		v any
	}
	var own []kv
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := n.Content[i], n.Content[i+1]
		if kn.Kind == yaml.ScalarNode && kn.Value == "<<" && kn.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle) == 0 {
			merges = append(merges, vn)
			continue
		}
		k, err := b.value(kn, depth+1)
		if err != nil {
			return nil, err
		}
		v, err := b.value(vn, depth+1)
		if err != nil {
			return nil, err
		}
		own = append(own, kv{keyString(k), v})
	}
	for _, m := range merges {
		target := m
		for target.Kind == yaml.AliasNode && target.Alias != nil {
			target = target.Alias
		}
		var sources []*yaml.Node
		switch target.Kind {
		case yaml.MappingNode:
			sources = []*yaml.Node{target}
		case yaml.SequenceNode:
			for _, s := range target.Content {
				for s.Kind == yaml.AliasNode && s.Alias != nil {
					s = s.Alias
				}
				if s.Kind != yaml.MappingNode {
					return nil, fmt.Errorf("yaml: merge key at line %d expects mappings", m.Line)
				}
				sources = append(sources, s)
			}
		default:
			return nil, fmt.Errorf("yaml: merge key at line %d expects a mapping or a list of mappings", m.Line)
		}
		// Later sources in one `<<` list lose to earlier ones; later `<<`
		// keys lose to earlier ones too in PyYAML's flattening.
		for i := len(sources) - 1; i >= 0; i-- {
			mv, err := b.mapping(sources[i], depth+1)
			if err != nil {
				return nil, err
			}
			for k, v := range mv.(map[string]any) {
				out[k] = v
			}
		}
	}
	for _, e := range own {
		out[e.k] = e.v
	}
	return out, nil
}

// keyString renders a non-string mapping key the way Python's json.dumps
// would, since the merged document is reported as JSON.
func keyString(k any) string {
	switch k := k.(type) {
	case string:
		return k
	case nil:
		return "null"
	case bool:
		if k {
			return "true"
		}
		return "false"
	case int64:
		return strconv.FormatInt(k, 10)
	case float64:
		return strconv.FormatFloat(k, 'g', -1, 64)
	}
	return fmt.Sprint(k)
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
		raw, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), ""))
		if err != nil {
			return nil, fmt.Errorf("yaml: bad !!binary at line %d: %w", n.Line, err)
		}
		return string(raw), nil
	case "":
	default:
		// Unknown tags (e.g. !!timestamp, local tags) keep their text.
		return s, nil
	}
	switch {
	case yaml11Null.MatchString(s):
		return nil, nil
	case yaml11Bool.MatchString(s):
		return bool11(s)
	case yaml11Int.MatchString(s):
		v, err := int11(s)
		if err != nil {
			// Larger than int64: Python keeps it exact, JSON readers will
			// see a float either way.
			return float11(s)
		}
		return v, nil
	case yaml11Float.MatchString(s):
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
