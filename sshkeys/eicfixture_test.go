package sshkeys_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/flint-dev/flint/sshkeys"
)

// eicPKI is a test Instance Connect service: a root CA (the trusted
// bundle), an intermediate, and the signer (RSA, for PSS signatures).
type eicPKI struct {
	root, inter, signer          *x509.Certificate
	rootKey, interKey, signerKey crypto.Signer
	bundlePath                   string
}

func newCert(t testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// newEICPKI makes the PKI with a signer named for zone eu-west-1a in
// amazonaws.com (the emulator fixture's) unless cn says otherwise.
func newEICPKI(t testing.TB, cn string) *eicPKI {
	t.Helper()
	if cn == "" {
		cn = "managed-ssh-signer.eu-west-1.amazonaws.com"
	}
	now := time.Now()
	p := &eicPKI{}
	rk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ik, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p.rootKey, p.interKey, p.signerKey = rk, ik, sk
	ca := func(serial int64, name string) *x509.Certificate {
		return &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		}
	}
	rootT := ca(1, "Test Root CA")
	p.root = newCert(t, rootT, rootT, rk.Public(), rk)
	p.inter = newCert(t, ca(2, "Test Intermediate CA"), p.root, ik.Public(), rk)
	p.signer = newCert(t, &x509.Certificate{
		SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: cn},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}, p.inter, sk.Public(), ik)
	p.bundlePath = filepath.Join(t.TempDir(), "ca-bundle.crt")
	if err := os.WriteFile(p.bundlePath, pemCerts(p.root), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func pemCerts(cs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range cs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

// chain is what managed-ssh-keys/signer-cert/ serves.
func (p *eicPKI) chain() []byte { return pemCerts(p.signer, p.inter) }

// staple is the signer's OCSP response, signed by its issuer.
func (p *eicPKI) staple(t testing.TB, status int) []byte {
	t.Helper()
	now := time.Now()
	der, err := ocsp.CreateResponse(p.inter, p.inter, ocsp.Response{
		Status: status, SerialNumber: p.signer.SerialNumber,
		ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(time.Hour), RevokedAt: now.Add(-time.Minute),
	}, p.interKey)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// block is one signed active-keys entry for key, valid until expires.
func (p *eicPKI) block(t testing.TB, key, instance string, expires time.Time) string {
	t.Helper()
	hdr := fmt.Sprintf("#Timestamp=%d\n#Instance=%s\n#Caller=arn:aws:iam::123456789012:user/test\n#Request=req-1\n", expires.Unix(), instance)
	sum := sha256.Sum256([]byte(hdr + key + "\n"))
	sig, err := rsa.SignPSS(rand.Reader, p.signerKey.(*rsa.PrivateKey), crypto.SHA256, sum[:], &rsa.PSSOptions{SaltLength: 32})
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.StdEncoding.EncodeToString(sig)
	// The service wraps signatures over several lines.
	var lines []string
	for len(enc) > 76 {
		lines, enc = append(lines, enc[:76]), enc[76:]
	}
	lines = append(lines, enc)
	return hdr + key + "\n" + strings.Join(lines, "\n") + "\n"
}

// serve puts the PKI's metadata into set (the emulator's Server.Set).
func (p *eicPKI) serve(t testing.TB, set func(string, []byte), user string, blocks ...string) {
	set("meta-data/managed-ssh-keys/signer-cert", p.chain())
	fp := sshkeys.CertFingerprint(p.signer)
	set("meta-data/managed-ssh-keys/signer-ocsp/"+fp, []byte(base64.StdEncoding.EncodeToString(p.staple(t, ocsp.Good))))
	set("meta-data/managed-ssh-keys/active-keys/"+user, []byte(strings.Join(blocks, "\n")))
}
