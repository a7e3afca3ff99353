package ec2metadata

import (
	"context"
	"errors"
	"net/http"
	"sort"
	"strings"
	"sync"

	"github.com/flint-dev/flint/imds"
)

// Getter reads one metadata path. path is relative to /latest/
// ("meta-data/instance-id") unless it starts with "/", in which case it is
// from the server root ("/2021-03-23/meta-data/ami-id"). A 404 must be
// reported as an error matching imds.ErrNotFound, and a path a request line
// cannot carry as an *imds.PathError (imds.CheckPath), so that one odd
// --path or listing word fails alone. *imds.Client is a Getter.
type Getter interface {
	Get(ctx context.Context, path string) ([]byte, error)
}

// fetched is the answer for one path: err is nil, an imds.ErrNotFound
// (absent) or a failure.
type fetched struct {
	raw []byte
	err error
}

// found reports whether the path had a value.
func (f fetched) found() bool { return f.err == nil }

// call is one fetch, shared by every step that needs the same path.
type call struct {
	done chan struct{}
	fetched
}

// fetcher runs each path's Get once, concurrently with the others, and
// remembers the answers, so that a command line asking for a key twice
// (or --all plus a flag) costs one request. The first failure that is not
// about one path (no connection, no token, access disabled, deadline)
// cancels every other fetch: the command fails as a whole, quickly.
type fetcher struct {
	ctx    context.Context
	cancel context.CancelFunc
	g      Getter
	mu     sync.Mutex
	calls  map[string]*call
	order  []string
	// serviceErr is the first failure that was not about one path.
	serviceErr error
}

func newFetcher(ctx context.Context, g Getter) *fetcher {
	ctx, cancel := context.WithCancel(ctx)
	return &fetcher{ctx: ctx, cancel: cancel, g: g, calls: map[string]*call{}}
}

// start begins fetching path in the background unless that has begun
// already, under this or another spelling ("meta-data/x" and
// "/latest/meta-data/x").
func (f *fetcher) start(path string) *call {
	c, fresh := f.register(path)
	if fresh {
		go f.run(c, path)
	}
	return c
}

// get waits for path's answer. A path nobody has started is fetched on the
// caller's goroutine: a command that reads one value starts none.
func (f *fetcher) get(path string) fetched {
	c, fresh := f.register(path)
	if fresh {
		f.run(c, path)
	}
	<-c.done
	return c.fetched
}

// register returns path's call, and whether the caller created it and
// must run it.
func (f *fetcher) register(path string) (*call, bool) {
	key := path
	if !strings.HasPrefix(key, "/") {
		key = "/latest/" + key
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.calls[key]; ok {
		return c, false
	}
	c := &call{done: make(chan struct{})}
	f.calls[key] = c
	f.order = append(f.order, key)
	return c, true
}

func (f *fetcher) run(c *call, path string) {
	defer close(c.done)
	c.raw, c.err = f.g.Get(f.ctx, path)
	if c.err != nil && !pathFailure(c.err) {
		f.mu.Lock()
		if f.serviceErr == nil {
			f.serviceErr = c.err
		}
		f.mu.Unlock()
		f.cancel()
	}
}

// failure is a fetch that failed for a reason other than absence.
type failure struct {
	path string
	err  error
}

// failures returns, once every fetch has finished, the paths that failed
// on their own, sorted, and the first failure that was not about one path
// (nil if none).
func (f *fetcher) failures() (paths []failure, service error) {
	f.mu.Lock()
	calls := make([]*call, len(f.order))
	for i, p := range f.order {
		calls[i] = f.calls[p]
	}
	order := f.order
	f.mu.Unlock()
	for i, c := range calls {
		<-c.done // a fetch records a service failure under f.mu
		if c.err != nil && !errors.Is(c.err, imds.ErrNotFound) {
			paths = append(paths, failure{order[i], c.err})
		}
	}
	sort.Slice(paths, func(i, j int) bool { return paths[i].path < paths[j].path })
	f.mu.Lock()
	defer f.mu.Unlock()
	return paths, f.serviceErr
}

// pathFailure reports whether err is about the path alone: absent, refused
// by IMDS with a status of its own, or not a valid path. Anything else
// (transport, token, disabled, deadline) is about the service.
func pathFailure(err error) bool {
	var se *imds.StatusError
	var pe *imds.PathError
	return errors.Is(err, imds.ErrNotFound) || errors.As(err, &pe) ||
		(errors.As(err, &se) && se.Method == http.MethodGet)
}

// entry is one child of a listing (a block device or a tag) and its value.
type entry struct {
	name string
	v    fetched
}

// publicKey is one word of the public-keys listing, split as the script
// splits it, with the format listing and the key read for it.
type publicKey struct {
	index, name string
	format      fetched
	key         fetched
}

// result is a step with the metadata it printed resolved.
type result struct {
	step
	v       fetched // the value of a metric, the listing of the others
	entries []entry
	keys    []publicKey
}

// listed reports whether a listing step has anything to list: the script
// prints "not available" when the listing, as the shell holds it, is empty.
func (r *result) listed() bool { return r.v.found() && shellValue(r.v.raw) != "" }

// resolve fetches everything the steps print, each step and each child of
// a listing in its own goroutine, so the whole command costs the depth of
// the deepest chain (public keys: listing → formats → keys) in round trips.
// The last step runs on the caller's goroutine, so one flag costs no
// goroutine at all.
func resolve(f *fetcher, steps []step) []*result {
	results := make([]*result, len(steps))
	var work []*result
	metrics := 0
	for i, s := range steps {
		results[i] = &result{step: s}
		switch s.kind {
		case helpStep, usageStep:
			continue
		case metricStep:
			metrics++
		}
		work = append(work, results[i])
	}
	if len(work) == 0 {
		return results
	}
	if metrics > 1 {
		for _, r := range work {
			if r.kind == metricStep {
				f.start(r.path)
			}
		}
	}
	var wg sync.WaitGroup
	for _, r := range work[:len(work)-1] {
		wg.Add(1)
		go func(r *result) {
			defer wg.Done()
			resolveStep(f, r)
		}(r)
	}
	resolveStep(f, work[len(work)-1])
	wg.Wait()
	return results
}

func resolveStep(f *fetcher, r *result) {
	switch r.kind {
	case metricStep:
		r.v = f.get(r.path)
	case blockDevicesStep:
		r.v, r.entries = resolveListing(f, "meta-data/block-device-mapping/")
	case tagsStep:
		r.v, r.entries = resolveListing(f, "meta-data/tags/instance/")
	case publicKeysStep:
		r.v, r.keys = resolvePublicKeys(f)
	}
}

// resolveListing reads a directory and each word of it, as
// `for i in $x; do ... get_meta DIR$i` does.
func resolveListing(f *fetcher, dir string) (fetched, []entry) {
	listing := f.get(dir)
	if !listing.found() {
		return listing, nil
	}
	words := ifsFields(shellValue(listing.raw))
	for _, w := range words {
		f.start(dir + w)
	}
	entries := make([]entry, len(words))
	for i, w := range words {
		entries[i] = entry{name: w, v: f.get(dir + w)}
	}
	return listing, entries
}

// resolvePublicKeys follows print_public-keys: each word "N=name" of the
// listing gives the index N (cut -f 1) and name (cut -f 2); the listing of
// meta-data/public-keys/N/ gives the format, whose first word names the key
// to read.
func resolvePublicKeys(f *fetcher) (fetched, []publicKey) {
	const dir = "meta-data/public-keys/"
	listing := f.get(dir)
	if !listing.found() {
		return listing, nil
	}
	words := ifsFields(shellValue(listing.raw))
	keys := make([]publicKey, len(words))
	for i, w := range words {
		keys[i] = publicKey{index: cutField(w, 1), name: cutField(w, 2)}
		f.start(dir + keys[i].index + "/")
	}
	var wg sync.WaitGroup
	for i := range keys {
		wg.Add(1)
		go func(k *publicKey) {
			defer wg.Done()
			k.format = f.get(dir + k.index + "/")
			k.key = f.get(keyPath(k.index, shellValue(k.format.raw)))
		}(&keys[i])
	}
	wg.Wait()
	return listing, keys
}

// keyPath is the path `get_meta meta-data/public-keys/$index/$format`
// reads: the unquoted word is split and get_meta uses only the first field
// (never empty: the prefix holds no separator).
func keyPath(index, format string) string {
	return ifsFields("meta-data/public-keys/" + index + "/" + format)[0]
}

// firstWord is the first IFS field of s, or "".
func firstWord(s string) string {
	if w := ifsFields(s); len(w) > 0 {
		return w[0]
	}
	return ""
}
