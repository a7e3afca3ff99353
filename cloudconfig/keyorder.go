package cloudconfig

import (
	"sort"

	"go.yaml.in/yaml/v3"

	"github.com/flint-dev/flint/userdata"
)

// KeyOrder is the order user-data wrote a mapping's keys in, and the
// order of the mappings below them. Decoded cloud-config (Go maps) does
// not keep it; cloud-init (Python dicts) does, and some modules write
// keys in that order. The nil KeyOrder knows no order.
type KeyOrder struct {
	keys []string
	sub  map[string]*KeyOrder
}

// ReadKeyOrder reads the order of the top-level mapping key of each
// cloud-config part of ud (rendered templates included), in merge order:
// keys in the order they first appear, as cloud-init's merging of dicts
// keeps them. A part that is not YAML, and keys written through merge
// keys (<<) or as non-strings, add nothing: Sort puts what is unknown
// last, sorted.
func ReadKeyOrder(ud *userdata.UserData, key string) *KeyOrder {
	o := &KeyOrder{}
	for _, p := range ud.Parts {
		if p.Type() != userdata.TypeCloudConfig {
			continue
		}
		var n yaml.Node
		if yaml.Unmarshal(p.Content(), &n) != nil || len(n.Content) == 0 {
			continue
		}
		if v := mappingValue(n.Content[0], key); v != nil {
			o.add(v, 0)
		}
	}
	return o
}

// maxOrderDepth bounds how deep ReadKeyOrder follows nested mappings.
const maxOrderDepth = 8

func (o *KeyOrder) add(n *yaml.Node, depth int) {
	n = derefNode(n)
	if n.Kind != yaml.MappingNode || depth > maxOrderDepth {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if k.Kind != yaml.ScalarNode || k.Tag != "!!str" {
			continue
		}
		if o.sub == nil {
			o.sub = map[string]*KeyOrder{}
		}
		c, seen := o.sub[k.Value]
		if !seen {
			c = &KeyOrder{}
			o.sub[k.Value] = c
			o.keys = append(o.keys, k.Value)
		}
		c.add(n.Content[i+1], depth+1)
	}
}

// mappingValue is the value of key in the mapping n, or nil.
func mappingValue(n *yaml.Node, key string) *yaml.Node {
	n = derefNode(n)
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Kind == yaml.ScalarNode && k.Tag == "!!str" && k.Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func derefNode(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < maxOrderDepth; i++ {
		n = n.Alias
	}
	return n
}

// Child is the order below key (nil when unknown).
func (o *KeyOrder) Child(key string) *KeyOrder {
	if o == nil {
		return nil
	}
	return o.sub[key]
}

// Sort returns m's keys: those o knows in its order, then the others
// sorted.
func (o *KeyOrder) Sort(m map[string]any) []string {
	out := make([]string, 0, len(m))
	known := map[string]bool{}
	if o != nil {
		for _, k := range o.keys {
			if _, ok := m[k]; ok {
				out = append(out, k)
				known[k] = true
			}
		}
	}
	rest := make([]string, 0, len(m)-len(out))
	for k := range m {
		if !known[k] {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	return append(out, rest...)
}
