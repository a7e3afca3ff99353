package userdata

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// MaxWriteFileSize caps a decoded write_files content.
const MaxWriteFileSize = 64 << 20

// canonicalEncoding maps cloud-init's write_files encoding names to
// "", "b64", "gz" or "gz+b64".
func canonicalEncoding(enc string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(enc)) {
	case "", "text/plain":
		return "", nil
	case "b64", "base64":
		return "b64", nil
	case "gz", "gzip":
		return "gz", nil
	case "gz+base64", "gzip+base64", "gz+b64", "gzip+b64":
		return "gz+b64", nil
	}
	return "", fmt.Errorf("unknown encoding %q (want b64, gzip, gz+b64 or text/plain)", enc)
}

// DecodeWriteFileContent undoes a write_files encoding: b64/base64,
// gz/gzip, gz+b64 (and spellings cloud-init accepts), or none.
// Unknown encodings are an error rather than written verbatim.
func DecodeWriteFileContent(encoding string, content []byte) ([]byte, error) {
	enc, err := canonicalEncoding(encoding)
	if err != nil {
		return nil, err
	}
	if enc == "b64" || enc == "gz+b64" {
		clean := bytes.Map(func(r rune) rune {
			if r == ' ' || r == '\n' || r == '\r' || r == '\t' {
				return -1
			}
			return r
		}, content)
		out := make([]byte, base64.StdEncoding.DecodedLen(len(clean)))
		n, err := base64.StdEncoding.Decode(out, clean)
		if err != nil {
			return nil, fmt.Errorf("write_files content: bad base64: %w", err)
		}
		content = out[:n]
	}
	if enc == "gz" || enc == "gz+b64" {
		budget := int64(MaxWriteFileSize)
		if content, err = gunzip(content, &budget); errors.Is(err, ErrTooLarge) {
			return nil, fmt.Errorf("write_files content decompresses to more than %d bytes: %w", MaxWriteFileSize, ErrTooLarge)
		} else if err != nil {
			return nil, fmt.Errorf("write_files content: bad gzip: %w", err)
		}
	}
	return content, nil
}
