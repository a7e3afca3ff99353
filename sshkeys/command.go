package sshkeys

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flint-dev/flint/imds"
	"github.com/flint-dev/flint/internal/accounts"
)

// DefaultCABundles are tried in order when no CA bundle is configured
// (Debian/Ubuntu, then Fedora/Amazon Linux).
var DefaultCABundles = []string{"/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"}

// Lookup configures AuthorizedKeysFor.
type Lookup struct {
	// DefaultUser receives the instance's metadata public keys.
	DefaultUser string
	// CABundle is the trusted CA bundle for Instance Connect signers; ""
	// tries DefaultCABundles below CARoot ("" is "/").
	CABundle string
	CARoot   string
	// NoInstanceConnect skips EC2 Instance Connect keys.
	NoInstanceConnect bool
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// Logf receives one line per dropped key or failed read; never key
	// material or tokens.
	Logf func(format string, args ...any)
}

// AuthorizedKeysFor returns the authorized_keys lines sshd should accept
// for user: the metadata public keys when user is the default user, and
// the EC2 Instance Connect keys that verify. Reads run concurrently after
// the client's one token. An error means nothing could be read (IMDS
// down); keys that could be read are still returned with it.
func AuthorizedKeysFor(ctx context.Context, r imds.Reader, user string, o Lookup) ([]string, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	// The two lookups below log from their own goroutines.
	var logMu sync.Mutex
	logf := o.Logf
	o.Logf = func(f string, a ...any) {
		logMu.Lock()
		defer logMu.Unlock()
		logf(f, a...)
	}
	if !accounts.ValidName(user) {
		return nil, fmt.Errorf("user name %q is not one flint looks up", excerpt(user, 40))
	}
	var (
		wg           sync.WaitGroup
		mdKeys       []Key
		mdErr, icErr error
		icKeys       []Key
	)
	if user == o.DefaultUser {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var probs []Problem
			mdKeys, probs, mdErr = MetadataKeys(ctx, r)
			for _, p := range probs {
				o.Logf("flint ssh-keys: skipped %s", p)
			}
			var unread *UnreadableKeysError
			if errors.As(mdErr, &unread) && len(mdKeys) > 0 {
				// sshd gets the keys that were read.
				o.Logf("flint ssh-keys: %v; printing the %d that were read", mdErr, len(mdKeys))
				mdErr = nil
			}
		}()
	}
	if !o.NoInstanceConnect {
		wg.Add(1)
		go func() {
			defer wg.Done()
			icKeys, icErr = instanceConnectKeys(ctx, r, user, o)
		}()
	}
	wg.Wait()
	var lines []string
	seen := map[string]bool{}
	for _, k := range append(mdKeys, icKeys...) {
		if !seen[k.ID()] {
			seen[k.ID()] = true
			lines = append(lines, k.Line)
		}
	}
	switch {
	case mdErr != nil && (icErr != nil || o.NoInstanceConnect):
		return lines, mdErr
	case mdErr != nil:
		o.Logf("flint ssh-keys: metadata public keys: %v", mdErr)
	case icErr != nil && user != o.DefaultUser:
		return lines, icErr
	case icErr != nil:
		o.Logf("flint ssh-keys: EC2 Instance Connect: %v", icErr)
	}
	return lines, nil
}

// MetadataKeys reads every meta-data/public-keys/N/openssh-key
// concurrently and parses them; junk lines come back as problems.
func MetadataKeys(ctx context.Context, r imds.Reader) ([]Key, []Problem, error) {
	// Nearly every instance has one key, at index 0: asking for it beside
	// the listing saves a round trip on the path sshd waits for.
	first := make(chan struct{})
	var firstBody []byte
	var firstErr error
	go func() {
		defer close(first)
		firstBody, firstErr = r.Get(ctx, "meta-data/public-keys/0/openssh-key")
	}()
	entries, err := r.List(ctx, "meta-data/public-keys/")
	<-first
	if errors.Is(err, imds.ErrNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	idx := make([]int, 0, len(entries))
	for _, e := range entries {
		n, _, ok := strings.Cut(e, "=")
		i, err := strconv.Atoi(n)
		if !ok || err != nil || i < 0 {
			return nil, nil, fmt.Errorf("meta-data/public-keys/: malformed entry %q", excerpt(e, 40))
		}
		idx = append(idx, i)
	}
	bodies := make([][]byte, len(idx))
	errs := make([]error, len(idx))
	var wg sync.WaitGroup
	for j, i := range idx {
		if i == 0 {
			bodies[j], errs[j] = firstBody, firstErr
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			bodies[j], errs[j] = r.Get(ctx, fmt.Sprintf("meta-data/public-keys/%d/openssh-key", i))
		}()
	}
	wg.Wait()
	var keys []Key
	var probs []Problem
	var unread []error
	seen := map[string]bool{}
	for j, i := range idx {
		if errors.Is(errs[j], imds.ErrNotFound) {
			continue
		}
		if errs[j] != nil {
			unread = append(unread, errs[j])
			continue
		}
		ks, ps := Parse(fmt.Sprintf("meta-data/public-keys/%d", i), string(bodies[j]))
		probs = append(probs, ps...)
		for _, k := range ks {
			if !seen[k.ID()] {
				seen[k.ID()] = true
				keys = append(keys, k)
			}
		}
	}
	if len(unread) > 0 {
		return keys, probs, &UnreadableKeysError{Errs: unread}
	}
	return keys, probs, nil
}

// UnreadableKeysError is MetadataKeys' error when some keys of the
// listing could not be read: the keys returned beside it were read and
// are good to use. One unreadable key drops that key, not the set.
type UnreadableKeysError struct {
	Errs []error
}

func (e *UnreadableKeysError) Error() string {
	if len(e.Errs) == 1 {
		return fmt.Sprintf("a public key could not be read: %v", e.Errs[0])
	}
	return fmt.Sprintf("%d public keys could not be read, the first: %v", len(e.Errs), e.Errs[0])
}

// Unwrap returns the errors of the keys that could not be read.
func (e *UnreadableKeysError) Unwrap() []error { return e.Errs }

// stapleName reports a staple name that is a SHA-1 fingerprint in hex.
func stapleName(s string) bool {
	if len(s) != 40 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func instanceConnectKeys(ctx context.Context, r imds.Reader, user string, o Lookup) ([]Key, error) {
	blob, err := r.Get(ctx, "meta-data/managed-ssh-keys/active-keys/"+user+"/")
	if errors.Is(err, imds.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	ic := InstanceConnect{Keys: blob, OCSP: map[string][]byte{}}
	var (
		wg                          sync.WaitGroup
		idErr, azErr, domErr, scErr error
		staples                     []string
		lsErr                       error
		id, az, dom                 []byte
		caErr                       error
	)
	get := func(p string, dst *[]byte, e *error) {
		wg.Add(1)
		go func() { defer wg.Done(); *dst, *e = r.Get(ctx, p) }()
	}
	get("meta-data/instance-id", &id, &idErr)
	get("meta-data/placement/availability-zone", &az, &azErr)
	get("meta-data/services/domain", &dom, &domErr)
	get("meta-data/managed-ssh-keys/signer-cert/", &ic.SignerChain, &scErr)
	wg.Add(2)
	go func() { defer wg.Done(); staples, lsErr = r.List(ctx, "meta-data/managed-ssh-keys/signer-ocsp/") }()
	go func() { defer wg.Done(); ic.Roots, ic.RootCerts, caErr = loadBundle(o.CARoot, o.CABundle) }()
	wg.Wait()
	for _, e := range []error{idErr, azErr, domErr, scErr} {
		if e != nil {
			return nil, fmt.Errorf("reading the signer: %w", e)
		}
	}
	if lsErr != nil && !errors.Is(lsErr, imds.ErrNotFound) {
		return nil, fmt.Errorf("reading OCSP staples: %w", lsErr)
	}
	if caErr != nil {
		return nil, caErr
	}
	ic.InstanceID = strings.TrimSpace(string(id))
	ic.AvailabilityZone = strings.TrimSpace(string(az))
	ic.Domain = strings.TrimSpace(string(dom))
	var mu sync.Mutex
	var stErr error
	for _, s := range staples {
		s = strings.TrimSuffix(s, "/")
		if !stapleName(s) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := r.Get(ctx, "meta-data/managed-ssh-keys/signer-ocsp/"+s)
			var der []byte
			if err == nil {
				der, err = base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				stErr = fmt.Errorf("OCSP staple %s: %w", s, err)
				return
			}
			ic.OCSP[strings.ToUpper(s)] = der
		}()
	}
	wg.Wait()
	if stErr != nil {
		return nil, stErr
	}
	keys, dropped, err := ic.Verify(o.Now())
	if err != nil {
		return nil, fmt.Errorf("no keys trusted: %w", err)
	}
	for _, d := range dropped {
		o.Logf("flint ssh-keys: EC2 Instance Connect key for %s dropped: %s", user, d)
	}
	for _, k := range keys {
		o.Logf("flint ssh-keys: providing EC2 Instance Connect key %s for %s", k.Fingerprint(), user)
	}
	return keys, nil
}

func loadBundle(root, path string) (*x509.CertPool, []*x509.Certificate, error) {
	var paths []string
	for _, p := range DefaultCABundles {
		paths = append(paths, filepath.Join("/", root, p))
	}
	if path != "" {
		paths = []string{path}
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			if path == "" && errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, nil, fmt.Errorf("CA bundle: %w", err)
		}
		pool, certs, err := LoadCABundle(b)
		if err != nil {
			return nil, nil, fmt.Errorf("CA bundle %s: %w", p, err)
		}
		return pool, certs, nil
	}
	return nil, nil, fmt.Errorf("no CA bundle found (tried %s)", strings.Join(paths, ", "))
}
