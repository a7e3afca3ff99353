package userdata

import (
	"bytes"
	"strings"
)

// This file parses MIME the way Python's email.feedparser (compat32) does,
// because cloud-init's part boundaries, header values and payloads are
// whatever that parser produces, defects included: a missing header/body
// separator, a missing close boundary, boundaries with trailing blanks and
// bare-CR line endings are all accepted.

// maxMIMEDepth bounds nested multiparts; cloud-init has no limit, but a
// document that nests this deep is an attack, not user-data.
const maxMIMEDepth = 32

type header struct{ name, value string }

// message is one parsed MIME entity: a leaf with a body, or a multipart
// container with parts.
type message struct {
	headers   []header
	body      []byte // leaf only, still Content-Transfer-Encoded
	parts     []*message
	multipart bool // parsed as a container (has a usable boundary)
}

func (m *message) get(name string) (string, bool) {
	for _, h := range m.headers {
		if strings.EqualFold(h.name, name) {
			return h.value, true
		}
	}
	return "", false
}

// contentType returns the lower-cased type/subtype, "text/plain" when the
// header is absent or malformed, as email.message.get_content_type does.
func (m *message) contentType() string {
	v, ok := m.get("Content-Type")
	if !ok {
		return "text/plain"
	}
	return mediaType(v)
}

func mediaType(v string) string {
	ct, _, _ := strings.Cut(v, ";")
	ct = strings.ToLower(pyStrip(ct))
	if strings.Count(ct, "/") != 1 {
		return "text/plain"
	}
	return ct
}

func mainType(ct string) string {
	mt, _, _ := strings.Cut(ct, "/")
	return mt
}

// param returns a parameter of the named header, unquoted, with RFC 2231
// continuations and encodings applied.
func (m *message) param(hdr, name string) (string, bool) {
	v, ok := m.get(hdr)
	if !ok {
		return "", false
	}
	params := parseParams(v)
	if len(params) == 0 {
		return "", false
	}
	for _, p := range params[1:] {
		if strings.EqualFold(p.name, name) {
			return unquote(p.value), true
		}
	}
	// RFC 2231: name*, name*0, name*0*, name*1 ...
	type seg struct {
		n       int
		s       string
		encoded bool
	}
	var segs []seg
	for _, p := range params[1:] {
		pn := strings.ToLower(p.name)
		prefix := strings.ToLower(name) + "*"
		if !strings.HasPrefix(pn, prefix) {
			continue
		}
		rest := pn[len(prefix):]
		encoded := strings.HasSuffix(pn, "*")
		num := 0
		if rest != "" {
			digits := strings.TrimSuffix(rest, "*")
			if digits == "" {
				num = 0
			} else {
				for _, c := range digits {
					if c < '0' || c > '9' {
						num = -1
						break
					}
					num = num*10 + int(c-'0')
				}
				if num < 0 {
					continue
				}
			}
		}
		segs = append(segs, seg{num, unquote(p.value), encoded})
	}
	if len(segs) == 0 {
		return "", false
	}
	for i := 1; i < len(segs); i++ {
		for j := i; j > 0 && segs[j].n < segs[j-1].n; j-- {
			segs[j], segs[j-1] = segs[j-1], segs[j]
		}
	}
	var b strings.Builder
	extended := false
	for _, s := range segs {
		if s.encoded {
			s.s = percentDecodeLenient(s.s)
			extended = true
		}
		b.WriteString(s.s)
	}
	out := b.String()
	if !extended {
		return out, true
	}
	// charset'language'value, decoded from the charset (us-ascii when
	// absent), unknown bytes becoming U+FFFD as Python's errors="replace".
	charset := ""
	if parts := strings.SplitN(out, "'", 3); len(parts) == 3 {
		charset, out = strings.ToLower(parts[0]), parts[2]
	}
	switch charset {
	case "utf-8", "utf8":
		return strings.ToValidUTF8(out, "\uFFFD"), true
	case "iso-8859-1", "latin-1", "latin1":
		r := make([]rune, 0, len(out))
		for i := 0; i < len(out); i++ {
			r = append(r, rune(out[i]))
		}
		return string(r), true
	}
	var a strings.Builder
	for i := 0; i < len(out); i++ {
		if out[i] < 0x80 {
			a.WriteByte(out[i])
		} else {
			a.WriteRune('\uFFFD')
		}
	}
	return a.String(), true
}

// percentDecodeLenient is urllib.parse.unquote to latin-1 octets: valid
// %XX escapes become bytes, anything else is kept.
func percentDecodeLenient(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			h, ok1 := unhex(s[i+1])
			l, ok2 := unhex(s[i+2])
			if ok1 && ok2 {
				b = append(b, h<<4|l)
				i += 2
				continue
			}
		}
		b = append(b, s[i])
	}
	return string(b)
}

type param struct{ name, value string }

// parseParams splits a header value on semicolons outside quotes, like
// email.message._parseparam; the first entry is the value itself.
func parseParams(s string) []param {
	var out []param
	s = ";" + s
	for strings.HasPrefix(s, ";") {
		s = s[1:]
		end := strings.IndexByte(s, ';')
		for end > 0 && (strings.Count(s[:end], `"`)-strings.Count(s[:end], `\"`))%2 != 0 {
			next := strings.IndexByte(s[end+1:], ';')
			if next < 0 {
				end = -1
				break
			}
			end = end + 1 + next
		}
		if end < 0 {
			end = len(s)
		}
		f := s[:end]
		var p param
		if i := strings.IndexByte(f, '='); i >= 0 {
			p = param{pyStrip(strings.ToLower(pyStrip(f[:i]))), pyStrip(f[i+1:])}
		} else {
			p = param{pyStrip(f), ""}
		}
		out = append(out, p)
		s = s[end:]
	}
	return out
}

func unquote(s string) string {
	if len(s) > 1 {
		if s[0] == '"' && s[len(s)-1] == '"' {
			return strings.ReplaceAll(strings.ReplaceAll(s[1:len(s)-1], `\\`, `\`), `\"`, `"`)
		}
		if s[0] == '<' && s[len(s)-1] == '>' {
			return s[1 : len(s)-1]
		}
	}
	return s
}

// filename is email.message.get_filename: Content-Disposition filename,
// else Content-Type name, stripped.
func (m *message) filename() string {
	f, ok := m.param("Content-Disposition", "filename")
	if !ok {
		f, ok = m.param("Content-Type", "name")
	}
	if !ok {
		return ""
	}
	return pyStrip(f)
}

// pyIsSpace is Python's str.isspace for the characters that matter here
// (ASCII whitespace plus the information separators Python counts).
func pyIsSpace(r rune) bool {
	switch r {
	case ' ', '\t', '\n', '\r', '\v', '\f', 0x1c, 0x1d, 0x1e, 0x1f, 0x85, 0xa0, 0x1680, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000:
		return true
	}
	return r >= 0x2000 && r <= 0x200a
}

func pyStrip(s string) string { return strings.TrimFunc(s, pyIsSpace) }

// lineReader yields lines with their endings (\r\n, \r or \n) and stops at
// a line any pushed matcher accepts, as feedparser's BufferedSubFile does
// so that outer boundaries end inner parts.
type lineReader struct {
	data    []byte
	pos     int
	matches []func(line []byte) bool
}

func (r *lineReader) next() ([]byte, bool) {
	if r.pos >= len(r.data) {
		return nil, false
	}
	rest := r.data[r.pos:]
	n := len(rest)
	if i := bytes.IndexAny(rest, "\r\n"); i >= 0 {
		n = i + 1
		if rest[i] == '\r' && i+1 < len(rest) && rest[i+1] == '\n' {
			n = i + 2
		}
	}
	line := rest[:n]
	for i := len(r.matches) - 1; i >= 0; i-- {
		if r.matches[i](line) {
			return nil, false
		}
	}
	r.pos += n
	return line, true
}

func (r *lineReader) unread(line []byte) { r.pos -= len(line) }

func isHeaderLine(line []byte) bool {
	if bytes.HasPrefix(line, []byte("From ")) {
		return true
	}
	if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
		return true
	}
	for _, c := range line {
		if c == ':' {
			return true
		}
		if c < 0x21 || c > 0x7e {
			return false
		}
	}
	return false
}

func isNewline(line []byte) bool {
	return len(line) > 0 && (line[0] == '\n' || line[0] == '\r')
}

func trimEOL(b []byte) []byte {
	switch {
	case bytes.HasSuffix(b, []byte("\r\n")):
		return b[:len(b)-2]
	case bytes.HasSuffix(b, []byte("\n")), bytes.HasSuffix(b, []byte("\r")):
		return b[:len(b)-1]
	}
	return b
}

// parseMessage parses a whole MIME document.
func parseMessage(data []byte) *message {
	r := &lineReader{data: data}
	return parseEntity(r, 0)
}

func parseEntity(r *lineReader, depth int) *message {
	m := &message{}
	var hdrLines [][]byte
	for {
		line, ok := r.next()
		if !ok {
			break
		}
		if !isHeaderLine(line) {
			if !isNewline(line) {
				r.unread(line)
			}
			break
		}
		hdrLines = append(hdrLines, line)
	}
	m.headers = parseHeaders(hdrLines)
	ct := m.contentType()
	if mainType(ct) == "multipart" && depth < maxMIMEDepth {
		if b, ok := m.param("Content-Type", "boundary"); ok {
			b = strings.TrimRightFunc(b, pyIsSpace)
			parseMultipart(m, r, b, depth)
			return m
		}
	}
	m.body = readRest(r)
	return m
}

func readRest(r *lineReader) []byte {
	start := r.pos
	for {
		if _, ok := r.next(); !ok {
			break
		}
	}
	return r.data[start:r.pos]
}

func parseHeaders(lines [][]byte) []header {
	var out []header
	var cur []string
	flush := func() {
		if cur == nil {
			return
		}
		name, value, _ := strings.Cut(cur[0], ":")
		value = strings.TrimLeft(value, " \t") + strings.Join(cur[1:], "")
		out = append(out, header{name, strings.TrimRight(value, "\r\n")})
		cur = nil
	}
	for _, l := range lines {
		line := string(l)
		if line[0] == ' ' || line[0] == '\t' {
			if cur != nil {
				cur = append(cur, line)
			}
			continue
		}
		flush()
		if strings.HasPrefix(line, "From ") {
			// An envelope line: the first is the unix-from, a misplaced one
			// is a defect Python ignores (a last one it would return to
			// the body; flint drops it).
			continue
		}
		idx := strings.IndexByte(line, ':')
		if idx <= 0 {
			continue
		}
		cur = []string{line}
	}
	flush()
	return out
}

func boundaryMatcher(boundary string) func([]byte) bool {
	sep := []byte("--" + boundary)
	return func(line []byte) bool {
		if !bytes.HasPrefix(line, sep) {
			return false
		}
		rest := line[len(sep):]
		rest = bytes.TrimPrefix(rest, []byte("--"))
		rest = bytes.TrimLeft(rest, " \t")
		switch string(rest) {
		case "", "\r\n", "\r", "\n":
			return true
		}
		return false
	}
}

func isCloseBoundary(line []byte, boundary string) bool {
	sep := "--" + boundary + "--"
	return bytes.HasPrefix(line, []byte(sep))
}

func parseMultipart(m *message, r *lineReader, boundary string, depth int) {
	match := boundaryMatcher(boundary)
	preamble := true
	m.multipart = true
	for {
		line, ok := r.next()
		if !ok {
			break
		}
		if !match(line) {
			// Preamble text (or anything the inner parse left behind).
			continue
		}
		if isCloseBoundary(line, boundary) {
			// Everything after the close boundary is epilogue.
			readRest(r)
			return
		}
		if preamble {
			preamble = false
		}
		// Consecutive boundary lines delimit no part.
		for {
			l, ok := r.next()
			if !ok {
				break
			}
			if !match(l) {
				r.unread(l)
				break
			}
		}
		r.matches = append(r.matches, match)
		part := parseEntity(r, depth+1)
		r.matches = r.matches[:len(r.matches)-1]
		// RFC 2046: the line ending before a boundary belongs to it.
		if !part.multipart {
			part.body = trimEOL(part.body)
		}
		m.parts = append(m.parts, part)
	}
	if preamble {
		// No start boundary: Python keeps the text as the payload of a
		// multipart that walks as an empty container.
		m.parts = nil
	}
}
