package handlers

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/flint-dev/flint/internal/rootfs"
)

// OutputLogPath is where scripts' and plug-ins' output goes (0640).
const OutputLogPath = "var/log/flint-output.log"

// PerProcessCap bounds what one process may add to the output log; the
// rest is counted and dropped, so a script printing megabytes cannot fill
// the disk.
const PerProcessCap = 1 << 20

// OutputLog appends to the output log, rotating it (one previous
// generation, ".1") when it passes its maximum size.
type OutputLog struct {
	mu   sync.Mutex
	root *rootfs.Root
	max  int64
	// Journal, when set, also receives each line a process printed (within
	// the per-process cap), labelled with the process's name.
	Journal func(process, line string)
}

// OpenOutputLog prepares the output log below root.
func OpenOutputLog(root *rootfs.Root, max int64) (*OutputLog, error) {
	if err := root.MkdirAll("var/log", 0o755, rootfs.NoOwner, rootfs.InRoot); err != nil {
		return nil, err
	}
	if max <= 0 {
		max = 16 << 20
	}
	return &OutputLog{root: root, max: max}, nil
}

// Writer returns a writer for one process's output, headed by a line naming
// it. Close it to write the truncation note, if any.
func (l *OutputLog) Writer(name string) *CappedWriter {
	w := &CappedWriter{log: l, name: name, left: PerProcessCap}
	w.keep(l.append([]byte(fmt.Sprintf("---- %s ----\n", name))))
	return w
}

// append adds b to the log. An error says what of it was not kept; a
// rotation that fails still appends, so the output is not lost with it.
func (l *OutputLog) append(b []byte) error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var rotErr error
	// Through the root: an image whose var/log is a symlink out of it
	// cannot make flint write on the build host.
	if fi, err := l.root.Stat(OutputLogPath, rootfs.InRoot); err == nil && fi.Size()+int64(len(b)) > l.max {
		if err := l.root.Rename(OutputLogPath, "flint-output.log.1"); err != nil {
			rotErr = fmt.Errorf("rotating the output log: %w", err)
		}
	}
	f, err := l.root.OpenFile(OutputLogPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640, rootfs.InRoot)
	if err != nil {
		return errors.Join(rotErr, fmt.Errorf("opening the output log: %w", err))
	}
	// A log created earlier with a laxer mode is tightened: output may hold
	// whatever scripts print. A log that cannot be tightened gets nothing.
	if err := f.Chmod(0o640); err != nil {
		f.Close()
		return errors.Join(rotErr, fmt.Errorf("output log %s: %w", f.Name(), err))
	}
	_, werr := f.Write(b)
	if cerr := f.Close(); werr == nil && cerr != nil {
		werr = fmt.Errorf("closing %s: %w", f.Name(), cerr)
	}
	return errors.Join(rotErr, werr)
}

// CappedWriter passes at most PerProcessCap bytes to the log.
type CappedWriter struct {
	log     *OutputLog
	name    string
	left    int64
	dropped int64
	partial []byte // an unfinished line, for the journal
	err     error  // the first failure to keep output
	mu      sync.Mutex
}

// keep records the first error of the log (caller holds mu or owns w).
func (w *CappedWriter) keep(err error) {
	if err != nil && w.err == nil {
		w.err = err
	}
}

// Err returns the first failure to write the process's output to the
// log: the process is not failed for it, the run reports it.
func (w *CappedWriter) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Write implements io.Writer; it never fails, so a chatty process is not
// killed by SIGPIPE.
func (w *CappedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := int64(len(p))
	if n > w.left {
		w.dropped += n - w.left
		p = p[:w.left]
	}
	w.left -= int64(len(p))
	if len(p) > 0 {
		w.keep(w.log.append(p))
		w.journal(p)
	}
	return int(n), nil
}

// journal passes complete lines to the log's Journal hook.
func (w *CappedWriter) journal(p []byte) {
	if w.log == nil || w.log.Journal == nil {
		return
	}
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		w.log.Journal(w.name, string(w.partial[:i]))
		w.partial = w.partial[i+1:]
	}
}

// Dropped returns how many bytes were over the cap.
func (w *CappedWriter) Dropped() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.dropped
}

// Close writes the truncation note and the last unfinished line.
func (w *CappedWriter) Close() error {
	w.mu.Lock()
	if len(w.partial) > 0 && w.log != nil && w.log.Journal != nil {
		w.log.Journal(w.name, string(w.partial))
	}
	w.partial = nil
	if w.dropped > 0 {
		w.keep(w.log.append([]byte(fmt.Sprintf("\n---- %s: %d more bytes of output dropped ----\n", w.name, w.dropped))))
	}
	err := w.err
	w.mu.Unlock()
	return err
}

var _ io.WriteCloser = (*CappedWriter)(nil)
