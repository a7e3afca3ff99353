package userdata

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
)

// DefaultMergeHow is the strategy cloud-init applies between cloud-config
// parts that name none: later top-level keys replace earlier ones.
const DefaultMergeHow = "dict(replace)+list()+str()"

// Merger is one step of a merge strategy as cloud-init's mergers name it:
// "dict", "list" or "str" with options such as "append", "prepend",
// "replace", "no_replace", "recurse_dict", "recurse_list", "recurse_str",
// "allow_delete".
type Merger struct {
	Name    string
	Options []string
}

// MergeHow is an ordered merge strategy. The first merger of a kind decides
// how values of that kind merge; a kind with no merger keeps the old value.
type MergeHow []Merger

func (m MergeHow) String() string {
	var b strings.Builder
	for i, x := range m {
		if i > 0 {
			b.WriteByte('+')
		}
		fmt.Fprintf(&b, "%s(%s)", x.Name, strings.Join(x.Options, ","))
	}
	return b.String()
}

var mergerName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^([a-zA-Z_][A-Za-z0-9_]*)\((.*?)\)$`) })

// ParseMergeHow parses the string form used by `merge_how` and the
// Merge-Type header, e.g. "list(append)+dict(recurse_array)+str()".
func ParseMergeHow(s string) (MergeHow, error) {
	var out MergeHow
	for _, m := range strings.Split(s, "+") {
		m = strings.ReplaceAll(strings.ToLower(strings.TrimSpace(m)), "-", "_")
		if m == "" {
			continue
		}
		g := mergerName().FindStringSubmatch(m)
		if g == nil {
			return nil, fmt.Errorf("merge type %q is not of the form name(options)", m)
		}
		var opts []string
		for _, o := range strings.Split(g[2], ",") {
			if o = strings.TrimSpace(o); o != "" {
				opts = append(opts, strings.ToLower(o))
			}
		}
		out = append(out, Merger{Name: g[1], Options: opts})
	}
	return out, nil
}

// mergeHowFromValue reads `merge_how` (or `merge_type`) from a cloud-config
// value: a string, a list of {name, settings} mappings, or a list of
// [name, option...] lists.
func mergeHowFromValue(v any) (MergeHow, error) {
	switch v := v.(type) {
	case nil:
		return nil, nil
	case string:
		return ParseMergeHow(v)
	case []any:
		var out MergeHow
		for _, e := range v {
			var name string
			var opts []string
			switch e := e.(type) {
			case map[string]any:
				n, ok := e["name"].(string)
				if !ok {
					return nil, fmt.Errorf("merge_how entry has no name")
				}
				name = strings.TrimSpace(strings.ReplaceAll(n, "-", "_"))
				s, ok := e["settings"]
				if !ok {
					return nil, fmt.Errorf("merge_how entry %q has no settings", name)
				}
				o, err := stringList(s)
				if err != nil {
					return nil, fmt.Errorf("merge_how entry %q: %w", name, err)
				}
				opts = o
			case []any:
				if len(e) == 0 {
					return nil, fmt.Errorf("merge_how entry is an empty list")
				}
				n, ok := e[0].(string)
				if !ok {
					return nil, fmt.Errorf("merge_how entry name is not a string")
				}
				name = n
				o, err := stringList(e[1:])
				if err != nil {
					return nil, fmt.Errorf("merge_how entry %q: %w", name, err)
				}
				opts = o
			case string:
				// cloud-init indexes the string: its first character is the name.
				if e == "" {
					return nil, fmt.Errorf("merge_how entry is empty")
				}
				name = e[:1]
				for _, c := range e[1:] {
					opts = append(opts, string(c))
				}
			default:
				return nil, fmt.Errorf("merge_how entry of type %T is not understood", e)
			}
			if name != "" {
				out = append(out, Merger{Name: name, Options: opts})
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("merge_how of type %T is not understood", v)
}

func stringList(v any) ([]string, error) {
	switch v := v.(type) {
	case []any:
		out := make([]string, 0, len(v))
		for _, x := range v {
			s, ok := x.(string)
			if !ok {
				return nil, fmt.Errorf("option %v is not a string", x)
			}
			out = append(out, s)
		}
		return out, nil
	case string:
		// A string iterates as its characters in cloud-init.
		var out []string
		for _, c := range v {
			out = append(out, string(c))
		}
		return out, nil
	case nil:
		return nil, nil
	}
	return nil, fmt.Errorf("settings of type %T are not a list", v)
}

type dictMerger struct {
	replace, recurseStr, recurseArray, allowDelete bool
}

type listMerger struct {
	method                                string // append, prepend, replace, no_replace
	recurseStr, recurseDict, recurseArray bool
}

type strMerger struct{ append bool }

// compiledMerge is MergeHow made executable; it mirrors cloud-init's
// LookupMerger, which dispatches on the type of the old value.
type compiledMerge struct {
	dict *dictMerger
	list *listMerger
	str  *strMerger
}

func has(opts []string, names ...string) bool {
	for _, o := range opts {
		for _, n := range names {
			if o == n {
				return true
			}
		}
	}
	return false
}

func (m MergeHow) compile() (*compiledMerge, error) {
	c := &compiledMerge{}
	for _, x := range m {
		name := strings.TrimPrefix(x.Name, "m_")
		switch name {
		case "dict":
			if c.dict == nil {
				// "replace" is looked for before "no_replace", so naming
				// both means replace.
				c.dict = &dictMerger{
					replace:      has(x.Options, "replace"),
					recurseStr:   has(x.Options, "recurse_str"),
					recurseArray: has(x.Options, "recurse_array", "recurse_list"),
					allowDelete:  has(x.Options, "allow_delete"),
				}
			}
		case "list":
			if c.list == nil {
				l := &listMerger{method: "replace"}
				for _, meth := range []string{"append", "prepend", "replace", "no_replace"} {
					if has(x.Options, meth) {
						l.method = meth
						break
					}
				}
				l.recurseStr = has(x.Options, "recurse_str")
				l.recurseDict = has(x.Options, "recurse_dict")
				l.recurseArray = has(x.Options, "recurse_array", "recurse_list")
				c.list = l
			}
		case "str":
			if c.str == nil {
				c.str = &strMerger{append: has(x.Options, "append")}
			}
		default:
			return nil, fmt.Errorf("unknown merger %q (known: dict, list, str)", x.Name)
		}
	}
	return c, nil
}

func (c *compiledMerge) merge(old, with any) (any, error) {
	switch o := old.(type) {
	case map[string]any:
		if c.dict == nil {
			return old, nil
		}
		return c.dict.merge(c, o, with)
	case []any:
		if c.list == nil {
			return old, nil
		}
		return c.list.merge(c, o, with)
	case string:
		if c.str == nil {
			return old, nil
		}
		if !c.str.append {
			return with, nil
		}
		w, ok := with.(string)
		if !ok {
			return nil, fmt.Errorf("cannot append %s to a string", typeName(with))
		}
		return o + w, nil
	}
	// Numbers, booleans and null have no merger: the old value stays.
	return old, nil
}

func (d *dictMerger) merge(c *compiledMerge, old map[string]any, with any) (any, error) {
	w, ok := with.(map[string]any)
	if !ok {
		return old, nil
	}
	out := make(map[string]any, len(old)+len(w))
	for k, v := range old {
		out[k] = v
	}
	for _, k := range sortedKeys(w) {
		nv := w[k]
		ov, exists := out[k]
		if !exists {
			out[k] = nv
			continue
		}
		if nv == nil && d.allowDelete {
			delete(out, k)
			continue
		}
		if d.replace {
			out[k] = nv
			continue
		}
		var recurse bool
		switch nv.(type) {
		case []any:
			recurse = d.recurseArray
		case string:
			recurse = d.recurseStr
		case map[string]any:
			recurse = true
		}
		if !recurse {
			continue
		}
		mv, err := c.merge(ov, nv)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", k, err)
		}
		out[k] = mv
	}
	return out, nil
}

// asSequence is what Python's list.extend sees when given a value: a list,
// a mapping's keys, a string's characters; anything else is a TypeError.
func asSequence(v any) ([]any, error) {
	switch v := v.(type) {
	case []any:
		return v, nil
	case map[string]any:
		out := make([]any, 0, len(v))
		for _, k := range sortedKeys(v) {
			out = append(out, k)
		}
		return out, nil
	case string:
		out := make([]any, 0, len(v))
		for _, r := range v {
			out = append(out, string(r))
		}
		return out, nil
	}
	return nil, fmt.Errorf("cannot extend a list with %s", typeName(v))
}

func (l *listMerger) merge(c *compiledMerge, old []any, with any) (any, error) {
	if _, isList := with.([]any); l.method == "replace" && !isList {
		return with, nil
	}
	switch l.method {
	case "prepend":
		w, err := asSequence(with)
		if err != nil {
			return nil, err
		}
		return append(append(make([]any, 0, len(w)+len(old)), w...), old...), nil
	case "append":
		w, err := asSequence(with)
		if err != nil {
			return nil, err
		}
		return append(append(make([]any, 0, len(w)+len(old)), old...), w...), nil
	}
	w, err := asSequence(with)
	if err != nil {
		return nil, err
	}
	out := append([]any(nil), old...)
	n := min(len(out), len(w))
	if _, isMap := with.(map[string]any); isMap && n > 0 {
		return nil, fmt.Errorf("cannot index a mapping by position")
	}
	if l.method == "no_replace" {
		return out, nil
	}
	for i := 0; i < n; i++ {
		nv := w[i]
		var recurse bool
		switch nv.(type) {
		case []any:
			recurse = l.recurseArray
		case string:
			recurse = l.recurseStr
		case map[string]any:
			recurse = l.recurseDict
		}
		if !recurse {
			out[i] = nv
			continue
		}
		mv, err := c.merge(out[i], nv)
		if err != nil {
			return nil, fmt.Errorf("index %d: %w", i, err)
		}
		out[i] = mv
	}
	return out, nil
}

func sortedKeys(m map[string]any) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case int64, float64:
		return "a number"
	}
	return fmt.Sprintf("%T", v)
}
