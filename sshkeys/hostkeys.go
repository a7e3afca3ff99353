package sshkeys

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"
)

// HostKeyTypes are the host key types flint generates, in cloud-init's
// ssh_genkeytypes spelling.
var HostKeyTypes = []string{"rsa", "ecdsa", "ed25519"}

// RSAHostKeyBits is the size of generated RSA host keys (ssh-keygen's default).
const RSAHostKeyBits = 3072

// HostKey is a generated host key pair in OpenSSH's file formats.
type HostKey struct {
	Type string
	// Private is the OpenSSH private key file (0600).
	Private []byte
	// Public is the .pub file: one authorized_keys line (0644).
	Public []byte
}

// GenerateHostKey makes a host key of type typ ("rsa", "ecdsa",
// "ed25519") with comment as its comment (ssh-keygen -A uses root@HOST).
func GenerateHostKey(typ, comment string) (HostKey, error) {
	priv, err := newHostSigner(typ)
	if err != nil {
		return HostKey{}, err
	}
	return encodeHostKey(typ, priv, comment)
}

// PendingHostKey is a host key being generated in the background: see
// StartHostKey.
type PendingHostKey struct {
	typ  string
	done chan struct{}
	priv crypto.Signer
	err  error
	// ahead: the key was made ahead (StartHostKeyAhead), not here.
	ahead bool
}

// MadeAhead reports whether the key came from the keys made ahead; call
// it after Key.
func (p *PendingHostKey) MadeAhead() bool { return p.ahead }

// StartHostKey starts generating a host key of type typ and returns at
// once, so that the caller does other work meanwhile: an RSA key takes
// hundreds of milliseconds on a fast machine and seconds on a slow one.
// Key waits for it.
func StartHostKey(typ string) *PendingHostKey {
	p := &PendingHostKey{typ: typ, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		p.priv, p.err = newHostSigner(typ)
	}()
	return p
}

// Key waits for the key StartHostKey started (or for ctx) and returns it
// with comment, as GenerateHostKey does.
func (p *PendingHostKey) Key(ctx context.Context, comment string) (HostKey, error) {
	select {
	case <-p.done:
	case <-ctx.Done():
		return HostKey{}, fmt.Errorf("generating %s host key: %w", p.typ, ctx.Err())
	}
	if p.err != nil {
		return HostKey{}, p.err
	}
	return encodeHostKey(p.typ, p.priv, comment)
}

func newHostSigner(typ string) (crypto.Signer, error) {
	var priv crypto.Signer
	var err error
	switch typ {
	case "ed25519":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case "ecdsa":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "rsa":
		priv, err = rsa.GenerateKey(rand.Reader, RSAHostKeyBits)
	default:
		return nil, fmt.Errorf("host key type %q is not one of %s", typ, strings.Join(HostKeyTypes, ", "))
	}
	if err != nil {
		return nil, fmt.Errorf("generating %s host key: %w", typ, err)
	}
	return priv, nil
}

// encodeHostKey writes priv in OpenSSH's private key format and its
// public half as an authorized_keys line, both with comment.
func encodeHostKey(typ string, priv crypto.Signer, comment string) (HostKey, error) {
	blk, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return HostKey{}, fmt.Errorf("encoding %s host key: %w", typ, err)
	}
	pub, err := ssh.NewPublicKey(priv.Public())
	if err != nil {
		return HostKey{}, err
	}
	line := strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(pub)), "\n")
	if comment != "" {
		line += " " + comment
	}
	return HostKey{Type: typ, Private: pem.EncodeToMemory(blk), Public: []byte(line + "\n")}, nil
}

// FingerprintLine formats a public key line as `ssh-keygen -l` does:
// "256 SHA256:… comment (ED25519)".
func FingerprintLine(pubLine []byte) (string, error) {
	pub, comment, _, _, err := ssh.ParseAuthorizedKey(pubLine)
	if err != nil {
		return "", err
	}
	if comment == "" {
		comment = "no comment"
	}
	bits, label := keyBits(pub)
	return fmt.Sprintf("%d %s %s (%s)", bits, ssh.FingerprintSHA256(pub), comment, label), nil
}

func keyBits(pub ssh.PublicKey) (int, string) {
	cp, ok := pub.(ssh.CryptoPublicKey)
	if !ok {
		return 0, strings.ToUpper(pub.Type())
	}
	switch k := cp.CryptoPublicKey().(type) {
	case *rsa.PublicKey:
		return k.N.BitLen(), "RSA"
	case *ecdsa.PublicKey:
		return k.Curve.Params().BitSize, "ECDSA"
	case ed25519.PublicKey:
		return 256, "ED25519"
	}
	return 0, strings.ToUpper(pub.Type())
}

// FingerprintsBlock is what cloud-init prints to the console so a person
// can check a host key before trusting it.
func FingerprintsBlock(fingerprints, publicKeys []string) string {
	var b strings.Builder
	b.WriteString("ec2: #############################################################\n")
	b.WriteString("ec2: -----BEGIN SSH HOST KEY FINGERPRINTS-----\n")
	for _, f := range fingerprints {
		b.WriteString("ec2: " + f + "\n")
	}
	b.WriteString("ec2: -----END SSH HOST KEY FINGERPRINTS-----\n")
	b.WriteString("ec2: #############################################################\n")
	b.WriteString("-----BEGIN SSH HOST KEY KEYS-----\n")
	for _, k := range publicKeys {
		b.WriteString(strings.TrimSpace(k) + "\n")
	}
	b.WriteString("-----END SSH HOST KEY KEYS-----\n")
	return b.String()
}

// CheckHostKeyPair checks that priv (an unencrypted private key file) and
// pub (a .pub line) are one key pair, without quoting either.
func CheckHostKeyPair(priv, pub []byte) error {
	pk, _, _, _, err := ssh.ParseAuthorizedKey(pub)
	if err != nil {
		return fmt.Errorf("the public key does not parse")
	}
	signer, err := ssh.ParsePrivateKey(priv)
	if err != nil {
		return fmt.Errorf("the private key does not parse (an unencrypted OpenSSH or PEM key is needed)")
	}
	if !bytes.Equal(signer.PublicKey().Marshal(), pk.Marshal()) {
		return fmt.Errorf("the private and public keys are not one pair")
	}
	return nil
}
