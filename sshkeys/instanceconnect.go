package sshkeys

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ocsp"
)

// InstanceConnect is what verifying EC2 Instance Connect keys takes: the
// metadata served under managed-ssh-keys/ and the instance's identity.
// Verification follows aws-ec2-instance-connect-config's
// eic_parse_authorized_keys: the signer certificate's CN must be
// managed-ssh-signer.REGION.DOMAIN, its chain must lead to the trusted CA
// bundle, every certificate of the served chain not itself in the bundle
// needs a good OCSP staple signed by its issuer, and each key needs an
// RSA-PSS (SHA-256, 32-byte salt) signature by the signer over its "#…"
// header lines and key line, this instance's id and an unexpired
// timestamp.
type InstanceConnect struct {
	// Keys is managed-ssh-keys/active-keys/USER/.
	Keys []byte
	// SignerChain is managed-ssh-keys/signer-cert/ (PEM, signer first).
	SignerChain []byte
	// OCSP maps an upper-case hex SHA-1 certificate fingerprint to its DER
	// OCSP response (managed-ssh-keys/signer-ocsp/FP, base64-decoded).
	OCSP map[string][]byte
	// InstanceID is meta-data/instance-id.
	InstanceID string
	// AvailabilityZone and Domain give the expected signer name.
	AvailabilityZone string
	Domain           string
	// Roots is the trusted CA bundle.
	Roots *x509.CertPool
	// RootCerts are the bundle's certificates, to tell which served
	// certificates are already trusted.
	RootCerts []*x509.Certificate
}

// ocspLeeway tolerates clock skew in OCSP validity times.
const ocspLeeway = 5 * time.Minute

// Compiled on first use: most `flint ssh-keys` runs never verify a key.
var (
	instanceIDRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^i-[0-9a-f]{8,32}$`) })
	zoneRe       = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(([a-z]+-){2,3}[0-9])[a-z]$`) })
	domainRe     = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9.-]+$`) })
)

// ExpectedSigner returns the CN the signer certificate must carry.
func ExpectedSigner(zone, domain string) (string, error) {
	m := zoneRe().FindStringSubmatch(zone)
	if m == nil {
		return "", fmt.Errorf("availability zone %q is malformed", excerpt(zone, 40))
	}
	if !domainRe().MatchString(domain) {
		return "", fmt.Errorf("services/domain %q is malformed", excerpt(domain, 60))
	}
	return "managed-ssh-signer." + m[1] + "." + domain, nil
}

// Verify returns the keys that verify, and one line per key or block
// dropped. A signer that does not verify drops every key (err says why).
func (ic *InstanceConnect) Verify(now time.Time) (keys []Key, dropped []string, err error) {
	if !instanceIDRe().MatchString(ic.InstanceID) {
		return nil, nil, fmt.Errorf("instance id %q is malformed", excerpt(ic.InstanceID, 40))
	}
	signer, err := ic.verifySigner(now)
	if err != nil {
		return nil, nil, err
	}
	for _, blk := range splitBlocks(ic.Keys) {
		k, why := verifyBlock(blk, signer, ic.InstanceID, now)
		if why != "" {
			dropped = append(dropped, why)
			continue
		}
		keys = append(keys, k)
	}
	return keys, dropped, nil
}

// verifySigner checks the signer chain and returns the signer's key.
func (ic *InstanceConnect) verifySigner(now time.Time) (*rsa.PublicKey, error) {
	chain, err := pemCertificates(ic.SignerChain, true)
	if err != nil {
		return nil, fmt.Errorf("signer certificate chain: %w", err)
	}
	if len(chain) == 0 {
		return nil, errors.New("no signer certificate")
	}
	want, err := ExpectedSigner(ic.AvailabilityZone, ic.Domain)
	if err != nil {
		return nil, err
	}
	if chain[0].Subject.CommonName != want {
		return nil, fmt.Errorf("unrecognized signer certificate %q (want %q)", excerpt(chain[0].Subject.CommonName, 80), want)
	}
	if ic.Roots == nil {
		return nil, errors.New("no trusted CA bundle")
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{
		Roots: ic.Roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		return nil, fmt.Errorf("signer trust chain: %w", err)
	}
	for i := 0; i+1 < len(chain); i++ {
		if ic.trusted(chain[i]) {
			break
		}
		if err := ic.checkOCSP(chain[i], chain[i+1], now); err != nil {
			return nil, err
		}
	}
	pub, ok := chain[0].PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, errors.New("signer certificate does not hold an RSA key")
	}
	return pub, nil
}

func (ic *InstanceConnect) trusted(c *x509.Certificate) bool {
	for _, r := range ic.RootCerts {
		if bytes.Equal(r.Raw, c.Raw) {
			return true
		}
	}
	return false
}

// CertFingerprint is the name of a certificate's OCSP staple: upper-case
// hex SHA-1 of its DER, as openssl x509 -fingerprint -sha1 prints it
// without colons.
func CertFingerprint(c *x509.Certificate) string {
	s := sha1.Sum(c.Raw)
	return strings.ToUpper(hex.EncodeToString(s[:]))
}

func (ic *InstanceConnect) checkOCSP(c, issuer *x509.Certificate, now time.Time) error {
	name := c.Subject.CommonName
	der, ok := ic.OCSP[CertFingerprint(c)]
	if !ok {
		return fmt.Errorf("no OCSP staple for certificate %q", excerpt(name, 80))
	}
	r, err := ocsp.ParseResponseForCert(der, c, issuer)
	if err != nil {
		return fmt.Errorf("OCSP staple for certificate %q: %w", excerpt(name, 80), err)
	}
	switch {
	case r.Status != ocsp.Good:
		return fmt.Errorf("certificate %q is revoked or unknown to OCSP", excerpt(name, 80))
	case r.ThisUpdate.After(now.Add(ocspLeeway)):
		return fmt.Errorf("OCSP staple for certificate %q is not yet valid", excerpt(name, 80))
	case !r.NextUpdate.IsZero() && r.NextUpdate.Before(now.Add(-ocspLeeway)):
		return fmt.Errorf("OCSP staple for certificate %q has expired", excerpt(name, 80))
	}
	return nil
}

// splitBlocks splits the active-keys body at blank lines.
func splitBlocks(b []byte) [][]string {
	var out [][]string
	var cur []string
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSuffix(l, "\r")
		if l == "" {
			if len(cur) > 0 {
				out = append(out, cur)
			}
			cur = nil
			continue
		}
		cur = append(cur, l)
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// verifyBlock checks one "#Header=…" lines, key line, signature block.
func verifyBlock(blk []string, signer *rsa.PublicKey, instance string, now time.Time) (Key, string) {
	var signed bytes.Buffer
	var ts int64
	var inst, fp string
	i := 0
	for ; i < len(blk) && strings.HasPrefix(blk[i], "#"); i++ {
		l := blk[i]
		switch {
		case strings.HasPrefix(l, "#Timestamp="):
			ts, _ = strconv.ParseInt(strings.TrimPrefix(l, "#Timestamp="), 10, 64)
		case strings.HasPrefix(l, "#Instance="):
			inst = strings.TrimPrefix(l, "#Instance=")
		}
		// Unknown headers are signed too: they are verified, not interpreted.
		signed.WriteString(l + "\n")
	}
	if i == len(blk) {
		return Key{}, "a block without a key"
	}
	k, ok, err := ParseLine(blk[i])
	if err != nil || !ok {
		return Key{}, "a block whose key line is not a key"
	}
	fp = k.Fingerprint()
	if len(k.Options) > 0 {
		return Key{}, "key " + fp + ": carries options"
	}
	signed.WriteString(blk[i] + "\n")
	sig, err := base64.StdEncoding.DecodeString(strings.Join(blk[i+1:], ""))
	switch {
	case err != nil || len(sig) == 0:
		return Key{}, "key " + fp + ": no readable signature"
	case inst == "" || ts == 0:
		return Key{}, "key " + fp + ": no instance or timestamp"
	case inst != instance:
		return Key{}, "key " + fp + ": issued for another instance"
	case ts <= now.Unix():
		return Key{}, "key " + fp + ": expired"
	}
	sum := sha256.Sum256(signed.Bytes())
	if err := rsa.VerifyPSS(signer, crypto.SHA256, sum[:], sig, &rsa.PSSOptions{SaltLength: 32}); err != nil {
		return Key{}, "key " + fp + ": bad signature"
	}
	return k, ""
}

// LoadCABundle reads a PEM bundle of trusted CA certificates.
func LoadCABundle(pemData []byte) (*x509.CertPool, []*x509.Certificate, error) {
	// One odd entry must not void a system bundle: not strict.
	certs, _ := pemCertificates(pemData, false)
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	if len(certs) == 0 {
		return nil, nil, errors.New("no certificates in the CA bundle")
	}
	return pool, certs, nil
}

// pemCertificates parses the CERTIFICATE blocks of data in order. Strict:
// a block that does not parse is an error; otherwise it is skipped.
func pemCertificates(data []byte, strict bool) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for rest := data; ; {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil {
			return certs, nil
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			if strict {
				return nil, err
			}
			continue
		}
		certs = append(certs, c)
	}
}
