package network

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/flint-dev/flint/imds"
)

// mapMetadata serves metadata from a map of path → value, listing
// directories the way IMDS does. Tests change it while a watcher runs.
type mapMetadata struct {
	mu   sync.Mutex
	m    map[string]string
	fail map[string]error
}

func newMapMetadata(m map[string]string) *mapMetadata {
	return &mapMetadata{m: m, fail: map[string]error{}}
}

func (f *mapMetadata) set(path, value string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.m[path] = value
}

func (f *mapMetadata) addENI(mac string, kv map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, v := range kv {
		f.m[macsPath+mac+"/"+k] = v
	}
}

func (f *mapMetadata) Get(_ context.Context, path string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail[path]; err != nil {
		return nil, err
	}
	v, ok := f.m[path]
	if !ok {
		return nil, fmt.Errorf("GET %s: %w", path, imds.ErrNotFound)
	}
	return []byte(v), nil
}

func (f *mapMetadata) List(_ context.Context, dir string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail[dir]; err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for k := range f.m {
		rest, ok := strings.CutPrefix(k, dir)
		if !ok || rest == "" {
			continue
		}
		if i := strings.Index(rest, "/"); i >= 0 {
			rest = rest[:i+1]
		}
		seen[rest] = true
	}
	if len(seen) == 0 {
		return nil, fmt.Errorf("GET %s: %w", dir, imds.ErrNotFound)
	}
	var out []string
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out, nil
}

// eniKeys turns "key", "value", ... into a map.
func eniKeys(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// fixtureMetadata is three ENIs: a dual-card instance with secondary
// addresses, IPv6 on eth1 and a delegated prefix.
func fixtureMetadata() *mapMetadata {
	f := newMapMetadata(map[string]string{"meta-data/mac": mac0})
	f.addENI(mac0, eniKeys("device-number", "0", "network-card", "0",
		"local-ipv4s", "10.0.1.10\n10.0.1.11", "subnet-ipv4-cidr-block", "10.0.1.0/24"))
	f.addENI(mac1, eniKeys("device-number", "1", "network-card", "0",
		"local-ipv4s", "10.0.2.10\n10.0.2.11\n10.0.2.12", "subnet-ipv4-cidr-block", "10.0.2.0/24",
		"ipv6s", "2001:db8:2::10", "subnet-ipv6-cidr-blocks", "2001:db8:2::/64",
		"ipv4-prefix", "10.0.2.64/28"))
	f.addENI(mac2, eniKeys("device-number", "0", "network-card", "1",
		"local-ipv4s", "10.0.3.10\n10.0.3.11", "subnet-ipv4-cidr-block", "10.0.3.0/24"))
	return f
}
