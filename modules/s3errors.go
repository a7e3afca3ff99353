package modules

import (
	"encoding/xml"
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
	var doc struct {
		Code string `xml:"Code"`
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<10))
	if xml.Unmarshal(body, &doc) != nil || doc.Code == "" {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	if hint, ok := s3Hints[doc.Code]; ok {
		return fmt.Errorf("HTTP %d %s: %s", resp.StatusCode, doc.Code, hint)
	}
	return fmt.Errorf("HTTP %d %s", resp.StatusCode, doc.Code)
}
