// Package cloudconfig decides what cloud-config modules do, without doing
// it: each function takes a module's config keys (as userdata decodes
// them) and what it needs to know of the system (current file contents,
// installed programs), and returns the files to write and the commands to
// run, with cloud-init 22.4's semantics for odd values. Handlers apply the
// result (atomically) and report its notes.
//
// The templates under templates/ are cloud-init 22.4's own (Apache-2.0),
// rendered by userdata.RenderJinja, so the files match cloud-init's byte
// for byte.
package cloudconfig

import (
	"fmt"
	"io/fs"
	"strings"

	"github.com/flint-dev/flint/userdata"
)

// File is a file a module writes: Path is absolute on the target system.
type File struct {
	Path    string
	Mode    fs.FileMode
	Content []byte
}

// ConfigError is a module's config value that cannot be applied: the
// module's key, and why. It never quotes secrets.
type ConfigError struct {
	Key    string
	Reason string
}

func (e *ConfigError) Error() string { return e.Key + ": " + e.Reason }

func configErrorf(key, format string, args ...any) *ConfigError {
	return &ConfigError{Key: key, Reason: fmt.Sprintf(format, args...)}
}

// isTrue and isFalse are cloud-init's util.is_true / is_false: booleans,
// or their strings in any case.
func isTrue(v any) bool {
	if b, ok := v.(bool); ok {
		return b
	}
	switch strings.ToLower(strings.TrimSpace(userdata.PyStr(v))) {
	case "true", "1", "on", "yes":
		return true
	}
	return false
}

func isFalse(v any) bool {
	if b, ok := v.(bool); ok {
		return !b
	}
	switch strings.ToLower(strings.TrimSpace(userdata.PyStr(v))) {
	case "off", "0", "no", "false":
		return true
	}
	return false
}
