package userdata

import "context"

// Options tune Parse and Inspect. The zero value is usable: default caps,
// the default HTTP fetcher for #include, no include-once cache, no launch
// index filtering, and jinja templates left unrendered (with a warning).
type Options struct {
	// MaxSize caps the raw user-data (before any decompression);
	// 0 means DefaultMaxSize.
	MaxSize int64
	// MaxDecompressed caps all decompressed output of one document,
	// included documents counted; 0 means DefaultMaxDecompressed.
	MaxDecompressed int64
	// MaxParts caps the number of parts; 0 means DefaultMaxParts.
	MaxParts int

	// LaunchIndex is the instance's ami-launch-index; when set, parts
	// whose Launch-Index differs are dropped as cloud-init does.
	LaunchIndex *int

	// InstanceData is what jinja templates see, shaped like cloud-init's
	// instance-data.json: {"v1": {...}, "ds": {"meta_data": {...}}}. nil
	// means templates are not rendered (reported as warnings).
	InstanceData map[string]any

	// Lookup, when set, is called once the parts are known, and only if
	// one of them needs what is missing: the launch index (a part names
	// one and LaunchIndex is nil) or the instance data (a part is a jinja
	// template and InstanceData is nil). It sets those fields of o; its
	// error fails Parse as it is. A caller whose instance data is costly
	// (a walk of meta-data) pays only for user-data that uses it.
	Lookup func(ctx context.Context, o *Options, launchIndex, instanceData bool) error

	// Fetcher fetches #include URLs; nil means an HTTPFetcher with its
	// default limits. NoInclude turns fetching off (includes become
	// warnings), e.g. for an offline inspection.
	Fetcher   Fetcher
	NoInclude bool
	// IncludeOnceDir is the per-instance cache for #include-once URLs
	// (cloud-init's <instance>/data/urlcache). Empty means no cache: such
	// URLs are fetched every time.
	IncludeOnceDir string
	// MaxIncludes caps URL fetches per document (nested includes
	// counted); 0 means 32.
	MaxIncludes int
}

func (o *Options) maxSize() int64 {
	if o.MaxSize > 0 {
		return o.MaxSize
	}
	return DefaultMaxSize
}

func (o *Options) maxDecompressed() int64 {
	if o.MaxDecompressed > 0 {
		return o.MaxDecompressed
	}
	return DefaultMaxDecompressed
}

func (o *Options) maxParts() int {
	if o.MaxParts > 0 {
		return o.MaxParts
	}
	return DefaultMaxParts
}

func (o *Options) maxIncludes() int {
	if o.MaxIncludes > 0 {
		return o.MaxIncludes
	}
	return 32
}
