package cloudconfig

import (
	"sort"
	"strings"
)

// GroupPlan is one group of the top-level groups key: create it unless
// it exists (groupadd), then add each existing member (usermod -a -G);
// cloud-init warns about members that are not users and skips them.
type GroupPlan struct {
	Name    string
	Members []string
}

// Groups normalises cloud-config's top-level groups as cloud-init 22.4's
// ug_util._normalize_groups does (cc_users_groups, once per instance):
// a comma-separated string (names not trimmed after the first, as in
// cloud-init), a list of names and {name: members} mappings (members a
// list or one name), or one mapping (members a list or a comma-separated
// string); members are merged, made unique and sorted. Groups come sorted by name (cloud-init: document
// order, which decoded cloud-config does not keep).
func Groups(v any) ([]GroupPlan, error) {
	if v == nil {
		return nil, nil
	}
	members := map[string][]any{}
	var order []string
	add := func(name string, ms ...any) {
		if _, ok := members[name]; !ok {
			order = append(order, name)
			members[name] = []any{}
		}
		members[name] = append(members[name], ms...)
	}
	if s, ok := v.(string); ok {
		parts := strings.Split(strings.TrimSpace(s), ",")
		l := make([]any, len(parts))
		for i, p := range parts {
			l[i] = p
		}
		v = l
	}
	switch g := v.(type) {
	case []any:
		for _, it := range g {
			switch it := it.(type) {
			case string:
				add(it)
			case map[string]any:
				for k, ms := range it {
					switch ms := ms.(type) {
					case []any:
						add(k, ms...)
					case string:
						add(k, ms)
					default:
						return nil, configErrorf("groups."+k, "members are %s, not a list or a string", typeName(ms))
					}
				}
			default:
				return nil, configErrorf("groups", "has %s, not a group name or mapping", typeName(it))
			}
		}
	case map[string]any:
		for k, ms := range g {
			switch ms := ms.(type) {
			case []any:
				add(k, ms...)
			case string:
				// Only here is a string of members split on commas.
				for _, n := range strings.Split(strings.TrimSpace(ms), ",") {
					if n != "" {
						add(k, n)
					}
				}
			case nil:
				add(k)
			default:
				return nil, configErrorf("groups."+k, "members are %s, not a list or a string", typeName(ms))
			}
		}
	default:
		return nil, configErrorf("groups", "is %s; want a list, a mapping or a string", typeName(v))
	}
	sort.Strings(order)
	out := make([]GroupPlan, 0, len(order))
	for _, name := range order {
		out = append(out, GroupPlan{Name: name, Members: uniqMergeSorted(members[name])})
	}
	return out, nil
}

// uniqMergeSorted is util.uniq_merge_sorted over a list of members:
// unique, str()-ed, sorted (list items are never split).
func uniqMergeSorted(items []any) []string {
	out := uniqStrings(items)
	if out == nil {
		out = []string{}
	}
	sort.Strings(out)
	return out
}
