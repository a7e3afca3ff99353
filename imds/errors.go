package imds

import (
	"errors"
	"fmt"
	"strings"
)

// ErrNotFound is returned (wrapped) when IMDS answers 404 for a path: the
// value is absent on this instance (ramdisk-id, kernel-id, user-data on most
// instances). It is not a failure; test for it with errors.Is.
var ErrNotFound = errors.New("not found in instance metadata")

// ErrDisabled is returned when metadata access is turned off, either locally
// (AWS_EC2_METADATA_DISABLED=true) or by the endpoint (token PUT answered 403).
var ErrDisabled = errors.New("instance metadata access is disabled")

// StatusError is an HTTP answer IMDS gave that is neither success nor 404.
type StatusError struct {
	Method, Path string
	Code         int
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s: IMDS answered HTTP %d", e.Method, e.Path, e.Code)
}

// PathError is a metadata path that cannot be put in a request line.
type PathError struct{ Path, Why string }

func (e *PathError) Error() string { return fmt.Sprintf("metadata path %q %s", e.Path, e.Why) }

// CheckPath refuses, as a *PathError, what a request line cannot carry:
// '?', '#', control characters, "." or ".." segments.
func CheckPath(path string) error {
	if strings.ContainsAny(path, "?#") {
		return &PathError{path, "holds '?' or '#'"}
	}
	if strings.IndexFunc(path, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
		return &PathError{path, "holds control characters"}
	}
	for _, seg := range strings.Split(path, "/") {
		if seg == ".." || seg == "." {
			return &PathError{path, "holds a '.' or '..' segment"}
		}
	}
	return nil
}

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
