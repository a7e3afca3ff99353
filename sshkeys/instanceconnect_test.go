package sshkeys_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/flint-dev/flint/sshkeys"
)

const (
	testInstance = "i-0123456789abcdef0"
	eicKey       = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAyaJ1Rlfm4cFKi/JLNzQ/F7QuGTbWUfyOcPq7yN/BMM eic"
	otherKey     = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINaKBZ5LXqcCgXLHCAeqNM7xXKzPfNtHAcUHWHbRFGIw other"
)

func connect(t *testing.T, p *eicPKI, blocks ...string) *sshkeys.InstanceConnect {
	t.Helper()
	pool, certs, err := sshkeys.LoadCABundle(pemCerts(p.root))
	if err != nil {
		t.Fatal(err)
	}
	return &sshkeys.InstanceConnect{
		Keys: []byte(strings.Join(blocks, "\n")), SignerChain: p.chain(),
		OCSP:       map[string][]byte{sshkeys.CertFingerprint(p.signer): p.staple(t, ocsp.Good)},
		InstanceID: testInstance, AvailabilityZone: "eu-west-1a", Domain: "amazonaws.com",
		Roots: pool, RootCerts: certs,
	}
}

func TestInstanceConnectKeysAreCheckedOneByOne(t *testing.T) {
	p := newEICPKI(t, "")
	now := time.Now()
	valid := p.block(t, eicKey, testInstance, now.Add(time.Minute))
	tampered := strings.Replace(p.block(t, otherKey, testInstance, now.Add(time.Minute)), otherKey, eicKey+"x", 1)
	forged := strings.Replace(p.block(t, otherKey, testInstance, now.Add(time.Minute)), "#Request=req-1", "#Request=req-2", 1)
	tests := []struct {
		name    string
		blocks  []string
		want    int
		dropped string
	}{
		{"a signed, unexpired key for this instance is served", []string{valid}, 1, ""},
		{"an expired key is dropped", []string{p.block(t, eicKey, testInstance, now.Add(-time.Second))}, 0, "expired"},
		{"a key for another instance is dropped", []string{p.block(t, eicKey, "i-0aaaaaaaaaaaaaaaa", now.Add(time.Minute))}, 0, "another instance"},
		{"a key whose signed header was changed is dropped", []string{forged}, 0, "bad signature"},
		{"a key line swapped under a signature is dropped", []string{tampered}, 0, "bad signature"},
		{"a block without a signature is dropped", []string{"#Timestamp=99999999999\n#Instance=" + testInstance + "\n" + eicKey + "\n"}, 0, "no readable signature"},
		{"good keys survive a bad neighbour", []string{p.block(t, otherKey, testInstance, now.Add(-time.Hour)), valid}, 1, "expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, dropped, err := connect(t, p, tt.blocks...).Verify(now)
			if err != nil {
				t.Fatal(err)
			}
			if len(keys) != tt.want {
				t.Fatalf("got %d keys, want %d (dropped %q)", len(keys), tt.want, dropped)
			}
			if tt.want == 1 && keys[0].Line != eicKey {
				t.Errorf("served %q", keys[0].Line)
			}
			if tt.dropped != "" && (len(dropped) == 0 || !strings.Contains(strings.Join(dropped, "|"), tt.dropped)) {
				t.Errorf("dropped = %q, want a %q", dropped, tt.dropped)
			}
		})
	}
}

func TestAnUnverifiableSignerTrustsNoKey(t *testing.T) {
	p := newEICPKI(t, "")
	now := time.Now()
	valid := p.block(t, eicKey, testInstance, now.Add(time.Minute))
	stranger := newEICPKI(t, "")
	wrongName := newEICPKI(t, "managed-ssh-signer.us-east-1.amazonaws.com")
	tests := []struct {
		name   string
		change func(ic *sshkeys.InstanceConnect)
		want   string
	}{
		{"a signer chained to another CA", func(ic *sshkeys.InstanceConnect) {
			ic.SignerChain = stranger.chain()
			ic.OCSP = map[string][]byte{sshkeys.CertFingerprint(stranger.signer): stranger.staple(t, ocsp.Good)}
		}, "trust chain"},
		{"a signer for another region", func(ic *sshkeys.InstanceConnect) {
			pool, certs, _ := sshkeys.LoadCABundle(pemCerts(wrongName.root))
			ic.SignerChain, ic.Roots, ic.RootCerts = wrongName.chain(), pool, certs
		}, "unrecognized signer"},
		{"a revoked signer", func(ic *sshkeys.InstanceConnect) {
			ic.OCSP[sshkeys.CertFingerprint(p.signer)] = p.staple(t, ocsp.Revoked)
		}, "revoked"},
		{"a signer without an OCSP staple", func(ic *sshkeys.InstanceConnect) {
			ic.OCSP = map[string][]byte{}
		}, "no OCSP staple"},
		{"a staple signed by someone else", func(ic *sshkeys.InstanceConnect) {
			k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			der, err := ocsp.CreateResponse(p.inter, p.inter, ocsp.Response{Status: ocsp.Good, SerialNumber: p.signer.SerialNumber, ThisUpdate: now, NextUpdate: now.Add(time.Hour)}, k)
			if err != nil {
				t.Fatal(err)
			}
			ic.OCSP[sshkeys.CertFingerprint(p.signer)] = der
		}, "OCSP staple"},
		{"a malformed availability zone", func(ic *sshkeys.InstanceConnect) { ic.AvailabilityZone = "../x" }, "availability zone"},
		{"a malformed instance id", func(ic *sshkeys.InstanceConnect) { ic.InstanceID = "i-xyz" }, "instance id"},
		{"no CA bundle", func(ic *sshkeys.InstanceConnect) { ic.Roots = nil }, "CA bundle"},
		{"an empty chain", func(ic *sshkeys.InstanceConnect) { ic.SignerChain = nil }, "no signer certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name+" trusts no key", func(t *testing.T) {
			ic := connect(t, p, valid)
			tt.change(ic)
			keys, _, err := ic.Verify(now)
			if err == nil || len(keys) != 0 || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("keys %d, err %v; want an error about %q", len(keys), err, tt.want)
			}
		})
	}
}

func TestStaplesAreNotNeededForCertificatesAlreadyTrusted(t *testing.T) {
	p := newEICPKI(t, "")
	now := time.Now()
	ic := connect(t, p, p.block(t, eicKey, testInstance, now.Add(time.Minute)))
	// The intermediate is in the bundle: the signer itself still needs its
	// staple, but a bundle holding the signer needs none.
	ic.Roots = x509.NewCertPool()
	ic.Roots.AddCert(p.root)
	ic.Roots.AddCert(p.signer)
	ic.RootCerts = []*x509.Certificate{p.root, p.signer}
	ic.OCSP = map[string][]byte{}
	keys, _, err := ic.Verify(now)
	if err != nil || len(keys) != 1 {
		t.Fatalf("keys %d, err %v", len(keys), err)
	}
}

func TestExpectedSignerNamesRegionAndDomain(t *testing.T) {
	tests := []struct{ zone, domain, want string }{
		{"eu-west-1a", "amazonaws.com", "managed-ssh-signer.eu-west-1.amazonaws.com"},
		{"us-gov-west-1b", "amazonaws.com", "managed-ssh-signer.us-gov-west-1.amazonaws.com"},
		{"cn-north-1a", "amazonaws.com.cn", "managed-ssh-signer.cn-north-1.amazonaws.com.cn"},
		{"eu-west-1", "amazonaws.com", ""},
		{"eu-west-1a", "amazon aws", ""},
	}
	for _, tt := range tests {
		got, err := sshkeys.ExpectedSigner(tt.zone, tt.domain)
		if got != tt.want || (tt.want == "") != (err != nil) {
			t.Errorf("ExpectedSigner(%q, %q) = %q, %v; want %q", tt.zone, tt.domain, got, err, tt.want)
		}
	}
}
