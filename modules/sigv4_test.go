package modules

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// sdkSign signs req as the SDK's S3 client does (its signer, the path not
// escaped twice) and returns the Authorization header.
func sdkSign(t *testing.T, req *http.Request, c Credentials, payload, region string, when time.Time) string {
	t.Helper()
	creds := aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken}
	err := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }).
		SignHTTP(context.Background(), creds, req, payload, "s3", region, when)
	if err != nil {
		t.Fatal(err)
	}
	return req.Header.Get("Authorization")
}

func TestSigV4KnownAnswerFromTheS3Documentation(t *testing.T) {
	// "Example: GET Object" of the S3 API reference (Signature Version 4,
	// authorization header).
	req, _ := http.NewRequest(http.MethodGet, "https://examplebucket.s3.amazonaws.com/test.txt", nil)
	req.Header.Set("Range", "bytes=0-9")
	req.Header.Set("X-Amz-Content-Sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
	c := Credentials{AccessKeyID: "AKIAIOSFODNN7EXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}
	signV4(req, c, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "s3", "us-east-1",
		time.Date(2013, 5, 24, 0, 0, 0, 0, time.UTC))
	want := "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, " +
		"SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, " +
		"Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
	if got := req.Header.Get("Authorization"); got != want {
		t.Errorf("Authorization:\n got %s\nwant %s", got, want)
	}
}

func TestSigV4MatchesTheSDKSigner(t *testing.T) {
	when := time.Date(2026, 11, 25, 13, 4, 5, 0, time.UTC)
	withToken := Credentials{AccessKeyID: "ASIAEXAMPLE", SecretAccessKey: "c2VjcmV0/+key", SessionToken: "FwoGZXIvYXdzEJr//////////token=="}
	noToken := Credentials{AccessKeyID: "AKIAEXAMPLE", SecretAccessKey: "secret"}
	for _, tc := range []struct {
		name   string
		url    string
		header map[string][]string
		creds  Credentials
	}{
		{name: "a plain key with a session token", url: "https://bucket.s3.eu-west-1.amazonaws.com/kernels/6.1.0-56-cloud-amd64.tar.zst", creds: withToken},
		{name: "the default https port is not signed", url: "https://bucket.s3.eu-west-1.amazonaws.com:443/k.tar.gz", creds: noToken},
		{name: "another port is", url: "http://127.0.0.1:9000/bucket/k.tar.gz", creds: noToken},
		{name: "a key that needs encoding", url: "https://b.s3.us-east-1.amazonaws.com/" + s3EscapePath("dir with space/a+b!c(1)*'=&$@,;:ü~.tar.gz"), creds: withToken},
		{name: "a resumed download", url: "https://b.s3.us-east-1.amazonaws.com/k.tar.xz", creds: withToken,
			header: map[string][]string{"Range": {"bytes=1048576-"}, "If-Range": {`"9b2cf535f27731c974343645a3985328"`}}},
		{name: "header values with runs of spaces and several values", url: "https://b.s3.us-east-1.amazonaws.com/k", creds: noToken,
			header: map[string][]string{"X-Amz-Meta-Note": {"  a   b  c ", "second"}, "User-Agent": {"flint"}}},
		{name: "a query whose names share a prefix", url: "https://b.s3.us-east-1.amazonaws.com/k?versionId=3%2F4&version=a+b&v=~x&a-b=2&a=1", creds: noToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mk := func() *http.Request {
				req, err := http.NewRequest(http.MethodGet, tc.url, nil)
				if err != nil {
					t.Fatal(err)
				}
				for k, v := range tc.header {
					req.Header[k] = append([]string(nil), v...)
				}
				req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
				return req
			}
			ours := mk()
			signV4(ours, tc.creds, "UNSIGNED-PAYLOAD", "s3", "eu-west-1", when)
			want := sdkSign(t, mk(), tc.creds, "UNSIGNED-PAYLOAD", "eu-west-1", when)
			if got := ours.Header.Get("Authorization"); got != want {
				t.Errorf("Authorization:\n got %s\nwant %s", got, want)
			}
		})
	}
}

func TestS3BundlesAreSignedWithSigV4(t *testing.T) {
	body := compress(t, FormatTarGz, makeTar(t, goodTree(rel, "new")))
	creds := Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG", SessionToken: "tok"}
	const key = "kernels/6.1 build+1!/b.tar.gz"
	var mu sync.Mutex
	var problems []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.URL.Path != "/my-bucket/"+key || r.URL.RawPath != "/my-bucket/"+s3EscapePath(key) {
			problems = append(problems, "path "+r.URL.Path+" sent as "+r.URL.RawPath)
		}
		auth := r.Header.Get("Authorization")
		if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/") || !strings.Contains(auth, "/eu-west-1/s3/aws4_request") {
			problems = append(problems, "authorization "+auth)
		}
		if r.Header.Get("X-Amz-Security-Token") != "tok" {
			problems = append(problems, "no session token")
		}
		// Re-sign the request as received with the SDK and compare: the
		// signature must be exactly SigV4's for this request.
		when, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
		if err != nil {
			problems = append(problems, "x-amz-date")
		}
		check := r.Clone(context.Background())
		signed := map[string]bool{}
		if _, after, ok := strings.Cut(auth, "SignedHeaders="); ok {
			list, _, _ := strings.Cut(after, ",")
			for _, h := range strings.Split(list, ";") {
				signed[http.CanonicalHeaderKey(h)] = true
			}
		}
		for h := range check.Header {
			if !signed[h] {
				check.Header.Del(h) // added by the transport after signing
			}
		}
		check.URL.Scheme, check.URL.Host = "http", r.Host
		if sdkSign(t, check, creds, "UNSIGNED-PAYLOAD", "eu-west-1", when) != auth {
			problems = append(problems, "signature does not verify")
		}
		http.ServeContent(w, r, "b", time.Time{}, bytes.NewReader(body))
	}))
	defer srv.Close()
	f := &Fetcher{Client: srv.Client(), S3Endpoint: srv.URL, Region: "eu-west-1",
		Credentials: CredentialsFunc(func(context.Context) (Credentials, error) { return creds, nil })}
	_, err := httpInstall(t, f, Bundle{URL: "s3://my-bucket/" + s3EscapePath(key), SHA256: digest(body), Pinned: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) > 0 {
		t.Fatalf("S3 request problems: %q", problems)
	}
}

func TestRoleCredentialsAreCachedUntilShortlyBeforeTheyExpire(t *testing.T) {
	calls := 0
	expires := time.Now().Add(time.Hour)
	c := &credentialsCache{window: 5 * time.Minute, p: CredentialsFunc(func(context.Context) (Credentials, error) {
		calls++
		return Credentials{AccessKeyID: "A", SecretAccessKey: "S", Expires: expires}, nil
	})}
	for range 3 {
		if _, err := c.Retrieve(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if calls != 1 {
		t.Fatalf("three reads of fresh credentials asked %d times, want 1", calls)
	}
	expires = time.Now().Add(time.Minute) // the next answer is already inside the window
	c.creds.Expires = time.Now().Add(4 * time.Minute)
	for range 2 {
		if _, err := c.Retrieve(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if calls != 3 {
		t.Fatalf("credentials inside the expiry window: %d retrievals, want 3 (one per read)", calls)
	}
}
