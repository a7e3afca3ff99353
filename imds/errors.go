package imds

import (
	"errors"
	"fmt"
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

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
