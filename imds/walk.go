package imds

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
)

// Entry is one leaf found by Dump.
type Entry struct {
	// Path is relative to "/latest/" ("meta-data/ami-id").
	Path  string
	Value []byte
	// Err is set when the leaf (or the listing that should have held it)
	// could not be read; the walk goes on.
	Err error
}

// rootDirs are the version root's children that are directories although
// IMDS lists them without a trailing "/".
var rootDirs = map[string]bool{"meta-data": true, "dynamic": true}

var indexedKey = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^([0-9]+)=`) })

// Dump walks the directory root ("" for everything) concurrently and
// returns every leaf sorted by path. Listings name directories with a
// trailing "/", except at the version root and for "N=name" keys, which are
// addressed as "N/".
func (c *Client) Dump(ctx context.Context, root string) ([]Entry, error) {
	return Walk(ctx, c, root)
}

// Walk is Dump over any Reader (a Memo shares the answers with the rest of
// the run).
func Walk(ctx context.Context, r Reader, root string) ([]Entry, error) {
	root = strings.Trim(root, "/")
	var (
		mu  sync.Mutex
		out []Entry
		wg  sync.WaitGroup
		sem = make(chan struct{}, concurrency)
	)
	add := func(e Entry) {
		mu.Lock()
		out = append(out, e)
		mu.Unlock()
	}
	var visit func(path string, dir bool)
	visit = func(path string, dir bool) {
		defer wg.Done()
		sem <- struct{}{}
		var b []byte
		var names []string
		var err error
		if dir && path == "" {
			names, err = r.List(ctx, "")
		} else if dir {
			names, err = r.List(ctx, path+"/")
		} else {
			b, err = r.Get(ctx, path)
		}
		<-sem
		if err != nil {
			if !errors.Is(err, ErrNotFound) || path == root {
				add(Entry{Path: path, Err: err})
			}
			return
		}
		if !dir {
			add(Entry{Path: path, Value: b})
			return
		}
		for _, name := range names {
			child, childDir := strings.TrimSuffix(name, "/"), strings.HasSuffix(name, "/")
			if m := indexedKey().FindStringSubmatch(child); m != nil {
				child, childDir = m[1], true
			}
			if path == "" {
				childDir = childDir || rootDirs[child]
			}
			p := child
			if path != "" {
				p = path + "/" + child
			}
			wg.Add(1)
			go visit(p, childDir)
		}
	}
	dir, err := isDir(ctx, r, root)
	if err != nil {
		return nil, err
	}
	wg.Add(1)
	visit(root, dir)
	wg.Wait()
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	if len(out) == 1 && out[0].Path == root && out[0].Err != nil {
		return nil, out[0].Err
	}
	return out, nil
}

// isDir tells a directory from a value the way a walk from the top would:
// by the parent's listing (a trailing "/", an "N=name" entry, or one of the
// version root's directories).
func isDir(ctx context.Context, r Reader, p string) (bool, error) {
	if p == "" || rootDirs[p] {
		return true, nil
	}
	parent, base := "", p
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		parent, base = p[:i+1], p[i+1:]
	}
	names, err := r.List(ctx, parent)
	if err != nil {
		return false, err
	}
	for _, n := range names {
		switch {
		case n == base+"/":
			return true, nil
		case n == base:
			return parent == "" && rootDirs[base], nil
		case strings.HasPrefix(n, base+"=") && indexedKey().MatchString(n):
			return true, nil
		}
	}
	return false, fmt.Errorf("%s: %w", p, ErrNotFound)
}

// Tree nests the leaves below root as maps ("placement" → {"region": …}),
// values as strings: the shape templates and plug-ins read.
func Tree(entries []Entry, root string) map[string]any {
	out := map[string]any{}
	prefix := strings.Trim(root, "/")
	for _, e := range entries {
		if e.Err != nil {
			continue
		}
		p := strings.TrimPrefix(strings.TrimPrefix(e.Path, prefix), "/")
		segs := strings.Split(p, "/")
		m := out
		for _, s := range segs[:len(segs)-1] {
			next, ok := m[s].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[s] = next
			}
			m = next
		}
		m[segs[len(segs)-1]] = string(e.Value)
	}
	return out
}
