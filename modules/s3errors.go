package modules

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
)

// s3Hints say in a few words what an S3 error code means for whoever
// reads the boot log.
var s3Hints = map[string]string{
	"InvalidAccessKeyId": "the server does not know this access key; check the credentials (environment or instance role)",
	// versitygw's answer, with HTTP 404, to an unknown access key.
	"XAdminUserNotFound":    "the server does not know this access key; check the credentials (environment or instance role)",
	"SignatureDoesNotMatch": "the secret key does not match the access key; check the credentials (environment or instance role)",
	"AccessDenied":          "these credentials may not read the object; check the bucket policy and the role",
	"NoSuchKey":             "no such object in the bucket",
	"NoSuchBucket":          "no such bucket",
	"InvalidToken":          "the server refused the session token",
	"ExpiredToken":          "the session token has expired",
	"RequestTimeTooSkewed":  "this machine's clock is too far from the server's",
}

// statusError makes one line of a failed response: the status and, for an
// S3 error document, its code and what it means. The rest of the body is
// not repeated: it can be long and echoes the request.
func statusError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<10))
	code := s3ErrorCode(body)
	if code == "" {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	if hint, ok := s3Hints[code]; ok {
		return fmt.Errorf("HTTP %d %s: %s", resp.StatusCode, code, hint)
	}
	return fmt.Errorf("HTTP %d %s", resp.StatusCode, code)
}

// s3ErrorCode returns the <Code> of an S3 <Error> document, "" for any
// other body. S3 error codes are plain words, so no XML decoder is needed
// (encoding/xml's start-up tables would cost every command).
func s3ErrorCode(body []byte) string {
	if !bytes.Contains(body, []byte("<Error>")) {
		return ""
	}
	_, rest, ok := bytes.Cut(body, []byte("<Code>"))
	if !ok {
		return ""
	}
	code, _, ok := bytes.Cut(rest, []byte("</Code>"))
	if !ok || len(code) == 0 || len(code) > 64 {
		return ""
	}
	for _, c := range code {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_') {
			return ""
		}
	}
	return string(code)
}
