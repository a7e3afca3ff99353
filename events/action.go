package events

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/flint-dev/flint/imds"
	"github.com/flint-dev/flint/internal/rootfs"
)

// Message is what a hook reads on stdin: the notice, the instance's ID
// and its tags (when the instance exposes tags in metadata).
type Message struct {
	Notice
	InstanceID string            `json:"instance_id,omitempty"`
	Tags       map[string]string `json:"tags,omitempty"`
}

// Getter reads one metadata value; *imds.Client is one.
type Getter interface {
	Get(ctx context.Context, path string) ([]byte, error)
}

// TagsPath is where instance tags appear when the instance allows it.
const TagsPath = imds.TagsPath

// Tags reads the instance's tags. An instance that does not expose tags
// in metadata answers 404, which gives no tags and no error.
func Tags(ctx context.Context, md Getter) (map[string]string, error) {
	return imds.Tags(ctx, md)
}

// Hooks runs the executables of a directory for each new notice.
type Hooks struct {
	Root    *rootfs.Root
	Dir     string // relative to Root
	Timeout time.Duration
	Log     *slog.Logger
	DryRun  bool
}

// List returns the executables in the hook directory in lexical order;
// a missing directory holds none. Hidden files, directories and files
// without an execute bit are skipped.
func (h *Hooks) List() ([]string, error) {
	ents, err := h.Root.ReadDir(h.Dir, rootfs.InRoot)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("hook directory %s: %w", h.Root.Path(h.Dir), err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		fi, err := h.Root.Stat(path.Join(h.Dir, e.Name()), rootfs.InRoot)
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			continue
		}
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out, nil
}

// hookOutputMax bounds what of a hook's output is logged.
const hookOutputMax = 64 << 10

// Run runs every hook in turn with msg as JSON on stdin, each bounded by
// the timeout. Failures are logged; one hook's failure does not stop the
// next.
func (h *Hooks) Run(ctx context.Context, msg Message) {
	names, err := h.List()
	if err != nil {
		h.Log.Error("cannot list hooks", "error", err)
		return
	}
	body, _ := json.Marshal(msg)
	for _, name := range names {
		attrs := []any{"hook", name, "event", string(msg.Kind), "event_id", msg.ID}
		if h.DryRun {
			h.Log.Info("dry run: would run hook", attrs...)
			continue
		}
		start := time.Now()
		out, err := h.run(ctx, name, msg, body)
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			h.Log.Info(sc.Text(), attrs...)
		}
		attrs = append(attrs, "duration", time.Since(start).Round(time.Millisecond).String())
		if err != nil {
			h.Log.Warn("hook failed", append(attrs, "error", err.Error())...)
			continue
		}
		h.Log.Info("hook done", attrs...)
	}
}

func (h *Hooks) run(ctx context.Context, name string, msg Message, stdin []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, h.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.Root.Path(path.Join(h.Dir, name)))
	cmd.Dir = h.Root.Dir()
	cmd.Stdin = bytes.NewReader(stdin)
	cmd.Env = []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"FLINT_EVENT=" + string(msg.Kind),
		"FLINT_EVENT_ID=" + msg.ID,
		"FLINT_EVENT_ACTION=" + msg.Action,
		"FLINT_EVENT_TIME=" + msg.Time.UTC().Format(time.RFC3339),
	}
	var out capped
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		err = fmt.Errorf("killed after %v", h.Timeout)
	}
	return out.b, err
}

// capped keeps the first hookOutputMax bytes written to it.
type capped struct{ b []byte }

func (c *capped) Write(p []byte) (int, error) {
	if room := hookOutputMax - len(c.b); room > 0 {
		c.b = append(c.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// Shutdown powers the instance off through a command, once.
type Shutdown struct {
	Command []string
	Log     *slog.Logger
	DryRun  bool
}

// Run runs the shutdown command now.
func (s *Shutdown) Run(ctx context.Context, n Notice) {
	attrs := []any{"event", string(n.Kind), "event_id", n.ID, "command", strings.Join(s.Command, " ")}
	if s.DryRun {
		s.Log.Warn("dry run: would shut down now", attrs...)
		return
	}
	s.Log.Warn("shutting down before the notice's time", attrs...)
	out, err := exec.CommandContext(ctx, s.Command[0], s.Command[1:]...).CombinedOutput()
	if err != nil {
		s.Log.Error("shutdown command failed", append(attrs, "error", fmt.Sprintf("%v: %s", err, bytes.TrimSpace(out)))...)
	}
}
