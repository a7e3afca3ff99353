package imds

import (
	"context"
	"errors"
	"strings"
)

// TagsPath is where instance tags appear when the instance's metadata
// options allow it (InstanceMetadataTags enabled).
const TagsPath = "meta-data/tags/instance"

// Tags reads the instance's tags as name → value. An instance that does
// not expose tags in metadata answers 404, which gives no tags and no
// error; so does a tag removed between the listing and its read. A tag
// name IMDS cannot be asked for by path is left out.
func Tags(ctx context.Context, md interface {
	Get(ctx context.Context, path string) ([]byte, error)
}) (map[string]string, error) {
	b, err := md.Get(ctx, TagsPath+"/")
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	tags := map[string]string{}
	for _, key := range strings.Split(string(b), "\n") {
		key = strings.TrimSpace(key)
		if key == "" || strings.HasSuffix(key, "/") || CheckPath(TagsPath+"/"+key) != nil {
			continue
		}
		v, err := md.Get(ctx, TagsPath+"/"+key)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		tags[key] = string(v)
	}
	return tags, nil
}
