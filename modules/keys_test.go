package modules

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flint-dev/flint/internal/testenv"
)

var testManifest = []byte(`{"bundles": [{"release": "6.1.0-99-cloud-amd64", "url": "b.tar.zst", "sha256": "` + strings.Repeat("a", 64) + `"}]}`)

func runTool(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(testenv.Tool(t, name), args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

func TestKeysMadeByOpensslSignAndVerifyBothWays(t *testing.T) {
	dir := t.TempDir()
	key, pub, msg := filepath.Join(dir, "k.pem"), filepath.Join(dir, "k.pub"), filepath.Join(dir, "manifest.json")
	runTool(t, "openssl", "genpkey", "-algorithm", "ed25519", "-out", key)
	runTool(t, "openssl", "pkey", "-in", key, "-pubout", "-out", pub)
	os.WriteFile(msg, testManifest, 0o644)

	priv, err := ParsePrivateKey(readFile(t, key))
	if err != nil {
		t.Fatal(err)
	}
	pk, err := ParsePublicKey(string(readFile(t, pub)))
	if err != nil {
		t.Fatal(err)
	}
	if !pk.Equal(priv.Public()) {
		t.Fatal("the PEM public key is not the private key's")
	}
	// flint signs, openssl verifies.
	sig := SignManifest(testManifest, priv)
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(sig)))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "flint.sig"), raw, 0o644)
	runTool(t, "openssl", "pkeyutl", "-verify", "-pubin", "-inkey", pub, "-rawin", "-in", msg, "-sigfile", filepath.Join(dir, "flint.sig"))
	// openssl signs, flint verifies the raw signature file as it is.
	runTool(t, "openssl", "pkeyutl", "-sign", "-inkey", key, "-rawin", "-in", msg, "-out", filepath.Join(dir, "openssl.sig"))
	if err := VerifyManifest(testManifest, readFile(t, filepath.Join(dir, "openssl.sig")), string(readFile(t, pub))); err != nil {
		t.Fatalf("openssl's signature: %v", err)
	}
	if err := VerifyManifest(append(testManifest, ' '), sig, string(readFile(t, pub))); err == nil {
		t.Fatal("a changed manifest verifies")
	}
}

func TestKeysMadeBySSHKeygenAreRead(t *testing.T) {
	dir := t.TempDir()
	id := filepath.Join(dir, "id")
	runTool(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "vendor", "-f", id)
	priv, err := ParsePrivateKey(readFile(t, id))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ParsePublicKey(string(readFile(t, id+".pub")))
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyManifest(testManifest, SignManifest(testManifest, priv), string(readFile(t, id+".pub"))); err != nil || !pub.Equal(priv.Public()) {
		t.Fatalf("OpenSSH pair: %v", err)
	}

	runTool(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "secret", "-f", id+"-enc")
	if _, err := ParsePrivateKey(readFile(t, id+"-enc")); err == nil || !strings.Contains(err.Error(), "encrypted") {
		t.Fatalf("an encrypted key: %v", err)
	}
	runTool(t, "ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", id+"-rsa")
	if _, err := ParsePublicKey(string(readFile(t, id+"-rsa.pub"))); err == nil || !strings.Contains(err.Error(), "not ssh-ed25519") {
		t.Fatalf("an RSA key: %v", err)
	}
}

func TestGeneratedKeysAreWhatOpensslReads(t *testing.T) {
	dir := t.TempDir()
	privPEM, pubPEM, pub, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "k.key"), privPEM, 0o600)
	out, err := exec.Command(testenv.Tool(t, "openssl"), "pkey", "-in", filepath.Join(dir, "k.key"), "-pubout").Output()
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != string(pubPEM) {
		t.Fatalf("openssl derives\n%s\nflint wrote\n%s", out, pubPEM)
	}
	if k, err := ParsePublicKey(string(pubPEM)); err != nil || !k.Equal(pub) {
		t.Fatalf("%v", err)
	}
}

func TestRawKeysAreReadInHexAndBase64(t *testing.T) {
	seed := make([]byte, 32)
	for i := range seed {
		seed[i] = byte(i)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	pub := priv.Public().(ed25519.PublicKey)
	for name, s := range map[string]string{
		"hex": hex.EncodeToString(pub), "base64": base64.StdEncoding.EncodeToString(pub),
		"url-safe base64 without padding": base64.RawURLEncoding.EncodeToString(pub),
	} {
		if k, err := ParsePublicKey(" " + s + "\n"); err != nil || !k.Equal(pub) {
			t.Errorf("public key in %s: %v", name, err)
		}
	}
	for name, s := range map[string]string{"seed in hex": hex.EncodeToString(seed), "64 bytes in base64": base64.StdEncoding.EncodeToString(priv)} {
		if k, err := ParsePrivateKey([]byte(s)); err != nil || !k.Equal(priv) {
			t.Errorf("private key as %s: %v", name, err)
		}
	}
	broken := append(ed25519.PrivateKey{}, priv...)
	broken[40] ^= 1
	if _, err := ParsePrivateKey([]byte(hex.EncodeToString(broken))); err == nil {
		t.Error("a 64-byte key with the wrong public half is accepted")
	}
	if _, err := ParsePublicKey("c2hvcnQ="); err == nil || !strings.Contains(err.Error(), "not a PEM, OpenSSH or raw") {
		t.Errorf("a short key: %v", err)
	}
}

func TestConfigValidateNamesEachProblem(t *testing.T) {
	_, pubPEM, _, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	good := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name string
		cfg  Config
		want string // "" for valid
	}{
		{"a signed s3 manifest with a PEM key is valid", Config{Manifest: "s3://b/m.json", PublicKey: string(pubPEM), S3Region: "eu-west-1", S3Endpoint: "http://127.0.0.1:7070"}, ""},
		{"a pinned URL template is valid", Config{URL: "https://x/{release}-{arch}.tar.zst", SHA256: good, Format: "zst", Load: []string{"ena"}}, ""},
		{"a key that is not one is named", Config{Manifest: "https://x/m", PublicKey: "not-a-key"}, "modules.public_key: not a PEM, OpenSSH or raw"},
		{"a short digest is named", Config{URL: "https://x/b", SHA256: "abc"}, "modules.sha256:"},
		{"an unknown scheme is named", Config{Manifest: "ftp://x/m"}, `modules.manifest: ftp://x/m: unsupported scheme "ftp"`},
		{"an s3 URL without a key is named", Config{URL: "s3://bucket"}, "want s3://bucket/key"},
		{"an unknown placeholder is named", Config{URL: "https://x/{kernel}.tgz"}, "modules.url: URL template"},
		{"plain http without a pin is refused", Config{Manifest: "http://x/m"}, "plain http:// needs public_key or manifest_sha256"},
		{"a key without a manifest is named", Config{URL: "https://x/b", SHA256: good, PublicKey: string(pubPEM)}, "modules.public_key: set, but there is no manifest"},
		{"a bad format is named", Config{URL: "https://x/b", SHA256: good, Format: "rar"}, "modules.format:"},
		{"a bad region is named", Config{Manifest: "s3://b/m", S3Region: "Ireland"}, `modules.s3_region: "Ireland"`},
		{"an endpoint without scheme is named", Config{Manifest: "s3://b/m", S3Endpoint: "127.0.0.1:7070"}, "modules.s3_endpoint:"},
		{"a module path is named", Config{Load: []string{"../x"}}, `modules.load: "../x"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func TestRegionPlaceholderPicksTheRegionsBucket(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "eu-west-1"), 0o755)
	os.WriteFile(filepath.Join(dir, "eu-west-1", "manifest.json"), testManifest, 0o644)
	f := &Fetcher{Region: "eu-west-1"}
	k := Kernel{Release: "6.1.0-99-cloud-amd64", Machine: "x86_64"}
	b, err := Resolve(context.Background(), f, Config{Manifest: "file://" + dir + "/{region}/manifest.json"}, k)
	if err != nil || b.URL != "file://"+dir+"/eu-west-1/b.tar.zst" {
		t.Fatalf("bundle %+v, %v", b, err)
	}
	if _, err := Resolve(context.Background(), &Fetcher{}, Config{Manifest: "s3://kernels-{region}/m.json"}, k); err == nil || !strings.Contains(err.Error(), "region is unknown") {
		t.Fatalf("no region: %v", err)
	}
	if err := (Config{URL: "s3://kernels-{region}/{release}.tar.zst"}).Validate(); err != nil {
		t.Fatalf("a {region} template is valid: %v", err)
	}
}
