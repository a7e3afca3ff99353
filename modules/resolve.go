package modules

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Config is the "modules:" section of flint's configuration.
type Config struct {
	// Manifest is the URL of a JSON manifest (see Manifest).
	Manifest string `yaml:"manifest" json:"manifest,omitempty"`
	// ManifestSHA256 pins the manifest's digest.
	ManifestSHA256 string `yaml:"manifest_sha256" json:"manifest_sha256,omitempty"`
	// PublicKey is an ed25519 public key (PEM, OpenSSH, or 32 bytes in
	// base64 or hex; see ParsePublicKey); when set, the manifest must
	// carry a valid signature at SignatureURL.
	PublicKey string `yaml:"public_key" json:"public_key,omitempty"`
	// SignatureURL defaults to Manifest + ".sig"; the file holds the 64-byte
	// signature over the manifest's bytes, raw, base64 or hex.
	SignatureURL string `yaml:"signature_url" json:"signature_url,omitempty"`

	// URL is a bundle URL template with {release}, {arch} and {kernel_id},
	// used when there is no manifest.
	URL string `yaml:"url" json:"url,omitempty"`
	// SHA256 pins the bundle digest for URL; without it the digest is read
	// from URL + ".sha256" (not over plain HTTP).
	SHA256 string `yaml:"sha256" json:"sha256,omitempty"`
	// Format overrides the format guessed from the URL.
	Format string `yaml:"format" json:"format,omitempty"`

	// S3Region is the region of s3:// URLs (default: $AWS_REGION, else
	// the instance's).
	S3Region string `yaml:"s3_region" json:"s3_region,omitempty"`
	// S3Endpoint is an S3-compatible endpoint (http(s)://host[:port]) that
	// s3:// URLs go to, path-style; $AWS_ENDPOINT_URL_S3 and
	// $AWS_ENDPOINT_URL take precedence, as in the AWS SDKs.
	S3Endpoint string `yaml:"s3_endpoint" json:"s3_endpoint,omitempty"`
	// Load lists modules to load once installed.
	Load []string `yaml:"load" json:"load,omitempty"`
}

// Manifest lists bundles. An entry applies when each of its release and
// kernel_id fields that is set matches the instance; an entry matching both
// wins over one matching only one.
//
//	{"bundles": [{"release": "6.1.0-56-cloud-amd64", "kernel_id": "aki-…",
//	  "url": "https://…/6.1.0-56-cloud-amd64.tar.zst", "sha256": "…",
//	  "size": 21660469, "format": "tar.zst"}]}
type Manifest struct {
	Bundles []ManifestEntry `json:"bundles"`
}

// ManifestEntry is one bundle of a Manifest.
type ManifestEntry struct {
	Release  string `json:"release,omitempty"`
	KernelID string `json:"kernel_id,omitempty"`
	Arch     string `json:"arch,omitempty"`
	URL      string `json:"url"`
	SHA256   string `json:"sha256"`
	Size     int64  `json:"size,omitempty"`
	Format   string `json:"format,omitempty"`
}

// Kernel identifies the kernel a bundle must match.
type Kernel struct {
	Release   string `json:"release"`
	Machine   string `json:"machine"`              // uname machine: x86_64, aarch64
	KernelID  string `json:"kernel_id,omitempty"`  // meta-data/kernel-id, "" when absent
	RamdiskID string `json:"ramdisk_id,omitempty"` // meta-data/ramdisk-id, "" when absent
}

// Arch is the Debian-style architecture name of the machine, as bundle
// names use it.
func (k Kernel) Arch() string {
	switch k.Machine {
	case "x86_64":
		return "amd64"
	case "aarch64":
		return "arm64"
	}
	return k.Machine
}

// expandRegion substitutes {region} in the manifest, signature and bundle
// URLs: one configuration in every image, a bucket per region.
func expandRegion(cfg *Config, region string) error {
	for _, p := range []*string{&cfg.Manifest, &cfg.SignatureURL, &cfg.URL} {
		if !strings.Contains(*p, "{region}") {
			continue
		}
		if region == "" {
			return fmt.Errorf("%s uses {region} but the region is unknown (set modules.s3_region)", redactURL(*p))
		}
		*p = strings.ReplaceAll(*p, "{region}", url.PathEscape(region))
	}
	return nil
}

// ErrNoBundle means the configuration names no bundle for this kernel.
var ErrNoBundle = errors.New("no module bundle configured for this kernel")

const maxSideFile = 4 << 20

// Resolve finds the bundle for k from cfg: the manifest when set, else the
// URL template.
func Resolve(ctx context.Context, f *Fetcher, cfg Config, k Kernel) (Bundle, error) {
	if err := expandRegion(&cfg, f.Region); err != nil {
		return Bundle{}, err
	}
	switch {
	case cfg.Manifest != "":
		return resolveManifest(ctx, f, cfg, k)
	case cfg.URL != "":
		return resolveTemplate(ctx, f, cfg, k)
	}
	return Bundle{}, ErrNoBundle
}

func resolveManifest(ctx context.Context, f *Fetcher, cfg Config, k Kernel) (Bundle, error) {
	trusted := cfg.PublicKey != "" || cfg.ManifestSHA256 != ""
	if strings.HasPrefix(cfg.Manifest, "http:") && !trusted {
		return Bundle{}, fmt.Errorf("manifest %s: plain http:// needs a public_key or manifest_sha256", redactURL(cfg.Manifest))
	}
	raw, err := f.Get(ctx, cfg.Manifest, maxSideFile, trusted)
	if err != nil {
		return Bundle{}, fmt.Errorf("fetch manifest: %w", err)
	}
	if cfg.ManifestSHA256 != "" {
		want, err := normDigest(cfg.ManifestSHA256)
		if err != nil {
			return Bundle{}, fmt.Errorf("modules.manifest_sha256: %w", err)
		}
		if got := sha256Hex(raw); got != want {
			return Bundle{}, fmt.Errorf("manifest %s: sha256 %s does not match the pinned %s", redactURL(cfg.Manifest), got, want)
		}
	}
	if cfg.PublicKey != "" {
		sigURL := cfg.SignatureURL
		if sigURL == "" {
			sigURL = sideURL(cfg.Manifest, ".sig")
		}
		sig, err := f.Get(ctx, sigURL, 4096, true)
		if err != nil {
			return Bundle{}, fmt.Errorf("fetch manifest signature: %w", err)
		}
		if err := VerifyManifest(raw, sig, cfg.PublicKey); err != nil {
			return Bundle{}, fmt.Errorf("manifest %s: %w", redactURL(cfg.Manifest), err)
		}
	}
	m, err := ParseManifest(raw)
	if err != nil {
		return Bundle{}, fmt.Errorf("manifest %s: %w", redactURL(cfg.Manifest), err)
	}
	e, err := m.Find(k)
	if err != nil {
		return Bundle{}, err
	}
	format, err := ParseFormat(e.Format)
	if err != nil {
		return Bundle{}, fmt.Errorf("manifest entry for %s: %w", k.Release, err)
	}
	u, err := resolveRef(cfg.Manifest, e.URL)
	if err != nil {
		return Bundle{}, fmt.Errorf("manifest entry for %s: %w", k.Release, err)
	}
	// A bundle digest from a manifest that arrived over TLS only is as
	// good as TLS; from a signed or pinned one it is pinned.
	return Bundle{URL: u, SHA256: e.SHA256, Size: e.Size, Format: format, Pinned: trusted}, nil
}

// sideURL names a side file of u (its ".sig" or ".sha256"): the suffix
// goes on the path, before any query string.
func sideURL(u, suffix string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i] + suffix + u[i:]
	}
	return u + suffix
}

// resolveRef lets manifest entries name bundles relative to the manifest.
func resolveRef(base, ref string) (string, error) {
	r, err := url.Parse(ref)
	if err != nil {
		return "", fmt.Errorf("bundle URL %q: %w", redactURL(ref), err)
	}
	if r.IsAbs() {
		return ref, nil
	}
	b, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	return b.ResolveReference(r).String(), nil
}

// ParseManifest decodes a manifest strictly: unknown fields are errors, so
// a typo does not silently drop a constraint.
func ParseManifest(raw []byte) (*Manifest, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	for i, e := range m.Bundles {
		if e.URL == "" {
			return nil, fmt.Errorf("bundle %d has no url", i)
		}
		if _, err := normDigest(e.SHA256); err != nil {
			return nil, fmt.Errorf("bundle %d (%s): %w", i, redactURL(e.URL), err)
		}
		if e.Release == "" && e.KernelID == "" {
			return nil, fmt.Errorf("bundle %d (%s) has neither release nor kernel_id", i, redactURL(e.URL))
		}
	}
	return &m, nil
}

// Find picks the entry for k: every set field must match, and the entry
// matching the most fields wins; two equally good entries are ambiguous.
func (m *Manifest) Find(k Kernel) (ManifestEntry, error) {
	best, bestScore, tie := -1, 0, false
	for i, e := range m.Bundles {
		score := 0
		if e.Release != "" {
			if e.Release != k.Release {
				continue
			}
			score++
		}
		if e.KernelID != "" {
			if e.KernelID != k.KernelID {
				continue
			}
			score++
		}
		if e.Arch != "" {
			if e.Arch != k.Arch() && e.Arch != k.Machine {
				continue
			}
			score++
		}
		switch {
		case score > bestScore:
			best, bestScore, tie = i, score, false
		case score == bestScore:
			tie = true
		}
	}
	if best < 0 {
		return ManifestEntry{}, fmt.Errorf("%w: the manifest has no entry for release %s (kernel-id %q)", ErrNoBundle, k.Release, k.KernelID)
	}
	if tie {
		return ManifestEntry{}, fmt.Errorf("the manifest has several entries for release %s (kernel-id %q); make them distinct", k.Release, k.KernelID)
	}
	return m.Bundles[best], nil
}

// VerifyManifest checks an ed25519 signature over the manifest's bytes.
func VerifyManifest(manifest, sig []byte, publicKey string) error {
	pub, err := ParsePublicKey(publicKey)
	if err != nil {
		return fmt.Errorf("modules.public_key: %w", err)
	}
	s := sig
	if len(s) != ed25519.SignatureSize {
		if s, err = decodeKey(string(sig), ed25519.SignatureSize); err != nil {
			return fmt.Errorf("signature: %w", err)
		}
	}
	if !ed25519.Verify(pub, manifest, s) {
		return errors.New("signature does not verify with the configured public key")
	}
	return nil
}

func decodeKey(s string, size int) ([]byte, error) {
	s = strings.TrimSpace(s)
	if b, err := hex.DecodeString(s); err == nil && len(b) == size {
		return b, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == size {
			return b, nil
		}
	}
	return nil, fmt.Errorf("want %d bytes in hex or base64", size)
}

// ExpandTemplate substitutes {release}, {arch}, {machine} and {kernel_id}
// (path-escaped) in a URL template.
func ExpandTemplate(tmpl string, k Kernel) (string, error) {
	if strings.Contains(tmpl, "{kernel_id}") && k.KernelID == "" {
		return "", fmt.Errorf("URL template %s uses {kernel_id} but the instance has no kernel-id", redactURL(tmpl))
	}
	r := strings.NewReplacer(
		"{release}", url.PathEscape(k.Release),
		"{arch}", url.PathEscape(k.Arch()),
		"{machine}", url.PathEscape(k.Machine),
		"{kernel_id}", url.PathEscape(k.KernelID),
	)
	out := r.Replace(tmpl)
	if i := strings.IndexByte(out, '{'); i >= 0 && strings.IndexByte(out[i:], '}') > 0 {
		return "", fmt.Errorf("URL template %s has an unknown placeholder", redactURL(tmpl))
	}
	return out, nil
}

func resolveTemplate(ctx context.Context, f *Fetcher, cfg Config, k Kernel) (Bundle, error) {
	u, err := ExpandTemplate(cfg.URL, k)
	if err != nil {
		return Bundle{}, err
	}
	format, err := ParseFormat(cfg.Format)
	if err != nil {
		return Bundle{}, fmt.Errorf("modules.format: %w", err)
	}
	b := Bundle{URL: u, Format: format}
	if cfg.SHA256 != "" {
		b.SHA256, b.Pinned = cfg.SHA256, true
		return b, nil
	}
	if strings.HasPrefix(u, "http:") {
		return Bundle{}, fmt.Errorf("bundle %s: plain http:// needs modules.sha256 pinned", redactURL(u))
	}
	side, err := f.Get(ctx, sideURL(u, ".sha256"), 4096, false)
	if err != nil {
		return Bundle{}, fmt.Errorf("fetch bundle digest: %w", err)
	}
	// sha256sum format ("<hex>  <name>") or the bare digest.
	fields := strings.Fields(string(side))
	if len(fields) == 0 {
		return Bundle{}, fmt.Errorf("bundle digest %s is empty", redactURL(sideURL(u, ".sha256")))
	}
	if _, err := normDigest(fields[0]); err != nil {
		return Bundle{}, fmt.Errorf("bundle digest %s: %w", redactURL(sideURL(u, ".sha256")), err)
	}
	b.SHA256 = fields[0]
	return b, nil
}
