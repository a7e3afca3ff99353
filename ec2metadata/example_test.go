package ec2metadata_test

import (
	"fmt"

	"github.com/flint-dev/flint/ec2metadata"
)

func ExampleNormalizePath() {
	for _, p := range []string{"placement//region", "dynamic/instance-identity/document", "/2021-03-23/meta-data/ami-id"} {
		fmt.Println(ec2metadata.NormalizePath(p))
	}
	// Output:
	// latest/meta-data/placement/region
	// latest/dynamic/instance-identity/document
	// /2021-03-23/meta-data/ami-id
}
