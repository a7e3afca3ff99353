package userdata

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/klauspost/compress/gzip"
)

// Default limits. IMDS caps raw user-data at 16 KiB, but other sources
// (files, `flint userdata inspect`) may be larger, so the raw cap is looser.
const (
	DefaultMaxSize         = 1 << 20  // raw (possibly compressed) bytes
	DefaultMaxDecompressed = 16 << 20 // bytes after all decompression, in total
	DefaultMaxParts        = 1000
)

// ErrTooLarge is wrapped by errors about a size cap being exceeded.
var ErrTooLarge = errors.New("user-data too large")

var gzipMagic = []byte{0x1f, 0x8b}

// gunzip decompresses data, charging the output against *budget so that
// a gzip bomb anywhere in the document stops at the cap.
func gunzip(data []byte, budget *int64) ([]byte, error) {
	if len(data) == 0 {
		// Python's gzip reads an empty stream as empty content.
		return []byte{}, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	var out bytes.Buffer
	out.Grow(int(min(int64(len(data))*4, *budget+1)))
	n, err := io.Copy(&out, io.LimitReader(zr, *budget+1))
	if err != nil {
		return nil, err
	}
	if n > *budget {
		return nil, fmt.Errorf("decompressed user-data exceeds %d bytes (gzip bomb?): %w", *budget, ErrTooLarge)
	}
	*budget -= n
	return out.Bytes(), nil
}

// decodeTransfer undoes a part's Content-Transfer-Encoding the way
// Python's email.message.get_payload(decode=True) does; any other
// encoding (7bit, 8bit, binary, none) leaves the body as it is.
// cte is compared without trimming, like Python does.
func decodeTransfer(body []byte, cte string) []byte {
	switch asciiLower(cte) {
	case "base64":
		return decodeBase64Lenient(rawUnicodeEscape(body))
	case "quoted-printable":
		return decodeQuotedPrintable(rawUnicodeEscape(body))
	}
	return body
}

// rawUnicodeEscape turns non-ASCII text into the bytes Python's email
// package decodes from (it encodes the str payload with
// "raw-unicode-escape"), so that stray non-ASCII characters in a base64
// or quoted-printable body decode exactly as in cloud-init. A body with
// only ASCII, or that is not UTF-8, is returned unchanged.
func rawUnicodeEscape(body []byte) []byte {
	ascii := true
	for _, c := range body {
		if c >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii || !utf8.Valid(body) {
		return body
	}
	out := make([]byte, 0, len(body)+16)
	for _, r := range string(body) {
		switch {
		case r < 0x100:
			out = append(out, byte(r))
		case r < 0x10000:
			out = fmt.Appendf(out, "\\u%04x", r)
		default:
			out = fmt.Appendf(out, "\\U%08x", r)
		}
	}
	return out
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 32
		}
	}
	return string(b)
}

func isB64(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/'
}

// decodeBase64Lenient follows binascii.a2b_base64 in its non-strict mode
// (which the email package falls back to): characters outside the
// alphabet are skipped, a completed padding ends the data, and a missing
// padding is forgiven. Undecodable input is returned as it came.
func decodeBase64Lenient(body []byte) []byte {
	buf := make([]byte, 0, len(body))
	pads := 0
lines:
	for _, c := range body {
		switch {
		case isB64(c):
			buf = append(buf, c)
		case c == '=':
			if q := len(buf) % 4; q >= 2 {
				pads++
				if q+pads >= 4 {
					break lines
				}
			}
		}
	}
	if len(buf)%4 == 1 {
		// Python returns the (line-joined) input undecoded.
		return bytes.Join(bytes.FieldsFunc(body, func(r rune) bool { return r == '\n' || r == '\r' }), nil)
	}
	out := make([]byte, base64.RawStdEncoding.DecodedLen(len(buf)))
	n, err := base64.RawStdEncoding.Decode(out, buf)
	if err != nil {
		return body
	}
	return out[:n]
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// decodeQuotedPrintable is quopri.decodestring: soft line breaks vanish,
// =XX becomes a byte, and malformed escapes are kept literally.
func decodeQuotedPrintable(body []byte) []byte {
	out := make([]byte, 0, len(body))
	for i := 0; i < len(body); i++ {
		c := body[i]
		if c != '=' {
			out = append(out, c)
			continue
		}
		if i+1 < len(body) && body[i+1] == '\n' {
			i++
			continue
		}
		if i+2 < len(body) && body[i+1] == '\r' && body[i+2] == '\n' {
			i += 2
			continue
		}
		if i+2 < len(body) {
			h, ok1 := unhex(body[i+1])
			l, ok2 := unhex(body[i+2])
			if ok1 && ok2 {
				out = append(out, h<<4|l)
				i += 2
				continue
			}
		}
		if i+1 == len(body) {
			// A trailing "=" is a soft break at the end of input.
			continue
		}
		out = append(out, c)
	}
	return out
}
