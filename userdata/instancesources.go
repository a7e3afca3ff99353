package userdata

import (
	"context"
	"fmt"
	"strings"

	"github.com/flint-dev/flint/imds"
)

// ReadInstanceSources reads what BuildInstanceData needs from a metadata
// service: the meta-data tree (required), the instance identity document
// and the public keys' names (optional, as cloud-init reads them: a
// failure leaves them out). endpoint is named in v1.subplatform.
func ReadInstanceSources(ctx context.Context, r imds.Reader, endpoint string) (InstanceSources, error) {
	meta, err := imds.Walk(ctx, r, "meta-data")
	if err != nil {
		return InstanceSources{}, fmt.Errorf("reading meta-data for templates: %w", err)
	}
	s := InstanceSources{MetaData: imds.Tree(meta, "meta-data"), MetadataURL: endpoint}
	if dyn, err := imds.Walk(ctx, r, "dynamic/instance-identity"); err == nil {
		s.Dynamic = imds.Tree(dyn, "dynamic")
	}
	if names, err := r.List(ctx, "meta-data/public-keys/"); err == nil {
		s.PublicKeyNames = map[string]string{}
		for _, n := range names {
			if i, name, ok := strings.Cut(strings.TrimSuffix(n, "/"), "="); ok {
				s.PublicKeyNames[i] = name
			}
		}
	}
	return s, nil
}
