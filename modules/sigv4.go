package modules

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// AWS Signature Version 4 for the one request flint signs: an S3 GET of a
// bundle. It follows the SDK's signer (aws-sdk-go-v2 aws/signer/v4) with
// the S3 client's setting that the path is not escaped a second time;
// sigv4_test.go signs the same requests with the SDK and compares.

// unsignedHeaders are the headers proxies and transports may change or
// add after signing; the SDK leaves the same ones out.
var unsignedHeaders = map[string]bool{
	"Authorization":     true,
	"User-Agent":        true,
	"X-Amzn-Trace-Id":   true,
	"Expect":            true,
	"Transfer-Encoding": true,
}

// signV4 adds X-Amz-Date, X-Amz-Security-Token (with a session token) and
// Authorization to req. Every other header present is signed; the path is
// taken as it goes on the wire (req.URL.EscapedPath), so callers encode
// it as the service expects (s3EscapePath).
func signV4(req *http.Request, c Credentials, payloadHash, service, region string, now time.Time) {
	now = now.UTC()
	amzDate := now.Format("20060102T150405Z")
	day := amzDate[:8]
	req.Header.Set("X-Amz-Date", amzDate)
	if c.SessionToken != "" {
		req.Header.Set("X-Amz-Security-Token", c.SessionToken)
	}

	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	if h, port, ok := strings.Cut(host, ":"); ok && !strings.Contains(host, "]") &&
		(req.URL.Scheme == "http" && port == "80" || req.URL.Scheme == "https" && port == "443") {
		host = h
		req.Host = h
	}
	names := []string{"host"}
	values := map[string][]string{"host": {host}}
	if req.ContentLength > 0 {
		names = append(names, "content-length")
		values["content-length"] = []string{strconv.FormatInt(req.ContentLength, 10)}
	}
	for k, v := range req.Header {
		lk := strings.ToLower(k)
		if unsignedHeaders[http.CanonicalHeaderKey(k)] || lk == "content-length" {
			continue
		}
		if _, seen := values[lk]; !seen {
			names = append(names, lk)
		}
		values[lk] = append(values[lk], v...)
	}
	sort.Strings(names)
	var canonHeaders strings.Builder
	for _, n := range names {
		canonHeaders.WriteString(n + ":")
		for i, v := range values[n] {
			if i > 0 {
				canonHeaders.WriteByte(',')
			}
			if n == "host" {
				canonHeaders.WriteString(stripExcessSpaces(v))
			} else {
				canonHeaders.WriteString(strings.TrimSpace(stripExcessSpaces(v)))
			}
		}
		canonHeaders.WriteByte('\n')
	}
	signedHeaders := strings.Join(names, ";")

	path := req.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	canonical := strings.Join([]string{req.Method, path, canonicalQuery(req.URL.Query()),
		canonHeaders.String(), signedHeaders, payloadHash}, "\n")
	scope := day + "/" + region + "/" + service + "/aws4_request"
	digest := sha256.Sum256([]byte(canonical))
	toSign := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(digest[:])

	key := []byte("AWS4" + c.SecretAccessKey)
	for _, part := range []string{day, region, service, "aws4_request"} {
		key = hmacSHA256(key, part)
	}
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+c.AccessKeyID+"/"+scope+
		", SignedHeaders="+signedHeaders+", Signature="+hex.EncodeToString(hmacSHA256(key, toSign)))
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// stripExcessSpaces trims spaces at both ends of a header value and
// collapses inner runs of them to one, as SigV4's canonical form wants.
func stripExcessSpaces(v string) string {
	v = strings.Trim(v, " ")
	if !strings.Contains(v, "  ") {
		return v
	}
	var b strings.Builder
	space := false
	for i := 0; i < len(v); i++ {
		if v[i] == ' ' {
			if space {
				continue
			}
			space = true
		} else {
			space = false
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

// canonicalQuery sorts the parameters by name, then value, each encoded
// with %20 for a space.
func canonicalQuery(q url.Values) string {
	type param struct{ k, v string }
	var params []param
	for k, vs := range q {
		for _, v := range vs {
			params = append(params, param{queryEscape(k), queryEscape(v)})
		}
	}
	sort.Slice(params, func(i, j int) bool {
		if params[i].k != params[j].k {
			return params[i].k < params[j].k
		}
		return params[i].v < params[j].v
	})
	var b strings.Builder
	for i, p := range params {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.k + "=" + p.v)
	}
	return b.String()
}

func queryEscape(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }

// s3EscapePath encodes an object key for the request line and the
// signature alike: every byte but the unreserved characters of RFC 3986
// and "/" is percent-encoded, once.
func s3EscapePath(key string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(key); i++ {
		c := key[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte("-._~/", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}
