package main

import (
	"context"
	"io"

	"github.com/flint-dev/flint/ec2metadata"
	"github.com/flint-dev/flint/imds"
)

// cmdQuery is `flint query`, and flint itself when run as ec2-metadata:
// the command line and output belong to package ec2metadata, which is a
// drop-in for amazon-ec2-utils' script. Its exit codes are the script's
// (0, or 1 for any failure), not flint's usual 2 for usage errors.
func cmdQuery(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return ec2metadata.Main(ctx, args, stdout, stderr, func(endpoint string) (ec2metadata.Getter, error) {
		return imds.New(imds.Options{Endpoint: endpoint})
	})
}
