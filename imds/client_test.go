package imds_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flint-dev/flint/imds"
	"github.com/flint-dev/flint/imds/imdstest"
)

func fixture(t testing.TB) *imdstest.Tree {
	t.Helper()
	tree, err := imdstest.LoadFixture("imdstest/testdata/instance.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

// start serves the fixture and returns the emulator and a client for it.
func start(t testing.TB, eopts imdstest.Options, copts imds.Options) (*imdstest.Server, *imds.Client) {
	t.Helper()
	emu := imdstest.New(fixture(t), eopts)
	ts := httptest.NewServer(emu)
	t.Cleanup(func() { emu.Close(); ts.Close() })
	copts.Endpoint = ts.URL
	if copts.Getenv == nil {
		copts.Getenv = func(string) string { return "" }
	}
	c, err := imds.New(copts)
	if err != nil {
		t.Fatal(err)
	}
	return emu, c
}

func sequence(log []imdstest.Request) string {
	var s []string
	for _, r := range log {
		s = append(s, r.String())
	}
	return strings.Join(s, "\n")
}

func wantSequence(t *testing.T, emu *imdstest.Server, want ...string) {
	t.Helper()
	if got := sequence(emu.Log()); got != strings.Join(want, "\n") {
		t.Errorf("request sequence:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}

func mustGet(t *testing.T, c *imds.Client, path, want string) {
	t.Helper()
	got, err := c.Get(context.Background(), path)
	if err != nil {
		t.Fatalf("Get %s: %v", path, err)
	}
	if string(got) != want {
		t.Fatalf("Get %s = %q, want %q", path, got, want)
	}
}

func TestHappyPathSendsOneTokenThenGetsOnOneConnection(t *testing.T) {
	emu, c := start(t, imdstest.Options{V2Only: true}, imds.Options{})
	mustGet(t, c, "meta-data/instance-id", "i-0123456789abcdef0")
	mustGet(t, c, "meta-data/local-ipv4", "10.0.1.23")
	mustGet(t, c, "meta-data/placement/region", "eu-west-1")
	wantSequence(t, emu,
		"PUT /latest/api/token 200",
		"GET /latest/meta-data/instance-id 200",
		"GET /latest/meta-data/local-ipv4 200",
		"GET /latest/meta-data/placement/region 200")
	log := emu.Log()
	for _, r := range log[1:] {
		if r.Remote != log[0].Remote {
			t.Errorf("request %s came on connection %s, the token on %s: keep-alive not used", r, r.Remote, log[0].Remote)
		}
		if r.Token != "valid" {
			t.Errorf("request %s carried token state %q, want valid", r, r.Token)
		}
	}
	if log[0].TTL != "21600" {
		t.Errorf("token TTL header = %q, want 21600", log[0].TTL)
	}
}

func TestExpiredTokenMidRunGetsOneNewToken(t *testing.T) {
	emu, c := start(t, imdstest.Options{V2Only: true}, imds.Options{})
	mustGet(t, c, "meta-data/ami-id", "ami-0c55b159cbfafe1f0")
	emu.ExpireTokens()
	mustGet(t, c, "meta-data/instance-type", "m6i.large")
	mustGet(t, c, "meta-data/instance-id", "i-0123456789abcdef0")
	wantSequence(t, emu,
		"PUT /latest/api/token 200",
		"GET /latest/meta-data/ami-id 200",
		"GET /latest/meta-data/instance-type 401",
		"PUT /latest/api/token 200",
		"GET /latest/meta-data/instance-type 200",
		"GET /latest/meta-data/instance-id 200")
}

func TestDroppedTokenPutFallsBackToV1InV2PreferredMode(t *testing.T) {
	emu, c := start(t, imdstest.Options{Faults: []imdstest.Fault{{Path: "api/token", Drop: true}}},
		imds.Options{TokenTimeout: 200 * time.Millisecond})
	mustGet(t, c, "meta-data/instance-id", "i-0123456789abcdef0")
	mustGet(t, c, "meta-data/ami-id", "ami-0c55b159cbfafe1f0")
	wantSequence(t, emu,
		"PUT /latest/api/token 0",
		"GET /latest/meta-data/instance-id 200",
		"GET /latest/meta-data/ami-id 200")
	for _, r := range emu.Log()[1:] {
		if r.Token != "" {
			t.Errorf("%s sent a token after falling back to v1", r)
		}
	}
}

func TestDroppedTokenPutIsAClearErrorInV2OnlyMode(t *testing.T) {
	emu, c := start(t, imdstest.Options{Faults: []imdstest.Fault{{Path: "api/token", Drop: true}}},
		imds.Options{Mode: imds.ModeV2Only, TokenTimeout: 200 * time.Millisecond})
	_, err := c.Get(context.Background(), "meta-data/instance-id")
	if err == nil || !strings.Contains(err.Error(), "hop limit") || !strings.Contains(err.Error(), "v2-only") {
		t.Fatalf("err = %v, want a hop-limit/v2-only explanation", err)
	}
	wantSequence(t, emu, "PUT /latest/api/token 0")
}

func TestTokenPut403StopsWithoutFallback(t *testing.T) {
	emu, c := start(t, imdstest.Options{Faults: []imdstest.Fault{{Path: "api/token", Status: 403}}}, imds.Options{})
	_, err := c.Get(context.Background(), "meta-data/instance-id")
	if !errors.Is(err, imds.ErrDisabled) {
		t.Fatalf("err = %v, want ErrDisabled", err)
	}
	wantSequence(t, emu, "PUT /latest/api/token 403")
}

func TestTokenPut404FallsBackToV1(t *testing.T) {
	emu, c := start(t, imdstest.Options{Faults: []imdstest.Fault{{Path: "api/token", Status: 404}}}, imds.Options{})
	mustGet(t, c, "meta-data/instance-id", "i-0123456789abcdef0")
	wantSequence(t, emu, "PUT /latest/api/token 404", "GET /latest/meta-data/instance-id 200")
}

func TestThree503sThenSuccess(t *testing.T) {
	emu, c := start(t, imdstest.Options{Faults: []imdstest.Fault{{Path: "meta-data/instance-id", Status: 503, Count: 3}}},
		imds.Options{MaxBackoff: 20 * time.Millisecond})
	mustGet(t, c, "meta-data/instance-id", "i-0123456789abcdef0")
	wantSequence(t, emu,
		"PUT /latest/api/token 200",
		"GET /latest/meta-data/instance-id 503",
		"GET /latest/meta-data/instance-id 503",
		"GET /latest/meta-data/instance-id 503",
		"GET /latest/meta-data/instance-id 200")
}

func TestRetriesStopAfterMaxAttempts(t *testing.T) {
	emu, c := start(t, imdstest.Options{Faults: []imdstest.Fault{{Path: "meta-data/instance-id", Status: 500}}},
		imds.Options{MaxAttempts: 2, MaxBackoff: 10 * time.Millisecond})
	_, err := c.Get(context.Background(), "meta-data/instance-id")
	var se *imds.StatusError
	if !errors.As(err, &se) || se.Code != 500 || !strings.Contains(err.Error(), "gave up after 2 attempts") {
		t.Fatalf("err = %v, want a 500 StatusError after 2 attempts", err)
	}
	if n := len(emu.Log()); n != 3 {
		t.Errorf("%d requests, want 3 (PUT + 2 GETs)", n)
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	emu, c := start(t, imdstest.Options{Faults: []imdstest.Fault{{Path: "meta-data/instance-id", Status: 429, RetryAfter: "1", Count: 1}}},
		imds.Options{MaxBackoff: 10 * time.Millisecond})
	begin := time.Now()
	mustGet(t, c, "meta-data/instance-id", "i-0123456789abcdef0")
	// A lower bound on waiting is behaviour (the server asked for a second),
	// not a speed target.
	if waited := time.Since(begin); waited < 900*time.Millisecond {
		t.Errorf("retried after %v, the server asked for 1s", waited)
	}
	wantSequence(t, emu,
		"PUT /latest/api/token 200",
		"GET /latest/meta-data/instance-id 429",
		"GET /latest/meta-data/instance-id 200")
}

func TestRetryAfterBeyondTheDeadlineFailsAtOnce(t *testing.T) {
	emu, c := start(t, imdstest.Options{Faults: []imdstest.Fault{{Path: "meta-data/instance-id", Status: 503, RetryAfter: "30"}}}, imds.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := c.Get(ctx, "meta-data/instance-id")
	if err == nil || !strings.Contains(err.Error(), "would pass the deadline") {
		t.Fatalf("err = %v, want a deadline explanation", err)
	}
	if ctx.Err() != nil {
		t.Errorf("Get waited for the deadline instead of failing at once")
	}
	wantSequence(t, emu, "PUT /latest/api/token 200", "GET /latest/meta-data/instance-id 503")
}

func TestUnboundedRetriesEndAtTheDeadline(t *testing.T) {
	_, c := start(t, imdstest.Options{Faults: []imdstest.Fault{{Path: "meta-data/instance-id", Latency: 10 * time.Second}}},
		imds.Options{MaxAttempts: -1, AttemptTimeout: 100 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	_, err := c.Get(ctx, "meta-data/instance-id")
	if err == nil {
		t.Fatal("Get succeeded against a server that never answers in time")
	}
	if !strings.Contains(err.Error(), "deadline") {
		t.Errorf("err = %v, want it to name the deadline", err)
	}
}

func TestNotFoundIsAbsentNotAnErrorAndNotRetried(t *testing.T) {
	emu, c := start(t, imdstest.Options{}, imds.Options{})
	_, err := c.Get(context.Background(), "meta-data/ramdisk-id")
	if !errors.Is(err, imds.ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
	wantSequence(t, emu, "PUT /latest/api/token 200", "GET /latest/meta-data/ramdisk-id 404")
}

func TestConnectionResetIsRetried(t *testing.T) {
	emu, c := start(t, imdstest.Options{Faults: []imdstest.Fault{{Path: "meta-data/ami-id", Reset: true, Count: 1}}},
		imds.Options{MaxBackoff: 10 * time.Millisecond})
	mustGet(t, c, "meta-data/ami-id", "ami-0c55b159cbfafe1f0")
	wantSequence(t, emu, "PUT /latest/api/token 200", "GET /latest/meta-data/ami-id 0", "GET /latest/meta-data/ami-id 200")
}

func TestV1ClientAgainstV2OnlyServerSaysWhy(t *testing.T) {
	_, c := start(t, imdstest.Options{V2Only: true}, imds.Options{Mode: imds.ModeV1})
	_, err := c.Get(context.Background(), "meta-data/ami-id")
	if err == nil || !strings.Contains(err.Error(), "requires IMDSv2") {
		t.Fatalf("err = %v", err)
	}
}

func TestConcurrentReadsShareOneToken(t *testing.T) {
	emu, c := start(t, imdstest.Options{V2Only: true}, imds.Options{})
	var wg sync.WaitGroup
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Get(context.Background(), "meta-data/instance-id"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	puts := 0
	conns := map[string]bool{}
	for _, r := range emu.Log() {
		if r.Method == "PUT" {
			puts++
		}
		conns[r.Remote] = true
	}
	if puts != 1 {
		t.Errorf("%d token PUTs for 40 concurrent reads, want 1", puts)
	}
	if len(conns) > 4 {
		t.Errorf("%d connections, want at most 4", len(conns))
	}
}

func TestNoRedirectIsFollowed(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "PUT" {
			w.Write([]byte("tok"))
			return
		}
		http.Redirect(w, r, "http://127.0.0.1:1/elsewhere", http.StatusFound)
	}))
	defer ts.Close()
	c, err := imds.New(imds.Options{Endpoint: ts.URL})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Get(context.Background(), "meta-data/ami-id")
	var se *imds.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusFound {
		t.Fatalf("err = %v, want the 302 reported, not followed", err)
	}
}

func TestTypedReads(t *testing.T) {
	emu, c := start(t, imdstest.Options{}, imds.Options{})
	ctx := context.Background()
	doc, err := c.IdentityDocument(ctx)
	if err != nil || doc.InstanceID != "i-0123456789abcdef0" || doc.Region != "eu-west-1" || doc.KernelID != "aki-0a4a7cd4e1bb2ab4c" {
		t.Fatalf("IdentityDocument = %+v, %v", doc, err)
	}
	keys, err := c.PublicKeys(ctx)
	if err != nil || len(keys) != 2 || keys[0].Name != "alice" || keys[1].Name != "deploy" ||
		!strings.HasPrefix(keys[0].OpenSSH, "ssh-ed25519 ") || !strings.HasPrefix(keys[1].OpenSSH, "ssh-rsa ") {
		t.Fatalf("PublicKeys = %+v, %v", keys, err)
	}
	ifs, err := c.Interfaces(ctx)
	if err != nil || len(ifs) != 2 {
		t.Fatalf("Interfaces = %+v, %v", ifs, err)
	}
	if ifs[0].MAC != "0e:49:61:0f:c3:11" || ifs[0].DeviceNumber != 0 || ifs[1].DeviceNumber != 1 ||
		strings.Join(ifs[1].LocalIPv4s, ",") != "10.0.2.40,10.0.2.41,10.0.2.42" ||
		ifs[1].SubnetIPv4CIDR != "10.0.2.0/24" || strings.Join(ifs[1].IPv4Prefixes, ",") != "10.0.2.64/28" {
		t.Fatalf("Interfaces = %+v", ifs)
	}
	ud, err := c.UserData(ctx)
	if err != nil || len(ud) < 2 || ud[0] != 0x1f || ud[1] != 0x8b {
		t.Fatalf("UserData: %d bytes, %v; want gzip", len(ud), err)
	}
	cr, err := c.RoleCredentials(ctx)
	if err != nil || cr.Role != "web-role" || cr.AccessKeyID != "ASIAEXAMPLEKEYID0001" {
		t.Fatalf("RoleCredentials = %+v, %v", cr, err)
	}
	emu.Delete("user-data")
	if ud, err := c.UserData(ctx); err != nil || ud != nil {
		t.Fatalf("UserData without user-data = %q, %v; want nil, nil", ud, err)
	}
}

func TestDumpWalksTheWholeTreeWithOneToken(t *testing.T) {
	emu, c := start(t, imdstest.Options{}, imds.Options{})
	entries, err := c.Dump(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range entries {
		if e.Err != nil {
			t.Errorf("%s: %v", e.Path, e.Err)
		}
		got[e.Path] = string(e.Value)
	}
	for path, want := range map[string]string{
		"meta-data/instance-id":                                           "i-0123456789abcdef0",
		"meta-data/public-keys/1/openssh-key":                             "",
		"meta-data/tags/instance/Environment":                             "staging",
		"meta-data/network/interfaces/macs/0e:7c:1a:44:aa:02/ipv4-prefix": "10.0.2.64/28",
		"dynamic/instance-identity/signature":                             "ZXhhbXBsZSBzaWduYXR1cmU=",
		"meta-data/block-device-mapping/root":                             "/dev/xvda",
	} {
		v, ok := got[path]
		if !ok {
			t.Errorf("dump lacks %s", path)
		} else if want != "" && v != want {
			t.Errorf("dump %s = %q, want %q", path, v, want)
		}
	}
	if _, ok := got["user-data"]; !ok {
		t.Error("dump lacks user-data")
	}
	if want := countLeaves(fixture(t).Root); len(entries) != want {
		t.Errorf("dump found %d leaves, the fixture has %d", len(entries), want)
	}
	if s := c.Stats(); s.TokenRequests != 1 {
		t.Errorf("%d token requests, want 1", s.TokenRequests)
	}
	_ = emu
}

func countLeaves(n *imdstest.Node) int {
	if !n.IsDir() {
		return 1
	}
	total := 0
	for _, c := range n.Children {
		total += countLeaves(c)
	}
	return total
}

func TestMemoAsksOncePerKey(t *testing.T) {
	emu, c := start(t, imdstest.Options{}, imds.Options{})
	m := imds.NewMemo(c)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if _, err := m.Get(ctx, "meta-data/ami-id"); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Get(ctx, "meta-data/ramdisk-id"); !errors.Is(err, imds.ErrNotFound) {
			t.Fatal(err)
		}
	}
	wantSequence(t, emu, "PUT /latest/api/token 200", "GET /latest/meta-data/ami-id 200", "GET /latest/meta-data/ramdisk-id 404")
}

func TestEndpointResolution(t *testing.T) {
	for _, tc := range []struct {
		name, flag string
		env        map[string]string
		want, err  string
	}{
		{name: "nothing set gives the IPv4 default", want: imds.DefaultEndpoint},
		{name: "auto gives the IPv4 default until a connection chooses", flag: "auto", want: imds.DefaultEndpoint},
		{name: "IPv6 mode gives the IPv6 default", env: map[string]string{"AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE": "IPv6"}, want: imds.DefaultIPv6Endpoint},
		{name: "the endpoint variable beats the mode", env: map[string]string{"AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:9", "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE": "IPv6"}, want: "http://127.0.0.1:9"},
		{name: "the flag beats the environment", flag: "http://127.0.0.2:8080/", env: map[string]string{"AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:9"}, want: "http://127.0.0.2:8080"},
		{name: "an unknown mode is refused", env: map[string]string{"AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE": "IPv5"}, err: "want IPv4 or IPv6"},
		{name: "a garbage URL is refused", flag: "::not a url::", err: "is not a metadata endpoint URL"},
		{name: "a scheme other than http is refused", flag: "ftp://127.0.0.1", err: "is not a metadata endpoint URL"},
		{name: "a path is refused", flag: "http://127.0.0.1/latest/meta-data", err: "is not a metadata endpoint URL"},
		{name: "a bad port is refused", flag: "http://127.0.0.1:99999", err: "bad port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := imds.New(imds.Options{Endpoint: tc.flag, Getenv: func(k string) string { return tc.env[k] }})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Endpoint() != tc.want {
				t.Fatalf("endpoint = %s, want %s", c.Endpoint(), tc.want)
			}
		})
	}
}

func TestDisabledByEnvironmentSendsNothing(t *testing.T) {
	emu, c := start(t, imdstest.Options{}, imds.Options{Getenv: func(k string) string {
		return map[string]string{"AWS_EC2_METADATA_DISABLED": "true"}[k]
	}})
	if _, err := c.Get(context.Background(), "meta-data/ami-id"); !errors.Is(err, imds.ErrDisabled) {
		t.Fatalf("err = %v, want ErrDisabled", err)
	}
	if n := len(emu.Log()); n != 0 {
		t.Errorf("%d requests sent while disabled", n)
	}
}

func TestV1DisabledByEnvironmentMeansV2Only(t *testing.T) {
	_, c := start(t, imdstest.Options{Faults: []imdstest.Fault{{Path: "api/token", Status: 404}}}, imds.Options{Getenv: func(k string) string {
		return map[string]string{"AWS_EC2_METADATA_V1_DISABLED": "true"}[k]
	}})
	if _, err := c.Get(context.Background(), "meta-data/ami-id"); err == nil || !strings.Contains(err.Error(), "v2-only") {
		t.Fatalf("err = %v, want v2-only refusal", err)
	}
}

func TestBadInputGivesOneClearError(t *testing.T) {
	if _, err := imds.New(imds.Options{Endpoint: "http://127.0.0.1", TokenTTL: 7 * time.Hour}); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Errorf("TTL 7h: err = %v", err)
	}
	_, c := start(t, imdstest.Options{}, imds.Options{MaxResponseBytes: 64})
	if _, err := c.Get(context.Background(), "dynamic/instance-identity/document"); err == nil || !strings.Contains(err.Error(), "larger than 64 bytes") {
		t.Errorf("oversized: err = %v", err)
	}
	emu, c := start(t, imdstest.Options{}, imds.Options{})
	emu.Set("meta-data/junk/a\x01b", []byte("x"))
	if _, err := c.List(context.Background(), "meta-data/junk/"); err == nil || !strings.Contains(err.Error(), "malformed line") {
		t.Errorf("junk listing: err = %v", err)
	}
	emu.Set("meta-data/public-keys/notakey", []byte("x"))
	if _, err := c.PublicKeys(context.Background()); err == nil || !strings.Contains(err.Error(), "want N=name") {
		t.Errorf("junk key listing: err = %v", err)
	}
	if _, err := c.Get(context.Background(), "meta-data/../../etc"); err == nil {
		t.Error("a path with .. was sent")
	}
}

func TestTruncatedResponseIsRetriedThenReported(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 4096)
			conn.Read(buf)
			fmt.Fprintf(conn, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort")
			conn.Close()
		}
	}()
	c, err := imds.New(imds.Options{Endpoint: "http://" + ln.Addr().String(), Mode: imds.ModeV1, MaxAttempts: 2, MaxBackoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Get(context.Background(), "meta-data/ami-id")
	if err == nil || !strings.Contains(err.Error(), "unexpected EOF") || !strings.Contains(err.Error(), "gave up after 2 attempts") {
		t.Fatalf("err = %v", err)
	}
}

func TestConcurrentReadsShareOneFailedTokenRequest(t *testing.T) {
	emu, c := start(t, imdstest.Options{Faults: []imdstest.Fault{{Path: "api/token", Status: 500}}},
		imds.Options{MaxAttempts: 2, MaxBackoff: 10 * time.Millisecond})
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Get(context.Background(), "meta-data/instance-id"); err == nil {
				t.Error("a read succeeded without a token")
			}
		}()
	}
	wg.Wait()
	if n := len(emu.Log()); n != 2 {
		t.Errorf("%d requests for 10 readers behind one failing token PUT, want its 2 attempts:\n%s", n, sequence(emu.Log()))
	}
}

func TestASlowTokenAnswerDoesNotStrandAV2OnlyInstanceOnV1(t *testing.T) {
	emu, c := start(t, imdstest.Options{V2Only: true, Faults: []imdstest.Fault{{Path: "api/token", Latency: 400 * time.Millisecond, Count: 1}}},
		imds.Options{TokenTimeout: 200 * time.Millisecond})
	mustGet(t, c, "meta-data/instance-id", "i-0123456789abcdef0")
	mustGet(t, c, "meta-data/ami-id", "ami-0c55b159cbfafe1f0")
	log := emu.Log()
	var puts int
	for _, r := range log {
		if r.Method == "PUT" {
			puts++
		}
	}
	if puts != 2 || log[len(log)-1].Token != "valid" {
		t.Errorf("want the slow PUT, a v1 GET refused with 401, then a new token used:\n%s", sequence(log))
	}
}

func TestDumpOfOneValueOrOneDirectory(t *testing.T) {
	_, c := start(t, imdstest.Options{}, imds.Options{})
	ctx := context.Background()
	for _, tc := range []struct {
		root string
		want []string
	}{
		{"meta-data/ami-id", []string{"meta-data/ami-id"}},
		{"dynamic/instance-identity/document", []string{"dynamic/instance-identity/document"}},
		{"meta-data/placement", []string{"meta-data/placement/availability-zone", "meta-data/placement/availability-zone-id", "meta-data/placement/region"}},
		{"meta-data/public-keys/0", []string{"meta-data/public-keys/0/openssh-key"}},
		{"user-data", []string{"user-data"}},
	} {
		entries, err := c.Dump(ctx, tc.root)
		var got []string
		for _, e := range entries {
			if e.Err != nil {
				t.Errorf("%s: %v", e.Path, e.Err)
			}
			got = append(got, e.Path)
		}
		if err != nil || strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("Dump(%q) = %v, %v; want %v", tc.root, got, err, tc.want)
		}
	}
	if _, err := c.Dump(ctx, "meta-data/nope"); !errors.Is(err, imds.ErrNotFound) {
		t.Errorf("Dump of a missing path: %v", err)
	}
}
