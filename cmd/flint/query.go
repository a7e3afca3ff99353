package main

import (
	"context"
	"io"

	"github.com/flint-dev/flint/ec2metadata"
	"github.com/flint-dev/flint/imds"
)

// queryCommand is `flint query`, and flint itself when run as
// ec2-metadata: the command line, help and output belong to package
// ec2metadata, a drop-in for amazon-ec2-utils' script. There -h is
// --local-hostname, --help prints the script's help byte for byte, and the
// exit codes are the script's (0, or 1 for any failure or bad argument).
func queryCommand() Command {
	return Command{
		Name:  "query",
		Short: "ec2-metadata compatible queries (also run as ec2-metadata)",
		Raw:   true,
		Help:  ec2metadata.HelpText,
		Func: func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
			return ec2metadata.Main(ctx, args, stdout, stderr, func(endpoint string) (ec2metadata.Getter, error) {
				return imds.New(imds.Options{Endpoint: endpoint})
			})
		},
	}
}
