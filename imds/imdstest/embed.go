package imdstest

import _ "embed"

// DefaultFixture is testdata/instance.yaml, built into the binary so that
// `flint emulate` and `make run` work without any file at hand.
//
//go:embed testdata/instance.yaml
var DefaultFixture []byte
