package imds

import (
	"context"
	"sync"
	"time"
)

// Reader is what handlers need from IMDS: values and listings by path,
// with 404 reported as ErrNotFound. *Client and *Memo implement it.
type Reader interface {
	Get(ctx context.Context, path string) ([]byte, error)
	List(ctx context.Context, path string) ([]string, error)
}

// Memo remembers every answer of an underlying Reader for the life of one
// run, so handlers that ask for the same key cost one request, and
// concurrent askers of one key share a single request. Errors other than
// ErrNotFound are not remembered: the next ask tries again.
type Memo struct {
	r  Reader
	mu sync.Mutex
	m  map[string]*memoEntry
}

type memoEntry struct {
	done  chan struct{}
	value []byte
	list  []string
	err   error
}

// NewMemo wraps r.
func NewMemo(r Reader) *Memo { return &Memo{r: r, m: map[string]*memoEntry{}} }

// Get returns the (remembered) value at path.
func (m *Memo) Get(ctx context.Context, path string) ([]byte, error) {
	e := m.do(ctx, "g:"+path, func(e *memoEntry) { e.value, e.err = m.r.Get(ctx, path) })
	return e.value, e.err
}

// List returns the (remembered) listing at path.
func (m *Memo) List(ctx context.Context, path string) ([]string, error) {
	e := m.do(ctx, "l:"+path, func(e *memoEntry) { e.list, e.err = m.r.List(ctx, path) })
	return e.list, e.err
}

func (m *Memo) do(ctx context.Context, key string, fill func(*memoEntry)) *memoEntry {
	m.mu.Lock()
	if e, ok := m.m[key]; ok {
		m.mu.Unlock()
		select {
		case <-e.done:
			return e
		case <-ctx.Done():
			return &memoEntry{err: ctx.Err()}
		}
	}
	e := &memoEntry{done: make(chan struct{})}
	m.m[key] = e
	m.mu.Unlock()
	fill(e)
	if e.err != nil && !isNotFound(e.err) {
		m.mu.Lock()
		delete(m.m, key)
		m.mu.Unlock()
	}
	close(e.done)
	return e
}

// Bounded gives every read of r at most d: the boot's IMDS deadline
// applies to waiting for metadata, not to the handlers that use it.
func Bounded(r Reader, d time.Duration) Reader { return bounded{r, d} }

type bounded struct {
	r Reader
	d time.Duration
}

func (b bounded) Get(ctx context.Context, path string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, b.d)
	defer cancel()
	return b.r.Get(ctx, path)
}

func (b bounded) List(ctx context.Context, path string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, b.d)
	defer cancel()
	return b.r.List(ctx, path)
}
