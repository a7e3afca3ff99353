// Package logging builds flint's structured logger: journald with
// structured fields (HANDLER, INSTANCE_ID, DURATION …) when the journal
// socket exists, else one text line per record on stderr. Callers pass
// names and numbers as attributes; values from metadata or user-data
// (which may be secret) are never logged.
package logging

import (
	"context"
	"io"
	"log/slog"
	"strings"

	"github.com/coreos/go-systemd/v22/journal"
)

// UsesJournal reports whether target ("auto", "journal", "stderr") means
// journald here.
func UsesJournal(target string) bool {
	return target == "journal" || (target == "auto" && journal.Enabled())
}

// JournalLine sends one line of a process's output to journald, as
// SYSLOG_IDENTIFIER=flint-output with FLINT_PROCESS naming the process.
func JournalLine(process, line string) {
	journal.Send(line, journal.PriInfo, map[string]string{"SYSLOG_IDENTIFIER": "flint-output", "FLINT_PROCESS": process})
}

// New returns a logger for target "auto", "journal" or "stderr" at level.
func New(target, level string, stderr io.Writer) *slog.Logger {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		lv = slog.LevelInfo
	}
	if UsesJournal(target) {
		return slog.New(&journalHandler{level: lv})
	}
	return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{
		Level: lv,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{}
			}
			return a
		},
	}))
}

type journalHandler struct {
	level slog.Level
	attrs []slog.Attr
}

func (h *journalHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *journalHandler) Handle(_ context.Context, r slog.Record) error {
	vars := map[string]string{"SYSLOG_IDENTIFIER": "flint"}
	add := func(a slog.Attr) {
		key := strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(a.Key))
		vars[key] = a.Value.String()
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(func(a slog.Attr) bool { add(a); return true })
	msg := r.Message
	if hn, ok := vars["HANDLER"]; ok {
		msg = hn + ": " + msg
	}
	if e, ok := vars["ERROR"]; ok {
		msg += ": " + e
	}
	return journal.Send(msg, priority(r.Level), vars)
}

func (h *journalHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &journalHandler{level: h.level, attrs: append(append([]slog.Attr(nil), h.attrs...), attrs...)}
}

func (h *journalHandler) WithGroup(string) slog.Handler { return h }

func priority(l slog.Level) journal.Priority {
	switch {
	case l >= slog.LevelError:
		return journal.PriErr
	case l >= slog.LevelWarn:
		return journal.PriWarning
	case l >= slog.LevelInfo:
		return journal.PriInfo
	}
	return journal.PriDebug
}
