// Package imdstest is an EC2 instance metadata service emulator for tests and
// demos: it serves a metadata tree loaded from YAML with IMDSv1/v2 semantics,
// dated versions, correct listings, fault injection and a request log.
// It is never used on production code paths; `flint emulate` exposes it to
// users for their own tests.
package imdstest

import (
	"encoding/base64"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Node is one entry of the metadata tree: a leaf with a value, or a
// directory with children.
type Node struct {
	// Value is the leaf's body. Unused for directories.
	Value []byte
	// Children maps a child's listed name to the child. A name "N=label"
	// (as under public-keys/) is listed as such and addressed as "N".
	Children map[string]*Node
	// order keeps the children in fixture order for listings.
	order []string
}

// IsDir reports whether the node is a directory.
func (n *Node) IsDir() bool { return n.Children != nil }

// Tree is a whole metadata tree: the children of a version root
// ("meta-data", "dynamic", "user-data").
type Tree struct {
	Root *Node
}

// LoadFixture reads a YAML fixture. Maps become directories, scalars become
// leaves (a `!!binary` scalar is base64-decoded, so gzip'd user-data can be
// stored), and a sequence of scalars becomes a leaf of newline-joined lines.
func LoadFixture(path string) (*Tree, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	t, err := ParseFixture(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// ParseFixture parses the YAML form described at LoadFixture.
func ParseFixture(data []byte) (*Tree, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		line := 1
		if len(doc.Content) > 0 {
			line = doc.Content[0].Line
		}
		return nil, fmt.Errorf("line %d: fixture must be a YAML mapping at the top level", line)
	}
	root, err := convert(doc.Content[0], "")
	if err != nil {
		return nil, err
	}
	return &Tree{Root: root}, nil
}

func convert(y *yaml.Node, at string) (*Node, error) {
	switch y.Kind {
	case yaml.MappingNode:
		n := &Node{Children: map[string]*Node{}}
		for i := 0; i+1 < len(y.Content); i += 2 {
			k := y.Content[i].Value
			if k == "" || strings.Contains(k, "/") {
				return nil, fmt.Errorf("line %d: bad key %q at %q: keys are non-empty path segments", y.Content[i].Line, k, at)
			}
			if _, dup := n.Children[k]; dup {
				return nil, fmt.Errorf("line %d: duplicate key %q at %q", y.Content[i].Line, k, at)
			}
			c, err := convert(y.Content[i+1], at+k+"/")
			if err != nil {
				return nil, err
			}
			n.Children[k] = c
			n.order = append(n.order, k)
		}
		return n, nil
	case yaml.SequenceNode:
		var lines []string
		for _, c := range y.Content {
			if c.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: sequence at %q must hold scalars", c.Line, at)
			}
			lines = append(lines, c.Value)
		}
		return &Node{Value: []byte(strings.Join(lines, "\n"))}, nil
	case yaml.ScalarNode:
		if y.Tag == "!!binary" {
			b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(y.Value), ""))
			if err != nil {
				return nil, fmt.Errorf("line %d: bad !!binary at %q: %v", y.Line, at, err)
			}
			return &Node{Value: b}, nil
		}
		return &Node{Value: []byte(y.Value)}, nil
	}
	return nil, fmt.Errorf("line %d: unsupported YAML node at %q", y.Line, at)
}

// Lookup resolves a slash-separated path below the version root. Empty
// segments are ignored, so "meta-data//ami-id" resolves like
// "meta-data/ami-id". A child listed as "N=label" is found by "N".
func (t *Tree) Lookup(path string) (*Node, bool) {
	n := t.Root
	for _, seg := range strings.Split(path, "/") {
		if seg == "" {
			continue
		}
		if !n.IsDir() {
			return nil, false
		}
		// "N=label" children are addressed by N only, as in IMDS.
		c, ok := n.Children[seg]
		if strings.Contains(seg, "=") {
			ok = false
		}
		if !ok {
			c, ok = n.indexed(seg)
		}
		if !ok {
			return nil, false
		}
		n = c
	}
	return n, true
}

func (n *Node) indexed(seg string) (*Node, bool) {
	if _, err := strconv.Atoi(seg); err != nil {
		return nil, false
	}
	for k, c := range n.Children {
		if i := strings.IndexByte(k, '='); i > 0 && k[:i] == seg {
			return c, true
		}
	}
	return nil, false
}

// Listing renders a directory as IMDS does: one child a line, directories
// suffixed with "/" except at the version root and for "N=label" children.
func (n *Node) Listing(top bool) []byte {
	names := n.order
	if len(names) != len(n.Children) { // built in code rather than from YAML
		names = make([]string, 0, len(n.Children))
		for k := range n.Children {
			names = append(names, k)
		}
		sort.Strings(names)
	}
	var b strings.Builder
	for i, k := range names {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(k)
		if n.Children[k].IsDir() && !top && !strings.Contains(k, "=") {
			b.WriteByte('/')
		}
	}
	return []byte(b.String())
}

// Set puts a leaf value at path, creating directories on the way. Tests
// use it to change metadata while the emulator runs (a hot-plugged ENI).
func (t *Tree) Set(path string, value []byte) {
	n := t.Root
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for _, seg := range segs[:len(segs)-1] {
		c, ok := n.Children[seg]
		if !ok || !c.IsDir() {
			c = &Node{Children: map[string]*Node{}}
			if !ok {
				n.order = append(n.order, seg)
			}
			n.Children[seg] = c
		}
		n = c
	}
	last := segs[len(segs)-1]
	if _, ok := n.Children[last]; !ok {
		n.order = append(n.order, last)
	}
	n.Children[last] = &Node{Value: value}
}

// Delete removes the entry at path; it reports whether one existed.
func (t *Tree) Delete(path string) bool {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	n, ok := t.Lookup(strings.Join(segs[:len(segs)-1], "/"))
	if !ok || !n.IsDir() {
		return false
	}
	last := segs[len(segs)-1]
	if _, ok := n.Children[last]; !ok {
		return false
	}
	delete(n.Children, last)
	for i, k := range n.order {
		if k == last {
			n.order = append(n.order[:i:i], n.order[i+1:]...)
			break
		}
	}
	return true
}
