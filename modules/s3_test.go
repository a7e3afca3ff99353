package modules

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flint-dev/flint/imds"
	"github.com/flint-dev/flint/imds/imdstest"
	"github.com/flint-dev/flint/internal/testenv"
)

// s3Server is versitygw serving a bucket from a directory on loopback:
// a real S3 implementation that checks SigV4 in full.
type s3Server struct {
	endpoint string
	creds    Credentials
	log      *bytes.Buffer
}

const (
	s3Bucket = "bundles"
	s3Region = "us-east-1"
)

// versitygwBinary finds versitygw on PATH or where "make deps" installs
// it (GOPATH/bin).
func versitygwBinary(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		home, _ := os.UserHomeDir()
		gopath = filepath.Join(home, "go")
	}
	p := filepath.Join(gopath, "bin", "versitygw")
	_, err := os.Stat(p)
	testenv.Need(t, err == nil, "needs versitygw (make deps installs it into GOPATH/bin)")
	return p
}

// startS3 starts versitygw with a private bucket and static keys.
func startS3(t testing.TB) *s3Server {
	t.Helper()
	bin := versitygwBinary(t)
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s := &s3Server{
		endpoint: "http://" + addr,
		creds:    Credentials{AccessKeyID: "FLINTTESTACCESSKEY01", SecretAccessKey: "flintTestSecretKey0000000000000000000000"},
		log:      &bytes.Buffer{},
	}
	cmd := exec.Command(bin, "--access", s.creds.AccessKeyID, "--secret", s.creds.SecretAccessKey,
		"--region", s3Region, "--port", addr, "posix", dir)
	cmd.Stdout, cmd.Stderr = s.log, s.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("versitygw did not listen on %s: %s", addr, s.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.put(t, s3Bucket, "", nil)
	return s
}

// put sends a signed PUT: a bucket when key is "", else an object.
func (s *s3Server) put(t testing.TB, bucket, key string, body []byte) {
	t.Helper()
	u := s.endpoint + "/" + bucket
	if key != "" {
		u += "/" + s3EscapePath(key)
	}
	req, err := http.NewRequest(http.MethodPut, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	req.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(sum[:]))
	signV4(req, s.creds, hex.EncodeToString(sum[:]), "s3", s3Region, time.Now())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("PUT %s: %s: %s", u, resp.Status, b)
	}
}

// static is a CredentialsProvider of fixed keys.
func static(c Credentials) CredentialsProvider {
	return CredentialsFunc(func(context.Context) (Credentials, error) { return c, nil })
}

// publish packs tree, uploads the bundle, a manifest naming it and the
// manifest's signature, and returns the public key.
func (s *s3Server) publish(t testing.TB, src, release string) (ed25519.PublicKey, PackResult) {
	t.Helper()
	dir := t.TempDir()
	res, err := Pack(PackOptions{Source: src, Release: release, Out: filepath.Join(dir, release+".tar.zst")})
	if err != nil {
		t.Fatal(err)
	}
	manifest := filepath.Join(dir, "manifest.json")
	if _, err := UpdateManifestFile(manifest, ManifestEntry{Release: res.Release, Arch: res.Arch,
		URL: "bundles/" + release + ".tar.zst", SHA256: res.SHA256, Size: res.Size, Format: string(res.Format)}); err != nil {
		t.Fatal(err)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	raw := readFileTB(t, manifest)
	s.put(t, s3Bucket, "bundles/"+release+".tar.zst", readFileTB(t, res.Path))
	s.put(t, s3Bucket, "manifest.json", raw)
	s.put(t, s3Bucket, "manifest.json.sig", SignManifest(raw, priv))
	return pub, res
}

func readFileTB(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// s3Env points the AWS SDKs' variables, which flint follows, at s.
func (s *s3Server) env(t *testing.T, creds Credentials) {
	t.Setenv("AWS_ENDPOINT_URL_S3", s.endpoint)
	t.Setenv("AWS_ACCESS_KEY_ID", creds.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", creds.SecretAccessKey)
	t.Setenv("AWS_SESSION_TOKEN", creds.SessionToken)
}

func TestASignedManifestAndBundleComeFromARealS3Server(t *testing.T) {
	s := startS3(t)
	tree := makeTree(t, t.TempDir())
	pub, res := s.publish(t, tree, rel)
	s.env(t, s.creds)
	root := t.TempDir()
	out, err := Ensure(context.Background(), Options{
		Root: root, Release: rel, Depmod: fakeDepmod,
		Config:      Config{Manifest: "s3://" + s3Bucket + "/manifest.json", PublicKey: hex.EncodeToString(pub), S3Region: s3Region},
		Credentials: DefaultCredentials(nil),
	})
	if err != nil {
		t.Fatalf("%v\nserver log: %s", err, s.log)
	}
	if out.Action != ActionInstalled || out.Record.SHA256 != res.SHA256 {
		t.Fatalf("outcome %+v", out)
	}
	if got := readFile(t, filepath.Join(root, "lib/modules", rel, "kernel/drivers/a.ko")); string(got) != "module a" {
		t.Fatalf("a.ko = %q", got)
	}
}

func TestS3FailuresAreOneClearLine(t *testing.T) {
	s := startS3(t)
	s.put(t, s3Bucket, "b.tar.zst", []byte("x"))
	wrongSecret := s.creds
	wrongSecret.SecretAccessKey = "wrong" + wrongSecret.SecretAccessKey[5:]
	unknown := s.creds
	unknown.AccessKeyID = "AKIAUNKNOWNKEY000000"
	for _, tc := range []struct {
		name  string
		creds Credentials
		url   string
		want  string
	}{
		{"a wrong secret key", wrongSecret, "s3://" + s3Bucket + "/b.tar.zst", "HTTP 403 SignatureDoesNotMatch: the secret key does not match"},
		{"an unknown access key", unknown, "s3://" + s3Bucket + "/b.tar.zst", "the server does not know this access key"},
		{"a missing object", s.creds, "s3://" + s3Bucket + "/missing.tar.zst", "HTTP 404 NoSuchKey: no such object in the bucket"},
		{"a missing bucket", s.creds, "s3://nobucket/b.tar.zst", "HTTP 404 NoSuchBucket"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &Fetcher{S3Endpoint: s.endpoint, Region: s3Region, Credentials: static(tc.creds), Backoff: time.Millisecond}
			_, err := f.Open(context.Background(), Bundle{URL: tc.url, SHA256: strings.Repeat("0", 64)})
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("got %v, want one line with %q", err, tc.want)
			}
			if strings.Contains(err.Error(), tc.creds.SecretAccessKey) {
				t.Fatal("the error carries the secret key")
			}
		})
	}
}

// cutProxy forwards loopback TCP to target and cuts the first connection
// after cut bytes of response; it counts what reached the client and
// records each request's head.
type cutProxy struct {
	addr string
	mu   sync.Mutex
	sent int64
	reqs []string
}

func startCutProxy(t testing.TB, target string, cut int64) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{addr: ln.Addr().String()}
	t.Cleanup(func() { ln.Close() })
	first := true
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			limit := int64(-1)
			if first {
				limit, first = cut, false
			}
			go p.serve(c, target, limit)
		}
	}()
	return p
}

func (p *cutProxy) serve(c net.Conn, target string, limit int64) {
	defer c.Close()
	up, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	defer up.Close()
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := c.Read(buf)
			if n > 0 {
				p.mu.Lock()
				p.reqs = append(p.reqs, string(buf[:n]))
				p.mu.Unlock()
				up.Write(buf[:n])
			}
			if err != nil {
				return
			}
		}
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := up.Read(buf)
		if limit >= 0 && int64(n) > limit {
			n = int(limit)
		}
		if n > 0 {
			c.Write(buf[:n])
			p.mu.Lock()
			p.sent += int64(n)
			p.mu.Unlock()
			if limit >= 0 {
				limit -= int64(n)
			}
		}
		if err != nil || limit == 0 {
			return
		}
	}
}

func TestRangeResumeWorksAgainstARealS3ServerAfterACutConnection(t *testing.T) {
	s := startS3(t)
	tree := makeTree(t, t.TempDir())
	noise := make([]byte, 3<<20) // incompressible: the bundle is about as big
	rand.Read(noise)
	os.WriteFile(filepath.Join(tree, "kernel/noise.ko"), noise, 0o644)
	_, res := s.publish(t, tree, rel)
	proxy := startCutProxy(t, strings.TrimPrefix(s.endpoint, "http://"), 1<<20)
	f := &Fetcher{S3Endpoint: "http://" + proxy.addr, Region: s3Region, Credentials: static(s.creds), Backoff: time.Millisecond}
	root := t.TempDir()
	in := &Installer{Root: root, Release: rel, Open: f.Open, Depmod: fakeDepmod}
	if _, err := in.Install(context.Background(), Bundle{URL: "s3://" + s3Bucket + "/bundles/" + rel + ".tar.zst", SHA256: res.SHA256, Format: FormatTarZst}); err != nil {
		t.Fatalf("%v\nserver log: %s", err, s.log)
	}
	if got := readFile(t, filepath.Join(root, "lib/modules", rel, "kernel/noise.ko")); !bytes.Equal(got, noise) {
		t.Fatal("the resumed download installed other bytes")
	}
	proxy.mu.Lock()
	defer proxy.mu.Unlock()
	resumed := false
	for _, r := range proxy.reqs[1:] {
		resumed = resumed || strings.Contains(strings.ToLower(r), "range: bytes=")
	}
	if len(proxy.reqs) < 2 || !resumed {
		t.Fatalf("no Range request after the cut: %q", proxy.reqs)
	}
	// The bundle once, plus response heads: nothing fetched twice.
	if proxy.sent > res.Size+8<<10 {
		t.Fatalf("%d bytes reached the client for a %d-byte bundle", proxy.sent, res.Size)
	}
}

// roleEmulator is flint's metadata emulator with an instance role whose
// keys are given.
func roleEmulator(t testing.TB, creds Credentials, expires time.Time) (*imdstest.Server, *imds.Client) {
	t.Helper()
	tree, err := imdstest.ParseFixture(imdstest.DefaultFixture)
	if err != nil {
		t.Fatal(err)
	}
	emu := imdstest.New(tree, imdstest.Options{})
	ts := httptest.NewServer(emu)
	t.Cleanup(func() { emu.Close(); ts.Close() })
	setRole(emu, creds, expires)
	c, err := imds.New(imds.Options{Endpoint: ts.URL})
	if err != nil {
		t.Fatal(err)
	}
	return emu, c
}

func setRole(emu *imdstest.Server, c Credentials, expires time.Time) {
	emu.Set("meta-data/iam/security-credentials/web-role", []byte(fmt.Sprintf(
		`{"Code": "Success", "Type": "AWS-HMAC", "AccessKeyId": %q, "SecretAccessKey": %q, "Token": %q, "Expiration": %q}`,
		c.AccessKeyID, c.SecretAccessKey, c.SessionToken, expires.UTC().Format(time.RFC3339))))
}

// versitygw refuses session tokens (InvalidToken), so the role here has
// none: the role's path (metadata, the credentials document, signing) is
// proven against the real server, and the token's against the SDK's
// signer (sigv4_test.go).
func TestTheInstanceRoleSignsRequestsToARealS3Server(t *testing.T) {
	s := startS3(t)
	tree := makeTree(t, t.TempDir())
	pub, res := s.publish(t, tree, rel)
	s.env(t, Credentials{}) // no keys in the environment: the role's are used
	_, md := roleEmulator(t, s.creds, time.Now().Add(time.Hour))
	root := t.TempDir()
	out, err := Ensure(context.Background(), Options{
		Root: root, Release: rel, Depmod: fakeDepmod, Metadata: md,
		Config:      Config{Manifest: "s3://" + s3Bucket + "/manifest.json", PublicKey: hex.EncodeToString(pub), S3Region: s3Region},
		Credentials: DefaultCredentials(md),
	})
	if err != nil {
		t.Fatalf("%v\nserver log: %s", err, s.log)
	}
	if out.Record == nil || out.Record.SHA256 != res.SHA256 {
		t.Fatalf("outcome %+v", out)
	}
}

func TestRoleCredentialsAreRefreshedBeforeTheyExpire(t *testing.T) {
	first := Credentials{AccessKeyID: "ASIAFIRST", SecretAccessKey: "s1", SessionToken: "t1"}
	emu, md := roleEmulator(t, first, time.Now().Add(time.Hour))
	cp := RoleCredentials(md)
	ctx := context.Background()
	get := func() string {
		t.Helper()
		c, err := cp.Retrieve(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return c.AccessKeyID
	}
	if got := get(); got != "ASIAFIRST" {
		t.Fatalf("first retrieval: %s", got)
	}
	// Valid for an hour: kept, the metadata is not read again.
	setRole(emu, Credentials{AccessKeyID: "ASIASECOND", SecretAccessKey: "s2", SessionToken: "t2"}, time.Now().Add(4*time.Minute))
	if got := get(); got != "ASIAFIRST" {
		t.Fatalf("credentials valid for an hour were fetched again: %s", got)
	}
	// Once within five minutes of expiry they are replaced.
	c := cp.(*credentialsCache)
	c.mu.Lock()
	c.creds.Expires = time.Now().Add(2 * time.Minute)
	c.mu.Unlock()
	if got := get(); got != "ASIASECOND" {
		t.Fatalf("credentials about to expire were kept: %s", got)
	}
	// The new ones expire in four minutes: each use fetches again.
	setRole(emu, Credentials{AccessKeyID: "ASIATHIRD", SecretAccessKey: "s3", SessionToken: "t3"}, time.Now().Add(time.Hour))
	if got := get(); got != "ASIATHIRD" {
		t.Fatalf("short-lived credentials were kept: %s", got)
	}
}

// TestDebianKernelPackageInstallsThroughS3 is the vendor workflow end to
// end, with the flint binary for the vendor's steps: Debian's cloud-kernel
// package packed (from the .deb itself), a key made and the manifest
// signed, all uploaded to a real S3 server, and installed on an instance
// root through s3:// with the environment's keys; the index the bundle
// carries is used, and modules.dep is what depmod -b makes of the package.
func TestDebianKernelPackageInstallsThroughS3(t *testing.T) {
	k, deb, want := needRealPackage(t)
	flint := testenv.FlintBinary(t)
	dir := t.TempDir()
	vendor := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(flint, append([]string{"modules"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("flint modules %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	manifest, bundle := filepath.Join(dir, "manifest.json"), filepath.Join(dir, k.release+".tar.zst")
	vendor("keygen", "--out", filepath.Join(dir, "vendor"))
	if out := vendor("pack", "--manifest", manifest, "--url", "bundles/"+k.release+".tar.zst", "-o", bundle, deb); !strings.Contains(out, "release "+k.release+", arch amd64") {
		t.Fatalf("pack said: %s", out)
	}
	vendor("sign", "--key", filepath.Join(dir, "vendor.key"), manifest)
	m, err := ParseManifest(readFile(t, manifest))
	if err != nil || len(m.Bundles) != 1 {
		t.Fatalf("manifest %+v %v", m, err)
	}
	s := startS3(t)
	s.put(t, s3Bucket, "bundles/"+k.release+".tar.zst", readFile(t, bundle))
	s.put(t, s3Bucket, "manifest.json", readFile(t, manifest))
	s.put(t, s3Bucket, "manifest.json.sig", readFile(t, manifest+".sig"))
	s.env(t, s.creds)
	root := t.TempDir()
	out, err := Ensure(context.Background(), Options{
		Root: root, Release: k.release,
		Config:      Config{Manifest: "s3://" + s3Bucket + "/manifest.json", PublicKey: string(readFile(t, filepath.Join(dir, "vendor.pub"))), S3Region: s3Region},
		Credentials: DefaultCredentials(nil),
	})
	if err != nil {
		t.Fatalf("%v\nserver log: %s", err, s.log)
	}
	if out.Record == nil || out.Record.SHA256 != m.Bundles[0].SHA256 || out.Record.Files < 1000 || out.Record.Index != IndexBundle {
		t.Fatalf("outcome %+v", out)
	}
	if got := readFile(t, filepath.Join(root, "lib/modules", k.release, "modules.dep")); !bytes.Equal(got, want) {
		t.Fatalf("modules.dep differs from depmod -b on the package (%d vs %d bytes)", len(got), len(want))
	}
}
