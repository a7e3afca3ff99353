package userdata

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Content types cloud-init assigns to parts.
const (
	TypeNotMultipart     = "text/x-not-multipart"
	TypePlain            = "text/plain"
	TypeShellScript      = "text/x-shellscript"
	TypeShellPerBoot     = "text/x-shellscript-per-boot"
	TypeShellPerInstance = "text/x-shellscript-per-instance"
	TypeShellPerOnce     = "text/x-shellscript-per-once"
	TypeCloudConfig      = "text/cloud-config"
	TypeCloudConfigJSONP = "text/cloud-config-jsonp"
	TypeBoothook         = "text/cloud-boothook"
	TypeArchive          = "text/cloud-config-archive"
	TypeInclude          = "text/x-include-url"
	TypeIncludeOnce      = "text/x-include-once-url"
	TypePartHandler      = "text/part-handler"
	TypeJinja            = "text/jinja2"
)

// startLines maps a payload's first characters to its type, longest
// prefix first (cloud-init's INCLUSION_SRCH order).
var startLines = []struct{ prefix, ctype string }{
	{"text/x-shellscript-per-instance", TypeShellPerInstance},
	{"text/x-shellscript-per-boot", TypeShellPerBoot},
	{"text/x-shellscript-per-once", TypeShellPerOnce},
	{"#cloud-config-archive", TypeArchive},
	{"#cloud-config-jsonp", TypeCloudConfigJSONP},
	{"## template: jinja", TypeJinja},
	{"#cloud-boothook", TypeBoothook},
	{"#include-once", TypeIncludeOnce},
	{"#cloud-config", TypeCloudConfig},
	{"#part-handler", TypePartHandler},
	{"#include", TypeInclude},
	{"#!", TypeShellScript},
}

// TypeFromStartsWith returns the content type a payload announces by its
// first characters (case-insensitive, after leading whitespace), or "".
func TypeFromStartsWith(payload []byte) string {
	p := payload
	for len(p) > 0 {
		r, n := utf8.DecodeRune(p)
		if r == utf8.RuneError && n <= 1 || !pyIsSpace(r) {
			break
		}
		p = p[n:]
	}
	for _, s := range startLines {
		if len(p) >= len(s.prefix) && strings.EqualFold(string(p[:len(s.prefix)]), s.prefix) {
			return s.ctype
		}
	}
	return ""
}

var decompTypes = map[string]bool{
	"application/gzip":              true,
	"application/gzip-compressed":   true,
	"application/gzipped":           true,
	"application/x-compress":        true,
	"application/x-compressed":      true,
	"application/x-gunzip":          true,
	"application/x-gzip":            true,
	"application/x-gzip-compressed": true,
}

// Frequency says how often a script part runs, in cloud-init's terms.
type Frequency string

// Script frequencies.
const (
	PerBoot     Frequency = "per-boot"
	PerInstance Frequency = "per-instance"
	PerOnce     Frequency = "once"
)

// Header is one MIME header of a part, as received.
type Header struct {
	Name, Value string
}

// Part is one user-data part after decoding, in cloud-init's order.
type Part struct {
	// ContentType is the type cloud-init records for the part (the MIME
	// type, or the one its first line announces), e.g. "text/cloud-config".
	ContentType string
	// Filename is the MIME filename, else "part-NNN" as cloud-init numbers
	// parts (from 001, across nesting, includes and archives).
	Filename string
	// Payload is the decoded content (transfer encoding and gzip undone).
	Payload []byte
	// Headers are the part's MIME headers (or archive entry keys).
	Headers []Header
	// LaunchIndex is the part's Launch-Index, if it has one.
	LaunchIndex *int

	// Rendered holds a jinja template part's output, and RenderedType the
	// type that output announces; both are empty for other parts.
	Rendered     []byte
	RenderedType string

	launchIndexRaw *string
	ccValue        any
	ccErr          error
	ccParsed       bool
}

// Type is the content type handlers should act on: the type a rendered
// template announces, else ContentType.
func (p *Part) Type() string {
	if p.RenderedType != "" {
		return p.RenderedType
	}
	return p.ContentType
}

// Content is what handlers should act on: a template's rendering, else
// the payload.
func (p *Part) Content() []byte {
	if p.RenderedType != "" {
		return p.Rendered
	}
	return p.Payload
}

// ScriptFrequency reports whether the part is a script to run and at what
// frequency: plain scripts run once per instance, boothooks every boot.
func (p *Part) ScriptFrequency() (Frequency, bool) {
	switch p.Type() {
	case TypeShellScript, TypeShellPerInstance:
		return PerInstance, true
	case TypeShellPerBoot, TypeBoothook:
		return PerBoot, true
	case TypeShellPerOnce:
		return PerOnce, true
	}
	return "", false
}

// Header returns the first value of the named header (case-insensitive).
func (p *Part) Header(name string) (string, bool) {
	for _, h := range p.Headers {
		if strings.EqualFold(h.Name, name) {
			return h.Value, true
		}
	}
	return "", false
}

func (p *Part) setHeader(name, value string) {
	out := p.Headers[:0:0]
	for _, h := range p.Headers {
		if !strings.EqualFold(h.Name, name) {
			out = append(out, h)
		}
	}
	p.Headers = append(out, Header{name, value})
}

// cloudConfig parses a cloud-config payload once.
func (p *Part) cloudConfig() (any, error) {
	if !p.ccParsed {
		p.ccParsed = true
		p.ccValue, p.ccErr = decodeYAML11(p.Content())
	}
	return p.ccValue, p.ccErr
}

type processor struct {
	ctx      context.Context
	opts     *Options
	parts    []*Part
	warnings []string
	// templateErrors are the jinja parts that failed to render.
	templateErrors []*TemplateError
	budget         int64 // decompressed bytes still allowed
	includes       int   // fetches done
	depth          int   // include nesting
	fetcher        Fetcher
}

func (p *processor) warnf(format string, args ...any) {
	p.warnings = append(p.warnings, fmt.Sprintf(format, args...))
}

// convert turns a blob into a message the way cloud-init's
// convert_string does: whole-document gzip is undone when it decodes, and
// the blob is MIME only if "mime-version:" appears in its first 4 KiB.
func (p *processor) convert(raw []byte) (*message, error) {
	data := raw
	if bytes.HasPrefix(raw, gzipMagic) {
		out, err := gunzip(raw, &p.budget)
		switch {
		case err == nil:
			data = out
		case errors.Is(err, ErrTooLarge):
			return nil, err
		default:
			// cloud-init silently keeps the undecodable bytes as they are.
			p.warnf("user-data looks gzip-compressed but does not decompress (%v); using it as is", err)
		}
	}
	head := data
	if len(head) > 4096 {
		head = head[:4096]
	}
	if bytes.Contains(bytes.ToLower(head), []byte("mime-version:")) {
		return parseMessage(data), nil
	}
	return &message{headers: []header{{"Content-Type", TypeNotMultipart}}, body: data}, nil
}

func (p *processor) process(raw []byte) error {
	msg, err := p.convert(raw)
	if err != nil {
		return err
	}
	return p.walk(msg)
}

func (p *processor) walk(m *message) error {
	if err := p.ctx.Err(); err != nil {
		return err
	}
	if mainType(m.contentType()) == "multipart" {
		for _, sub := range m.parts {
			if err := p.walk(sub); err != nil {
				return err
			}
		}
		return nil
	}
	return p.leaf(m)
}

func (p *processor) leaf(m *message) error {
	ctypeOrig := m.contentType()
	cte, _ := m.get("Content-Transfer-Encoding")
	payload := decodeTransfer(m.body, cte)
	headers := make([]Header, len(m.headers))
	for i, h := range m.headers {
		headers[i] = Header{h.name, h.value}
	}
	part := &Part{Filename: m.filename(), Headers: headers}
	if decompTypes[ctypeOrig] {
		out, err := gunzip(payload, &p.budget)
		if err == nil && !utf8.Valid(out) {
			err = fmt.Errorf("content is not UTF-8 text")
		}
		if err != nil {
			if errors.Is(err, ErrTooLarge) {
				return err
			}
			return fmt.Errorf("decompress user-data part of type %s (%d bytes): %w", ctypeOrig, len(payload), err)
		}
		payload = out
		// Only the filename and Launch-Index survive decompression.
		var kept []Header
		if v, ok := m.get("Launch-Index"); ok {
			kept = append(kept, Header{"Launch-Index", v})
		}
		part.Headers = kept
		ctypeOrig = TypePlain
	}
	ctype := ""
	switch ctypeOrig {
	case TypePlain, TypeNotMultipart, TypeShellScript:
		ctype = TypeFromStartsWith(payload)
	}
	if ctype == "" {
		ctype = ctypeOrig
	}
	if ctype != ctypeOrig || decompTypes[m.contentType()] {
		part.setHeader("Content-Type", ctype)
		if !decompTypes[m.contentType()] {
			// Replacing Content-Type drops its name= parameter, which
			// cloud-init would otherwise have used as the filename.
			part.Filename = ""
			if f, ok := m.param("Content-Disposition", "filename"); ok {
				part.Filename = pyStrip(f)
			}
		}
	}
	part.ContentType = ctype
	part.Payload = payload
	switch ctype {
	case TypeInclude, TypeIncludeOnce:
		return p.include(payload)
	case TypeArchive:
		return p.archive(payload)
	}
	return p.attach(part)
}

func (p *processor) attach(part *Part) error {
	if len(p.parts) >= p.opts.maxParts() {
		return fmt.Errorf("user-data has more than %d parts: %w", p.opts.maxParts(), ErrTooLarge)
	}
	if part.Filename == "" {
		part.Filename = fmt.Sprintf("part-%03d", len(p.parts)+1)
	}
	p.attachLaunchIndex(part)
	p.parts = append(p.parts, part)
	return nil
}

// attachLaunchIndex records the part's launch index: its Launch-Index
// header wins, else a cloud-config's own `launch-index` key.
func (p *processor) attachLaunchIndex(part *Part) {
	if v, ok := part.Header("Launch-Index"); ok {
		part.launchIndexRaw = &v
		if n, ok := pyInt(v); ok {
			part.LaunchIndex = &n
		}
		return
	}
	if part.ContentType != TypeCloudConfig {
		return
	}
	v, err := part.cloudConfig()
	if err != nil {
		return
	}
	m, ok := v.(map[string]any)
	if !ok {
		return
	}
	if n, ok := pyIntValue(m["launch-index"]); ok {
		s := strconv.Itoa(n)
		part.launchIndexRaw = &s
		part.LaunchIndex = &n
		part.Headers = append(part.Headers, Header{"Launch-Index", s})
	}
}

// pyInt is Python's int() on a string: surrounding whitespace and one
// sign allowed, underscores between digits allowed.
func pyInt(s string) (int, bool) {
	s = pyStrip(s)
	if strings.Contains(s, "__") || strings.HasPrefix(strings.TrimLeft(s, "+-"), "_") || strings.HasSuffix(s, "_") {
		return 0, false
	}
	n, err := strconv.Atoi(strings.ReplaceAll(s, "_", ""))
	if err != nil {
		return 0, false
	}
	return n, true
}

func pyIntValue(v any) (int, bool) {
	switch v := v.(type) {
	case int64:
		return int(v), true
	case bool:
		if v {
			return 1, true
		}
		return 0, true
	case float64:
		return int(v), true
	case string:
		return pyInt(v)
	}
	return 0, false
}

// filterLaunchIndex drops parts meant for another launch index; parts
// without one are kept, parts with an unreadable one are dropped.
func filterLaunchIndex(parts []*Part, want *int) []*Part {
	if want == nil {
		return parts
	}
	out := parts[:0:0]
	for _, p := range parts {
		if p.launchIndexRaw == nil || p.LaunchIndex != nil && *p.LaunchIndex == *want {
			out = append(out, p)
		}
	}
	return out
}

// archive expands a #cloud-config-archive: a YAML list of strings or of
// {content, type, filename, launch-index, other headers} mappings. Its
// entries are attached as they are, without decompression or fetching.
func (p *processor) archive(payload []byte) error {
	v, err := decodeYAML11(payload)
	if err != nil {
		p.warnf("cloud-config-archive is not valid YAML: %v", err)
		return nil
	}
	list, ok := v.([]any)
	if !ok {
		if v != nil {
			p.warnf("cloud-config-archive is not a list")
		}
		return nil
	}
	for i, e := range list {
		if s, ok := e.(string); ok {
			e = map[string]any{"content": s}
		}
		ent, ok := e.(map[string]any)
		if !ok {
			continue
		}
		content := ""
		if c, ok := ent["content"]; ok {
			s, ok := c.(string)
			if !ok {
				p.warnf("cloud-config-archive entry %d: content is not a string; skipped", i+1)
				continue
			}
			content = s
		}
		mtype := ""
		if t, ok := ent["type"]; ok && Truthy(t) {
			mtype = PyStr(t)
		}
		if mtype == "" {
			mtype = TypeFromStartsWith([]byte(content))
			if mtype == "" {
				mtype = TypeCloudConfig
			}
		}
		if !strings.Contains(mtype, "/") {
			p.warnf("cloud-config-archive entry %d: type %q is not of the form type/subtype; skipped", i+1, mtype)
			continue
		}
		ctype := mediaType(mtype)
		part := &Part{ContentType: ctype, Payload: []byte(content), Headers: []Header{{"Content-Type", ctype}}}
		if f, ok := ent["filename"]; ok {
			part.Filename = pyStrip(PyStr(f))
		}
		if li, ok := ent["launch-index"]; ok {
			part.Headers = append(part.Headers, Header{"Launch-Index", PyStr(li)})
		}
		for _, k := range sortedKeys(ent) {
			switch strings.ToLower(k) {
			case "content", "filename", "type", "launch-index", "content-disposition", "number-attachments", "content-type":
				continue
			}
			part.Headers = append(part.Headers, Header{k, PyStr(ent[k])})
		}
		if err := p.attach(part); err != nil {
			return err
		}
	}
	return nil
}

// ScriptContent returns a script part's content ready to be written and
// executed: a script saved with CRLF line endings (its #! line ends in
// "\r\n") gets LF endings, since the kernel would otherwise look for an
// interpreter named "bash\r". cloud-init runs such scripts unchanged and
// they fail; flint makes them work. Other content is returned as is.
func ScriptContent(b []byte) []byte {
	nl := bytes.IndexByte(b, '\n')
	if nl <= 0 || b[nl-1] != '\r' || !bytes.HasPrefix(bytes.TrimLeft(b, " \t\r\n"), []byte("#!")) {
		return b
	}
	return bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
}
