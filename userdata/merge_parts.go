package userdata

import "sync"

// mergeCloudConfig merges the cloud-config parts (and jinja templates
// rendering to cloud-config) in order, as cloud-init's
// CloudConfigPartHandler does: each part's mergers come from its
// merge_how/merge_type key, then its Merge-Type header, else
// DefaultMergeHow. A part that fails to parse or merge is skipped with a
// warning and leaves the result untouched.
func (p *processor) mergeCloudConfig(parts []*Part) map[string]any {
	buf := map[string]any{}
	for _, part := range parts {
		switch part.ContentType {
		case TypeCloudConfig:
		case TypeJinja:
			if part.RenderedType != TypeCloudConfig { // rendered by Parse
				continue
			}
		case TypeCloudConfigJSONP:
			p.warnf("%s: #cloud-config-jsonp (JSON patch) parts are not supported; skipped", part.Filename)
			continue
		case TypePartHandler:
			p.warnf("%s: #part-handler parts are Python code, which flint cannot run; skipped", part.Filename)
			continue
		default:
			continue
		}
		v, err := part.cloudConfig()
		if err != nil {
			p.warnf("%s: cloud-config is not valid YAML: %v; part skipped", part.Filename, err)
			continue
		}
		doc, ok := v.(map[string]any)
		if !ok {
			if v == nil {
				p.warnf("%s: cloud-config is empty; part skipped", part.Filename)
			} else {
				p.warnf("%s: cloud-config is %s, not a mapping; part skipped", part.Filename, typeName(v))
			}
			continue
		}
		// merge_how is consumed by merging, not merged.
		doc = shallowCopy(doc)
		how, err := popMergeHow(doc)
		if err != nil {
			p.warnf("%s: merge_how: %v; part skipped", part.Filename, err)
			continue
		}
		if h := mergeHeader(part); h != "" {
			hh, err := ParseMergeHow(h)
			if err != nil {
				p.warnf("%s: Merge-Type header: %v; part skipped", part.Filename, err)
				continue
			}
			how = append(how, hh...)
		}
		if len(how) == 0 {
			how = defaultMergeHow()
		}
		c, err := how.compile()
		if err != nil {
			p.warnf("%s: %v; part skipped", part.Filename, err)
			continue
		}
		out, err := c.merge(buf, doc)
		if err != nil {
			p.warnf("%s: merging with %s: %v; part skipped", part.Filename, how, err)
			continue
		}
		if m, ok := out.(map[string]any); ok {
			buf = m
		}
	}
	return buf
}

// defaultMergeHow is parsed on first use, not at start-up: every flint
// command pays for package initialisation, and most never merge.
var defaultMergeHow = sync.OnceValue(func() MergeHow {
	how, _ := ParseMergeHow(DefaultMergeHow)
	return how
})

func shallowCopy(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func popMergeHow(doc map[string]any) (MergeHow, error) {
	raw, present := doc["merge_how"]
	delete(doc, "merge_how")
	if !present || raw == nil {
		raw = doc["merge_type"]
		delete(doc, "merge_type")
	}
	return mergeHowFromValue(raw)
}

// mergeHeader reads Merge-Type or X-Merge-Type; cloud-init finds them only
// when spelled exactly so, then takes the first value of any spelling.
func mergeHeader(part *Part) string {
	for _, name := range []string{"Merge-Type", "X-Merge-Type"} {
		for _, h := range part.Headers {
			if h.Name == name {
				v, _ := part.Header(name)
				if v != "" {
					return v
				}
				break
			}
		}
	}
	return ""
}

// render fills a jinja part's Rendered/RenderedType, or warns why it
// cannot (the part is then skipped).
func (p *processor) render(part *Part) {
	if p.opts.InstanceData == nil {
		p.warnf("%s: jinja template not rendered: no instance data available; part skipped", part.Filename)
		return
	}
	out, err := renderJinja(part.Payload, p.opts.InstanceData)
	if err != nil {
		terr := &TemplateError{Part: part.Filename, Err: err}
		p.templateErrors = append(p.templateErrors, terr)
		p.warnf("%v; part skipped", terr)
		return
	}
	if len(out) == 0 {
		return
	}
	t := TypeFromStartsWith(out)
	if t == "" {
		p.warnf("%s: rendered jinja template has no recognised first line; part skipped", part.Filename)
		return
	}
	switch t {
	case TypeCloudConfig, TypeCloudConfigJSONP, TypeShellScript:
	default:
		p.warnf("%s: rendered jinja template is %s; only cloud-config and #! scripts are processed from templates; part skipped", part.Filename, t)
		return
	}
	part.Rendered, part.RenderedType = out, t
}
