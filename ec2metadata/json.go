package ec2metadata

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"unicode/utf8"
)

// writeJSON renders results as one JSON object mapping each label to its
// value, in command-line order (a label asked for twice appears once):
//
//   - a metric is its exact value as a string (no newline trimming), or
//     {"base64": "..."} when the value is not UTF-8 (gzip'd user-data), or
//     null when absent;
//   - block-device-mapping and tags are objects of name → value, or null;
//   - public-keys is a list of {"index", "name", "format", "key"}, or null.
//
// --quiet has no effect on it.
func writeJSON(results []*result) ([]byte, error) {
	var b bytes.Buffer
	seen := map[string]bool{}
	b.WriteByte('{')
	for _, r := range results {
		if r.kind == helpStep || r.kind == usageStep || seen[r.label] {
			continue
		}
		seen[r.label] = true
		if len(seen) > 1 {
			b.WriteByte(',')
		}
		b.Write(jsonString(r.label))
		b.WriteByte(':')
		switch r.kind {
		case metricStep:
			b.Write(jsonValue(r.v))
		case blockDevicesStep, tagsStep:
			if !r.v.found() {
				b.WriteString("null")
				continue
			}
			b.WriteByte('{')
			names := map[string]bool{}
			for _, e := range r.entries {
				if names[e.name] {
					continue
				}
				if len(names) > 0 {
					b.WriteByte(',')
				}
				names[e.name] = true
				b.Write(jsonString(e.name))
				b.WriteByte(':')
				b.Write(jsonValue(e.v))
			}
			b.WriteByte('}')
		case publicKeysStep:
			if !r.v.found() {
				b.WriteString("null")
				continue
			}
			b.WriteByte('[')
			for i, k := range r.keys {
				if i > 0 {
					b.WriteByte(',')
				}
				b.WriteString(`{"index":`)
				b.Write(jsonString(k.index))
				b.WriteString(`,"name":`)
				b.Write(jsonString(k.name))
				b.WriteString(`,"format":`)
				if k.format.found() {
					b.Write(jsonString(firstWord(shellValue(k.format.raw))))
				} else {
					b.WriteString("null")
				}
				b.WriteString(`,"key":`)
				b.Write(jsonValue(k.key))
				b.WriteByte('}')
			}
			b.WriteByte(']')
		}
	}
	b.WriteByte('}')
	var out bytes.Buffer
	if err := json.Indent(&out, b.Bytes(), "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// jsonValue encodes a fetched value exactly: a string when it is UTF-8,
// {"base64": ...} when it is not, null when it is absent or failed.
func jsonValue(f fetched) []byte {
	if !f.found() {
		return []byte("null")
	}
	if utf8.Valid(f.raw) {
		return jsonString(string(f.raw))
	}
	return append(append([]byte(`{"base64":`), jsonString(base64.StdEncoding.EncodeToString(f.raw))...), '}')
}

// jsonString encodes s without the HTML escaping of json.Marshal, so that
// XML or "<" in values stays readable.
func jsonString(s string) []byte {
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	e.Encode(s) // a string always encodes
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}
