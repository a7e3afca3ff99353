package modules

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flint-dev/flint/imds"
)

func TestManifestEntriesAreChosenByReleaseAndKernelID(t *testing.T) {
	sha := func(c byte) string { return strings.Repeat(string(c), 64) }
	m := &Manifest{Bundles: []ManifestEntry{
		{Release: "6.1.0-1-cloud-amd64", URL: "r1", SHA256: sha('1')},
		{Release: "6.1.0-1-cloud-amd64", KernelID: "aki-special", URL: "r1-special", SHA256: sha('2')},
		{KernelID: "aki-only", URL: "kid", SHA256: sha('3')},
		{Release: "6.1.0-2-cloud-amd64", Arch: "amd64", URL: "r2-amd64", SHA256: sha('4')},
		{Release: "6.1.0-2-cloud-amd64", Arch: "arm64", URL: "r2-arm64", SHA256: sha('5')},
		{Release: "6.1.0-3", URL: "dup-a", SHA256: sha('6')},
		{Release: "6.1.0-3", URL: "dup-b", SHA256: sha('7')},
	}}
	for _, tc := range []struct {
		name string
		k    Kernel
		want string
		err  string
	}{
		{"the release alone picks its entry", Kernel{Release: "6.1.0-1-cloud-amd64"}, "r1", ""},
		{"release and kernel-id beat release alone", Kernel{Release: "6.1.0-1-cloud-amd64", KernelID: "aki-special"}, "r1-special", ""},
		{"another kernel-id falls back to the release entry", Kernel{Release: "6.1.0-1-cloud-amd64", KernelID: "aki-other"}, "r1", ""},
		{"a kernel-id entry applies to any release", Kernel{Release: "5.4.0", KernelID: "aki-only"}, "kid", ""},
		{"the architecture narrows the choice", Kernel{Release: "6.1.0-2-cloud-amd64", Machine: "aarch64"}, "r2-arm64", ""},
		{"an unknown release has no bundle", Kernel{Release: "9.9"}, "", "no entry for release 9.9"},
		{"two equal entries are ambiguous", Kernel{Release: "6.1.0-3"}, "", "several entries"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := m.Find(tc.k)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %+v, %v; want %q", e, err, tc.err)
				}
				return
			}
			if err != nil || e.URL != tc.want {
				t.Fatalf("got %+v, %v; want %s", e, err, tc.want)
			}
		})
	}
}

func TestManifestDecodingIsStrict(t *testing.T) {
	for name, doc := range map[string]string{
		"an unknown field is refused":       `{"bundles":[{"release":"r","url":"u","sha256":"` + strings.Repeat("a", 64) + `","sha":"x"}]}`,
		"an entry without a digest refused": `{"bundles":[{"release":"r","url":"u"}]}`,
		"an entry matching nothing refused": `{"bundles":[{"url":"u","sha256":"` + strings.Repeat("a", 64) + `"}]}`,
		"an entry without a url is refused": `{"bundles":[{"release":"r","sha256":"` + strings.Repeat("a", 64) + `"}]}`,
		"not JSON is refused":               `bundles: []`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseManifest([]byte(doc)); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

// manifestServer serves a manifest, its signature and a bundle on 127.0.0.1.
func manifestServer(t *testing.T, files map[string][]byte) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestSignedManifestResolvesAndInstalls(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	body := compress(t, FormatTarZst, makeTar(t, goodTree(rel, "new")))
	manifest := []byte(fmt.Sprintf(`{"bundles":[{"release":%q,"url":"bundles/m.tar.zst","sha256":%q,"size":%d,"format":"tar.zst"}]}`, rel, digest(body), len(body)))
	k := Kernel{Release: rel, Machine: "x86_64"}
	for _, tc := range []struct {
		name string
		sig  []byte
		cfg  func(c *Config)
		err  string
	}{
		{name: "a good raw signature verifies", sig: ed25519.Sign(priv, manifest)},
		{name: "a good base64 signature verifies", sig: []byte(base64.StdEncoding.EncodeToString(ed25519.Sign(priv, manifest)) + "\n")},
		{name: "a signature by another key is refused", sig: ed25519.Sign(otherPriv, manifest), err: "does not verify"},
		{name: "a missing signature is refused", sig: nil, err: "HTTP 404"},
		{name: "a pinned manifest digest replaces the signature", sig: nil, cfg: func(c *Config) { c.PublicKey, c.ManifestSHA256 = "", digest(manifest) }},
		{name: "a wrong pinned manifest digest is refused", sig: nil, cfg: func(c *Config) { c.PublicKey, c.ManifestSHA256 = "", digest([]byte("x")) }, err: "does not match the pinned"},
		{name: "an unsigned plain-http manifest is refused", sig: nil, cfg: func(c *Config) { c.PublicKey = "" }, err: "needs a public_key or manifest_sha256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string][]byte{"/m/manifest.json": manifest, "/m/bundles/m.tar.zst": body}
			if tc.sig != nil {
				files["/m/manifest.json.sig"] = tc.sig
			}
			srv := manifestServer(t, files)
			cfg := Config{Manifest: srv.URL + "/m/manifest.json", PublicKey: hex.EncodeToString(pub)}
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			f := fastFetcher(srv)
			b, err := Resolve(context.Background(), f, cfg, k)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %+v, %v; want %q", b, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if b.URL != srv.URL+"/m/bundles/m.tar.zst" || !b.Pinned || b.Format != FormatTarZst || b.Size != int64(len(body)) {
				t.Fatalf("resolved %+v", b)
			}
			if _, err := httpInstall(t, f, b); err != nil {
				t.Fatalf("install the resolved bundle: %v", err)
			}
		})
	}
}

func TestURLTemplateTakesTheDigestFromBesideTheBundleOrConfig(t *testing.T) {
	body := compress(t, FormatTarGz, makeTar(t, goodTree(rel, "new")))
	dir := t.TempDir()
	name := filepath.Join(dir, rel+"-amd64.tar.gz")
	os.WriteFile(name, body, 0o644)
	os.WriteFile(name+".sha256", []byte(digest(body)+"  "+filepath.Base(name)+"\n"), 0o644)
	k := Kernel{Release: rel, Machine: "x86_64", KernelID: "aki-1"}

	b, err := Resolve(context.Background(), &Fetcher{}, Config{URL: "file://" + dir + "/{release}-{arch}.tar.gz"}, k)
	if err != nil || b.SHA256 != digest(body) || b.URL != "file://"+name || b.Pinned {
		t.Fatalf("from the side file: %+v, %v", b, err)
	}
	b, err = Resolve(context.Background(), &Fetcher{}, Config{URL: "http://127.0.0.1:1/{kernel_id}.tar.gz", SHA256: digest(body)}, k)
	if err != nil || !b.Pinned || b.URL != "http://127.0.0.1:1/aki-1.tar.gz" {
		t.Fatalf("pinned: %+v, %v", b, err)
	}
	if _, err := Resolve(context.Background(), &Fetcher{}, Config{URL: "http://127.0.0.1:1/{release}.tar.gz"}, k); err == nil || !strings.Contains(err.Error(), "pinned") {
		t.Fatalf("an unpinned http template must be refused before any request: %v", err)
	}
	if _, err := ExpandTemplate("https://x/{kernel_id}", Kernel{Release: rel}); err == nil {
		t.Fatal("{kernel_id} without a kernel-id expanded")
	}
	if _, err := ExpandTemplate("https://x/{relase}.tar", k); err == nil {
		t.Fatal("a misspelt placeholder expanded")
	}
	if _, err := Resolve(context.Background(), &Fetcher{}, Config{}, k); !errors.Is(err, ErrNoBundle) {
		t.Fatalf("empty config: %v", err)
	}
}

func TestFormatsAreNamedByExtensionAndByContent(t *testing.T) {
	for in, want := range map[string]Format{
		"x.tar.gz": FormatTarGz, "x.tgz": FormatTarGz, "tar.zst": FormatTarZst, "zstd": FormatTarZst,
		"X.TAR.XZ": FormatTarXz, "plain.tar": FormatTar, "": "",
	} {
		if got, err := ParseFormat(in); err != nil || got != want {
			t.Errorf("ParseFormat(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseFormat("x.zip"); err == nil {
		t.Error("zip accepted")
	}
	if got := FormatFromURL("https://h/p/b.tar.zst?X-Amz-Signature=s"); got != FormatTarZst {
		t.Errorf("FormatFromURL with a query = %q", got)
	}
}

// fakeMetadata answers from a map; absent keys are imds.ErrNotFound.
type fakeMetadata map[string]string

func (m fakeMetadata) Get(_ context.Context, p string) ([]byte, error) {
	v, ok := m[p]
	if !ok {
		return nil, fmt.Errorf("GET %s: %w", p, imds.ErrNotFound)
	}
	if v == "!fail" {
		return nil, errors.New("connection refused")
	}
	return []byte(v), nil
}

func TestDetectReadsUnameAndOptionalMetadata(t *testing.T) {
	r, m, err := Uname()
	if err != nil || r == "" || m == "" {
		t.Fatalf("uname: %q %q %v", r, m, err)
	}
	k, err := Detect(context.Background(), fakeMetadata{"meta-data/kernel-id": "aki-123\n"})
	if err != nil || k.Release != r || k.KernelID != "aki-123" || k.RamdiskID != "" {
		t.Fatalf("detect: %+v, %v", k, err)
	}
	if _, err := Detect(context.Background(), fakeMetadata{"meta-data/kernel-id": "!fail"}); err == nil {
		t.Fatal("a metadata failure other than 404 was ignored")
	}
}

func TestRoleCredentialsComeFromMetadataAndNeverEchoSecrets(t *testing.T) {
	const credsPath = "meta-data/iam/security-credentials/"
	md := fakeMetadata{
		credsPath:             "builder\n",
		credsPath + "builder": `{"Code":"Success","AccessKeyId":"ASIAX","SecretAccessKey":"s3cr3t","Token":"tok","Expiration":"2030-01-01T00:00:00Z"}`,
	}
	c, err := RoleCredentials(md).Retrieve(context.Background())
	if err != nil || c.AccessKeyID != "ASIAX" || c.SecretAccessKey != "s3cr3t" || c.SessionToken != "tok" || !c.Expires.Equal(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("got %+v, %v", c, err)
	}
	md[credsPath+"builder"] = `{"SecretAccessKey":"s3cr3t", broken`
	_, err = roleProvider{md}.Retrieve(context.Background())
	if err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("bad document: %v", err)
	}
	if _, err := (roleProvider{fakeMetadata{}}).Retrieve(context.Background()); err == nil || !strings.Contains(err.Error(), "no IAM role") {
		t.Fatalf("no role: %v", err)
	}
}
