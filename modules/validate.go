package modules

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"sync"
)

var s3RegionRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d+$`) })

// Validate checks the section as far as it can without the network: URL
// schemes, placeholders, digests, the public key, the format, the region
// and endpoint, module names. "flint config check" calls it so a typo is
// found before a boot needs the bundle. It reports every problem, one per
// line.
func (c Config) Validate() error {
	// {region} is filled in before anything else (see Resolve).
	if err := expandRegion(&c, "eu-west-1"); err != nil {
		return err
	}
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("modules.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.Manifest != "" {
		if err := checkScheme(c.Manifest); err != nil {
			bad("manifest", "%v", err)
		} else if strings.HasPrefix(c.Manifest, "http:") && c.PublicKey == "" && c.ManifestSHA256 == "" {
			bad("manifest", "plain http:// needs public_key or manifest_sha256")
		}
	}
	if c.ManifestSHA256 != "" {
		if _, err := normDigest(c.ManifestSHA256); err != nil {
			bad("manifest_sha256", "%v", err)
		}
		if c.Manifest == "" {
			bad("manifest_sha256", "set, but there is no manifest")
		}
	}
	if c.PublicKey != "" {
		if _, err := ParsePublicKey(c.PublicKey); err != nil {
			bad("public_key", "%v", err)
		}
		if c.Manifest == "" {
			bad("public_key", "set, but there is no manifest to verify (bundles from url are pinned by sha256)")
		}
	}
	if c.SignatureURL != "" {
		if err := checkScheme(c.SignatureURL); err != nil {
			bad("signature_url", "%v", err)
		}
		if c.PublicKey == "" {
			bad("signature_url", "set, but there is no public_key to verify it with")
		}
	}
	if c.URL != "" {
		if err := checkScheme(c.URL); err != nil {
			bad("url", "%v", err)
		} else if _, err := ExpandTemplate(c.URL, Kernel{Release: "r", Machine: "x86_64", KernelID: "aki-0"}); err != nil {
			bad("url", "%v (placeholders: {release} {arch} {machine} {kernel_id})", err)
		} else if strings.HasPrefix(c.URL, "http:") && c.SHA256 == "" {
			bad("url", "plain http:// needs sha256 pinned")
		}
	}
	if c.SHA256 != "" {
		if _, err := normDigest(c.SHA256); err != nil {
			bad("sha256", "%v", err)
		}
		if c.URL == "" {
			bad("sha256", "set, but there is no url")
		}
	}
	if _, err := ParseFormat(c.Format); err != nil {
		bad("format", "%v", err)
	}
	if c.S3Region != "" && !s3RegionRE().MatchString(c.S3Region) {
		bad("s3_region", "%q is not a region name like eu-west-1", c.S3Region)
	}
	if c.S3Endpoint != "" {
		u, err := url.Parse(c.S3Endpoint)
		switch {
		case err != nil:
			bad("s3_endpoint", "%v", err)
		case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
			bad("s3_endpoint", "%q: want http(s)://host[:port]", c.S3Endpoint)
		case u.RawQuery != "" || u.User != nil:
			bad("s3_endpoint", "%q: no query or user info", redactURL(c.S3Endpoint))
		}
	}
	for _, m := range c.Load {
		if m == "" || strings.ContainsAny(m, "/ \t\x00") {
			bad("load", "%q is not a module name", m)
		}
	}
	return errors.Join(errs...)
}

// checkScheme accepts the schemes Fetcher reads.
func checkScheme(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q: %w", redactURL(raw), err)
	}
	switch u.Scheme {
	case "https", "http", "file":
	case "s3":
		if u.Host == "" || strings.Trim(u.Path, "/") == "" {
			return fmt.Errorf("%s: want s3://bucket/key", redactURL(raw))
		}
	case "":
		return fmt.Errorf("%q is not a URL (want https://, s3://, file:// or http:// with a pinned digest)", redactURL(raw))
	default:
		return fmt.Errorf("%s: unsupported scheme %q (want https, s3, file or http)", redactURL(raw), u.Scheme)
	}
	return nil
}
