package modules

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"
)

// Manifests are signed with ed25519 over the manifest file's exact bytes;
// the signature file holds the 64-byte signature raw, in base64 or in hex.
// Keys are read in the forms users have them:
//
//   - PEM: "PUBLIC KEY" (SPKI, openssl pkey -pubout) and "PRIVATE KEY"
//     (PKCS#8, openssl genpkey -algorithm ed25519), which keygen writes;
//   - OpenSSH: an "ssh-ed25519 AAAA…" public key line and an unencrypted
//     "OPENSSH PRIVATE KEY" (ssh-keygen -t ed25519 -N "");
//   - raw: the 32-byte public key or private seed (or the 64-byte private
//     key) in hex or base64.

// ParsePublicKey reads an ed25519 public key in any of the accepted forms.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("empty public key")
	}
	if block, _ := pem.Decode([]byte(s)); block != nil {
		if block.Type != "PUBLIC KEY" {
			return nil, fmt.Errorf("PEM block %q is not a public key (want \"PUBLIC KEY\", as openssl pkey -pubout writes)", block.Type)
		}
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PEM public key: %w", err)
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("PEM public key is %T, not ed25519", k)
		}
		return pub, nil
	}
	if strings.HasPrefix(s, "ssh-") || strings.HasPrefix(s, "ecdsa-") {
		k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(s))
		if err != nil {
			return nil, fmt.Errorf("OpenSSH public key: %w", err)
		}
		if k.Type() != ssh.KeyAlgoED25519 {
			return nil, fmt.Errorf("OpenSSH public key is %s, not ssh-ed25519", k.Type())
		}
		return ed25519.PublicKey(k.(ssh.CryptoPublicKey).CryptoPublicKey().(ed25519.PublicKey)), nil
	}
	b, err := decodeKey(s, ed25519.PublicKeySize)
	if err != nil {
		return nil, fmt.Errorf("not a PEM, OpenSSH or raw ed25519 public key (%v)", err)
	}
	return ed25519.PublicKey(b), nil
}

// ParsePrivateKey reads an ed25519 private key in any of the accepted forms.
func ParsePrivateKey(b []byte) (ed25519.PrivateKey, error) {
	b = bytes.TrimSpace(b)
	if block, _ := pem.Decode(b); block != nil {
		switch block.Type {
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("PKCS#8 private key: %w", err)
			}
			priv, ok := k.(ed25519.PrivateKey)
			if !ok {
				return nil, fmt.Errorf("PKCS#8 private key is %T, not ed25519", k)
			}
			return priv, nil
		case "OPENSSH PRIVATE KEY":
			k, err := ssh.ParseRawPrivateKey(b)
			var missing *ssh.PassphraseMissingError
			if errors.As(err, &missing) {
				return nil, errors.New("the OpenSSH private key is encrypted; decrypt a copy (ssh-keygen -p -N \"\" -f COPY) for signing")
			}
			if err != nil {
				return nil, fmt.Errorf("OpenSSH private key: %w", err)
			}
			priv, ok := k.(*ed25519.PrivateKey)
			if !ok {
				return nil, fmt.Errorf("OpenSSH private key is %T, not ed25519", k)
			}
			return *priv, nil
		case "ENCRYPTED PRIVATE KEY":
			return nil, errors.New("the PKCS#8 private key is encrypted; decrypt a copy (openssl pkey -in KEY -out COPY) for signing")
		}
		return nil, fmt.Errorf("PEM block %q is not a private key (want \"PRIVATE KEY\" or \"OPENSSH PRIVATE KEY\")", block.Type)
	}
	if seed, err := decodeKey(string(b), ed25519.SeedSize); err == nil {
		return ed25519.NewKeyFromSeed(seed), nil
	}
	if k, err := decodeKey(string(b), ed25519.PrivateKeySize); err == nil {
		priv := ed25519.PrivateKey(k)
		// The second half of a 64-byte key is its public key: check it,
		// or a truncated copy would sign with the wrong key.
		if !bytes.Equal(ed25519.NewKeyFromSeed(priv.Seed()).Public().(ed25519.PublicKey), priv[32:]) {
			return nil, errors.New("raw 64-byte private key: its public half does not match its seed")
		}
		return priv, nil
	}
	return nil, errors.New("not a PEM (PKCS#8), OpenSSH or raw ed25519 private key")
}

// GenerateKey makes a key pair and returns it as PEM: the private key
// PKCS#8, the public key SPKI, the forms openssl reads and writes.
func GenerateKey() (privPEM, pubPEM []byte, pub ed25519.PublicKey, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	p8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, nil, nil, err
	}
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}),
		pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki}), pub, nil
}

// SignManifest returns the signature file for manifest: the base64
// signature and a newline.
func SignManifest(manifest []byte, priv ed25519.PrivateKey) []byte {
	return []byte(base64.StdEncoding.EncodeToString(ed25519.Sign(priv, manifest)) + "\n")
}

// KeyFingerprint names a public key in messages: the first 16 hex digits
// of its SHA-256, enough to tell keys apart.
func KeyFingerprint(pub ed25519.PublicKey) string {
	s := sha256.Sum256(pub)
	return fmt.Sprintf("ed25519:%x", s[:8])
}
