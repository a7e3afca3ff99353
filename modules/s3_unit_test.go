package modules

import "testing"

func TestS3ErrorCodeIsReadFromAnErrorDocumentOnly(t *testing.T) {
	for body, want := range map[string]string{
		`<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code><Message>x</Message></Error>`: "NoSuchKey",
		"<Error>\n  <Code>SlowDown</Code>\n</Error>":                                                      "SlowDown",
		`<Error><Code>bad code!</Code></Error>`:                                                           "",
		`<ListBucketResult><Code>NoSuchKey</Code></ListBucketResult>`:                                     "",
		`not xml`:       "",
		`<Error><Code>`: "",
	} {
		if got := s3ErrorCode([]byte(body)); got != want {
			t.Errorf("s3ErrorCode(%q) = %q, want %q", body, got, want)
		}
	}
}
