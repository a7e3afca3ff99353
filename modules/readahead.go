package modules

import (
	"context"
	"io"
	"sync"
)

// readAhead runs the reads of r (download, digest, decompression) on their
// own goroutine, a few buffers ahead of the consumer (tar parsing, file
// creation and writes), so the two halves of an install use two cores the
// way "curl | tar" does. Memory stays bounded: depth+1 buffers.
type readAhead struct {
	full   chan chunk
	free   chan []byte
	cancel context.CancelFunc
	exited chan struct{}
	once   sync.Once
	base   []byte
	cur    []byte
	err    error
}

type chunk struct {
	b   []byte
	err error
}

const (
	readAheadSize  = 256 << 10
	readAheadDepth = 4
)

// newReadAhead starts reading r. cancel must make a blocked read of r
// return (it cancels the context the source was opened with), so that Close
// can wait for the goroutine before the caller closes what it reads.
func newReadAhead(r io.Reader, cancel context.CancelFunc) *readAhead {
	ra := &readAhead{
		full:   make(chan chunk, readAheadDepth),
		free:   make(chan []byte, readAheadDepth+1),
		cancel: cancel,
		exited: make(chan struct{}),
	}
	for range readAheadDepth + 1 {
		ra.free <- make([]byte, readAheadSize)
	}
	go ra.fill(r)
	return ra
}

func (ra *readAhead) fill(r io.Reader) {
	defer close(ra.exited)
	for {
		buf, ok := <-ra.free
		if !ok {
			return
		}
		// Not io.ReadFull: it would turn the decompressor's own
		// io.ErrUnexpectedEOF (a truncated stream) into a plain short read.
		n := 0
		var err error
		for n < len(buf) && err == nil {
			var m int
			m, err = r.Read(buf[n:])
			n += m
		}
		ra.full <- chunk{buf[:n], err}
		if err != nil {
			return
		}
	}
}

func (ra *readAhead) Read(p []byte) (int, error) {
	for len(ra.cur) == 0 {
		if ra.base != nil {
			ra.free <- ra.base // never blocks: there are only depth+1 buffers
			ra.base = nil
		}
		if ra.err != nil {
			return 0, ra.err
		}
		c := <-ra.full
		ra.base, ra.cur, ra.err = c.b[:cap(c.b)], c.b, c.err
	}
	n := copy(p, ra.cur)
	ra.cur = ra.cur[n:]
	return n, nil
}

// Close stops the reading goroutine and waits for it, so the reader it
// used can be closed safely. The underlying reader is not closed.
func (ra *readAhead) Close() error {
	ra.once.Do(func() {
		ra.cancel()
		close(ra.free)
		// Drain so a goroutine blocked on a full channel can finish.
		for {
			select {
			case <-ra.full:
			case <-ra.exited:
				return
			}
		}
	})
	return nil
}
