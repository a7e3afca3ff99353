package imdstest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func serve(t *testing.T, opts Options) (*Server, *httptest.Server) {
	t.Helper()
	tree, err := ParseFixture(DefaultFixture)
	if err != nil {
		t.Fatal(err)
	}
	s := New(tree, opts)
	ts := httptest.NewServer(s)
	t.Cleanup(func() { s.Close(); ts.Close() })
	return s, ts
}

func do(t *testing.T, method, url string, hdr map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func token(t *testing.T, base string) string {
	code, tok := do(t, "PUT", base+"/latest/api/token", map[string]string{"X-aws-ec2-metadata-token-ttl-seconds": "60"})
	if code != 200 {
		t.Fatalf("token PUT: %d", code)
	}
	return tok
}

func TestEmulatorServesListingsAsIMDSDoes(t *testing.T) {
	_, ts := serve(t, Options{})
	for _, tc := range []struct{ path, want string }{
		{"/latest/", "meta-data\ndynamic\nuser-data"},
		{"/latest/meta-data/placement/", "availability-zone\navailability-zone-id\nregion"},
		{"/latest/meta-data/placement", "availability-zone\navailability-zone-id\nregion"},
		{"/latest/meta-data/public-keys/", "0=alice\n1=deploy"},
		{"/latest/meta-data/public-keys/0/", "openssh-key"},
		{"/latest/meta-data/tags/instance", "Name\nEnvironment"},
		{"/latest/meta-data/events/", "maintenance/"},
		{"/2021-03-23/meta-data/instance-id", "i-0123456789abcdef0"},
		{"/2009-04-04/meta-data//instance-id", "i-0123456789abcdef0"},
	} {
		code, body := do(t, "GET", ts.URL+tc.path, nil)
		if code != 200 || body != tc.want {
			t.Errorf("GET %s = %d %q, want 200 %q", tc.path, code, body, tc.want)
		}
	}
	code, body := do(t, "GET", ts.URL+"/", nil)
	if code != 200 || !strings.HasPrefix(body, "1.0\n") || !strings.HasSuffix(body, "2021-03-23\nlatest") {
		t.Errorf("GET / = %d %q", code, body)
	}
	for _, p := range []string{"/latest/meta-data/ramdisk-id", "/1999-01-01/meta-data/ami-id", "/latest/meta-data/public-keys/0=alice/"} {
		if code, _ := do(t, "GET", ts.URL+p, nil); code != 404 {
			t.Errorf("GET %s = %d, want 404", p, code)
		}
	}
}

func TestEmulatorTokenRules(t *testing.T) {
	_, ts := serve(t, Options{V2Only: true})
	for _, ttl := range []string{"", "0", "21601", "abc", "-5"} {
		if code, _ := do(t, "PUT", ts.URL+"/latest/api/token", map[string]string{"X-aws-ec2-metadata-token-ttl-seconds": ttl}); code != 400 {
			t.Errorf("TTL %q: %d, want 400", ttl, code)
		}
	}
	if code, _ := do(t, "PUT", ts.URL+"/latest/api/token", map[string]string{"X-aws-ec2-metadata-token-ttl-seconds": "60", "X-Forwarded-For": "1.2.3.4"}); code != 403 {
		t.Errorf("PUT with X-Forwarded-For: %d, want 403", code)
	}
	if code, _ := do(t, "GET", ts.URL+"/latest/meta-data/ami-id", nil); code != 401 {
		t.Errorf("v2-only GET without token: %d, want 401", code)
	}
	if code, _ := do(t, "GET", ts.URL+"/latest/meta-data/ami-id", map[string]string{"X-aws-ec2-metadata-token": "bogus"}); code != 401 {
		t.Errorf("GET with a bad token: %d, want 401", code)
	}
	tok := token(t, ts.URL)
	if code, body := do(t, "GET", ts.URL+"/latest/meta-data/ami-id", map[string]string{"X-aws-ec2-metadata-token": tok}); code != 200 || body != "ami-0c55b159cbfafe1f0" {
		t.Errorf("GET with token: %d %q", code, body)
	}
}

func TestEmulatorV1WorksWhenTokensAreOptional(t *testing.T) {
	s, ts := serve(t, Options{})
	if code, _ := do(t, "GET", ts.URL+"/latest/meta-data/ami-id", nil); code != 200 {
		t.Errorf("v1 GET: %d", code)
	}
	tok := token(t, ts.URL)
	s.ExpireTokens()
	if code, _ := do(t, "GET", ts.URL+"/latest/meta-data/ami-id", map[string]string{"X-aws-ec2-metadata-token": tok}); code != 401 {
		t.Errorf("GET with an expired token: %d, want 401", code)
	}
	log := s.Log()
	if last := log[len(log)-1]; last.Token != "expired" || last.Status != 401 {
		t.Errorf("log entry %+v", last)
	}
}

func TestFaultsFireAsOftenAsAsked(t *testing.T) {
	_, ts := serve(t, Options{Faults: []Fault{{Path: "meta-data/*", Status: 503, RetryAfter: "2", Count: 2}}})
	for i, want := range []int{503, 503, 200} {
		code, _ := do(t, "GET", ts.URL+"/latest/meta-data/ami-id", nil)
		if code != want {
			t.Errorf("request %d: %d, want %d", i, code, want)
		}
	}
}

func TestFaultTruncateSendsHalfTheBodyThenCloses(t *testing.T) {
	for _, reset := range []bool{false, true} {
		s, ts := serve(t, Options{})
		_, whole := do(t, "GET", ts.URL+"/latest/meta-data/local-hostname", nil)
		s.AddFault(Fault{Path: "meta-data/local-hostname", Truncate: true, Reset: reset})
		resp, err := http.Get(ts.URL + "/latest/meta-data/local-hostname")
		if err != nil {
			t.Fatalf("reset=%v: no status line: %v", reset, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.ContentLength != int64(len(whole)) {
			t.Errorf("reset=%v: status %d, length %d, want 200 and %d", reset, resp.StatusCode, resp.ContentLength, len(whole))
		}
		if err == nil || string(body) != whole[:len(whole)/2] {
			t.Errorf("reset=%v: read %q, %v; want %q and an error", reset, body, err, whole[:len(whole)/2])
		}
		if last := s.Log()[len(s.Log())-1]; last.Fault != "truncate" || last.Status != 200 {
			t.Errorf("reset=%v: log entry %+v", reset, last)
		}
	}
}

func TestParseFaults(t *testing.T) {
	fs, err := ParseFaults("path=meta-data/instance-id,status=503,retry-after=1,count=3; path=api/token,method=put,drop;latency=50ms")
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 3 || fs[0].Status != 503 || fs[0].Count != 3 || fs[0].RetryAfter != "1" || !fs[1].Drop || fs[1].Method != "PUT" || fs[2].Latency.Milliseconds() != 50 {
		t.Fatalf("parsed %+v", fs)
	}
	tr, err := ParseFaults("path=user-data,truncate,reset,count=1")
	if err != nil || len(tr) != 1 || !tr[0].Truncate || !tr[0].Reset || tr[0].Count != 1 {
		t.Fatalf("truncate parsed %+v, %v", tr, err)
	}
	for _, bad := range []string{"status=abc", "status=700", "path=x", "bogus=1", "drop=yes", "latency=fast", "method=POST,status=500", "truncate=1", "truncate,status=500"} {
		if _, err := ParseFaults(bad); err == nil {
			t.Errorf("ParseFaults(%q) accepted", bad)
		}
	}
}

func TestFixtureErrorsNameTheLine(t *testing.T) {
	for bad, line := range map[string]string{
		"a: [1, [2]]":             "line 1:",
		"a:\n  b: 1\n  b: 2":      "line 3:",
		"- list":                  "line 1:",
		"x: 1\na: !!binary '%%%'": "line 2:",
		"a:\n  'x/y': 1":          "line 2:",
	} {
		_, err := ParseFixture([]byte(bad))
		if err == nil {
			t.Errorf("fixture %q accepted", bad)
			continue
		}
		if !strings.Contains(err.Error(), line) {
			t.Errorf("fixture %q: error %q does not name %q", bad, err, line)
		}
	}
}
