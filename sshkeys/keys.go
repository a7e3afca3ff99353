// Package sshkeys owns what flint knows about OpenSSH keys: parsing and
// validating authorized_keys lines (options, comments and certificates
// kept, junk reported), merging them into a user's file without dropping
// anything a person added, writing that file safely below a root, reading
// sshd's effective AuthorizedKeysFile, host key generation and
// fingerprints, and EC2 Instance Connect key verification. It reads
// metadata only through imds.Reader and leaves users, groups and the chain
// to package handlers.
package sshkeys

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/ssh"
)

// MaxLineBytes caps one authorized_keys line. OpenSSH reads lines of up to
// 16 KiB; a longer one is refused rather than cut.
const MaxLineBytes = 16 << 10

// Key is one valid authorized_keys line.
type Key struct {
	// Line is the line as given, trimmed of surrounding white space.
	Line string
	// Options are the line's leading options (from="…", command="…").
	Options []string
	// Type is the key's algorithm ("ssh-ed25519", "ssh-ed25519-cert-v01@openssh.com").
	Type    string
	Comment string
	// Cert reports an OpenSSH certificate.
	Cert bool
	pub  ssh.PublicKey
}

// ID identifies the key material, whatever its options and comment: two
// lines with the same ID grant the same key.
func (k Key) ID() string { return string(k.pub.Marshal()) }

// Fingerprint is the key's SHA256 fingerprint as ssh-keygen -l prints it.
func (k Key) Fingerprint() string { return ssh.FingerprintSHA256(k.pub) }

// Problem is a line that was not accepted, and why. Text is a short,
// printable excerpt safe for logs (public keys are not secret, but a
// pasted private key might be, so only a prefix is kept).
type Problem struct {
	Source string
	Line   int
	Text   string
	Reason string
}

func (p Problem) String() string {
	return fmt.Sprintf("%s line %d: %s (%s)", p.Source, p.Line, p.Reason, p.Text)
}

// ParseLine parses one authorized_keys line. Blank lines and comments are
// not keys: ok is false and err nil.
func ParseLine(line string) (k Key, ok bool, err error) {
	if len(line) > MaxLineBytes {
		return Key{}, false, fmt.Errorf("line of %d bytes is longer than %d", len(line), MaxLineBytes)
	}
	if strings.IndexByte(line, 0) >= 0 {
		return Key{}, false, fmt.Errorf("line contains a NUL byte")
	}
	if !utf8.ValidString(line) {
		return Key{}, false, fmt.Errorf("line is not valid UTF-8")
	}
	t := strings.TrimSpace(line)
	if t == "" || t[0] == '#' {
		return Key{}, false, nil
	}
	if strings.ContainsAny(t, "\r\n") {
		return Key{}, false, fmt.Errorf("line contains a line break")
	}
	pub, comment, opts, rest, err := ssh.ParseAuthorizedKey([]byte(t))
	if err != nil {
		return Key{}, false, fmt.Errorf("not a valid public key (%s)", reason(t, err))
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return Key{}, false, fmt.Errorf("trailing data after the key")
	}
	_, isCert := pub.(*ssh.Certificate)
	return Key{Line: t, Options: opts, Type: pub.Type(), Comment: comment, Cert: isCert, pub: pub}, true, nil
}

// knownType reports a key or certificate type sshd accepts. A switch,
// not a map built at init: `flint ssh-keys` starts once per login.
func knownType(t string) bool {
	switch t {
	case ssh.KeyAlgoRSA, "ssh-dss", ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521,
		ssh.KeyAlgoED25519, ssh.KeyAlgoSKECDSA256, ssh.KeyAlgoSKED25519,
		ssh.CertAlgoRSAv01, "ssh-dss-cert-v01@openssh.com", ssh.CertAlgoECDSA256v01, ssh.CertAlgoECDSA384v01,
		ssh.CertAlgoECDSA521v01, ssh.CertAlgoED25519v01, ssh.CertAlgoSKECDSA256v01, ssh.CertAlgoSKED25519v01:
		return true
	}
	return false
}

// reason turns the library's "ssh: no key found" into what a person can
// act on: an unknown type, or a known type whose base64 does not decode
// to a key (truncated in a copy and paste).
func reason(line string, err error) string {
	for _, f := range strings.Fields(line) {
		if knownType(f) {
			return "the " + f + " key data is truncated or corrupt"
		}
	}
	f := strings.Fields(line)
	if len(f) > 0 && !strings.ContainsAny(f[0], `="`) {
		return "unknown key type " + excerpt(f[0], 40)
	}
	return strings.TrimPrefix(err.Error(), "ssh: ")
}

// excerpt returns a printable prefix of s, at most n bytes.
func excerpt(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			return '?'
		}
		return r
	}, s)
	if len(s) > n {
		cut := n
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return s[:cut] + "…"
	}
	return s
}

// Parse splits text into valid keys and problems, in order. source names
// the text in problems ("meta-data/public-keys/0", "cloud-config users[1]").
// Duplicates (same key material) are kept once, the first wins.
func Parse(source, text string) ([]Key, []Problem) {
	var keys []Key
	var probs []Problem
	seen := map[string]bool{}
	for i, line := range strings.Split(text, "\n") {
		k, ok, err := ParseLine(strings.TrimSuffix(line, "\r"))
		if err != nil {
			probs = append(probs, Problem{Source: source, Line: i + 1, Text: excerpt(strings.TrimSpace(line), 40), Reason: err.Error()})
			continue
		}
		if !ok || seen[k.ID()] {
			continue
		}
		seen[k.ID()] = true
		keys = append(keys, k)
	}
	return keys, probs
}

// Merge returns existing with the keys of add that it does not already
// grant appended, and how many were added. Every existing line is kept
// byte for byte, including comments and lines flint could not parse: the
// file belongs to the person as much as to flint.
func Merge(existing []byte, add []Key) ([]byte, int) {
	have := map[string]bool{}
	for _, line := range strings.Split(string(existing), "\n") {
		if k, ok, _ := ParseLine(strings.TrimSuffix(line, "\r")); ok {
			have[k.ID()] = true
		}
	}
	out := bytes.Clone(existing)
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	n := 0
	for _, k := range add {
		if have[k.ID()] {
			continue
		}
		have[k.ID()] = true
		out = append(out, k.Line...)
		out = append(out, '\n')
		n++
	}
	return out, n
}

// WithOptions returns k with its options replaced by opts (the forced
// command cloud-init gives root when disable_root is set). Options that do
// not parse are an error: the caller must not fall back to the bare key.
func WithOptions(k Key, opts string) (Key, error) {
	line := k.pub.Type() + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k.pub))[len(k.pub.Type())+1:])
	if k.Comment != "" {
		line += " " + k.Comment
	}
	if opts != "" {
		line = opts + " " + line
	}
	nk, ok, err := ParseLine(line)
	if err != nil || !ok || (opts != "" && len(nk.Options) == 0) {
		return k, fmt.Errorf("key options %q do not parse as authorized_keys options", opts)
	}
	return nk, nil
}
