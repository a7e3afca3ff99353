package userdata

import (
	"context"
	"fmt"
)

// UserData is parsed user-data: its parts in cloud-init's order and the
// merged cloud-config, generic and typed.
type UserData struct {
	// Parts are all parts after launch-index filtering, includes and
	// archives expanded; jinja parts are rendered when instance data was
	// given (see Part.Type and Part.Content).
	Parts []*Part
	// Config is the merged cloud-config as generic values (maps, lists,
	// strings, int64, float64, bool, nil); never nil.
	Config map[string]any
	// CloudConfig is Config decoded into the keys flint handles.
	CloudConfig *CloudConfig
	// Warnings are problems that did not stop parsing (skipped parts,
	// unknown keys, values of the wrong type); they never quote content.
	Warnings []string
	// TemplateErrors are the jinja parts that failed to render (each also
	// in Warnings). cloud-init drops such a part and goes on; a caller
	// reporting the run's health should count it as degraded.
	TemplateErrors []*TemplateError
}

// Parse decodes raw user-data the way cloud-init 22.4 does. It fails only
// where cloud-init fails the whole user-data (an #include that cannot be
// fetched, a gzip part that does not decompress) or where a cap is
// exceeded (ErrTooLarge); everything else becomes a warning.
func Parse(ctx context.Context, raw []byte, opts Options) (*UserData, error) {
	if int64(len(raw)) > opts.maxSize() {
		return nil, fmt.Errorf("user-data is %d bytes, more than the %d allowed: %w", len(raw), opts.maxSize(), ErrTooLarge)
	}
	p := &processor{ctx: ctx, opts: &opts, budget: opts.maxDecompressed()}
	if err := p.process(raw); err != nil {
		return nil, fmt.Errorf("user-data: %w", err)
	}
	if opts.Lookup != nil {
		if li, id := opts.missing(p.parts); li || id {
			if err := opts.Lookup(ctx, &opts, li, id); err != nil {
				return nil, err
			}
		}
	}
	parts := filterLaunchIndex(p.parts, opts.LaunchIndex)
	for _, part := range parts {
		if part.ContentType == TypeJinja {
			p.render(part) // once: a template that fails warns once
		}
	}
	cfg := p.mergeCloudConfig(parts)
	cc, warns := DecodeCloudConfig(cfg)
	p.warnings = append(p.warnings, warns...)
	for _, part := range parts {
		if len(part.Payload) == 0 {
			continue
		}
		switch part.ContentType {
		case TypeShellScript, TypeShellPerBoot, TypeShellPerInstance, TypeShellPerOnce, TypeBoothook,
			TypeCloudConfig, TypeCloudConfigJSONP, TypeJinja, TypePartHandler:
		case TypeNotMultipart:
			p.warnf("%s: user-data has no recognised first line (#!, #cloud-config, ...); ignored", part.Filename)
		default:
			p.warnf("%s: content type %s is not handled; ignored", part.Filename, part.ContentType)
		}
	}
	return &UserData{Parts: parts, Config: cfg, CloudConfig: cc, Warnings: dedupe(p.warnings), TemplateErrors: p.templateErrors}, nil
}

// missing reports whether parts name a launch index, or hold a jinja
// template, that o gives nothing for.
func (o *Options) missing(parts []*Part) (launchIndex, instanceData bool) {
	for _, p := range parts {
		launchIndex = launchIndex || p.LaunchIndex != nil && o.LaunchIndex == nil
		instanceData = instanceData || p.ContentType == TypeJinja && o.InstanceData == nil
	}
	return launchIndex, instanceData
}

func dedupe(ss []string) []string {
	seen := map[string]bool{}
	out := ss[:0]
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
