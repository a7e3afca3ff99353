package sshkeys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Host keys made ahead: on a new instance's first boot, the early stage
// (flint local --host-keys) generates the host keys while the boot waits
// for the network, into a directory under /run (a tmpfs: this boot's
// only); the host-keys handler takes them from there instead of making
// them on sshd's path. An RSA key takes seconds on a slow machine.

// aheadLock is held, exclusively, by MakeAhead until every key is written.
const aheadLock = "lock"

// ErrAheadExists is returned by MakeAhead when keys were already made
// ahead on this boot.
var ErrAheadExists = errors.New("host keys were already made ahead on this boot")

// MakeAhead generates one key of each type into dir, which must not
// exist. dir appears locked, with no key in it yet: a reader that sees it
// waits for a key it wants until the key is there or the maker is gone.
// Each key is written as soon as it is made (ed25519 in milliseconds,
// RSA in seconds), as an unencrypted PKCS #8 PEM file named after its
// type, readable by the owner only.
func MakeAhead(dir string, types []string) error {
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+"-")
	if err != nil {
		return err
	}
	lock, err := os.OpenFile(filepath.Join(tmp, aheadLock), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		os.RemoveAll(tmp)
		return err
	}
	defer lock.Close() // releases the lock
	if err := flock(lock, unix.LOCK_EX); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		if errors.Is(err, fs.ErrExist) || errors.Is(err, syscall.ENOTEMPTY) {
			return ErrAheadExists
		}
		return err
	}
	errs := make([]error, len(types))
	var wg sync.WaitGroup
	for i, typ := range types {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = makeAheadKey(dir, typ)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func makeAheadKey(dir, typ string) error {
	priv, err := newHostSigner(typ)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return fmt.Errorf("encoding %s host key: %w", typ, err)
	}
	tmp := filepath.Join(dir, "."+typ)
	if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, typ))
}

// Ahead is a directory of host keys made ahead by MakeAhead, possibly
// still being made.
type Ahead struct {
	dir string
	// poll is how often a reader looks for a key still being made.
	poll time.Duration
}

// OpenAhead returns the keys made ahead in dir, or nil where there are
// none to trust: no dir, or one that is not a directory owned by this
// process's user and closed to everyone else.
func OpenAhead(dir string) *Ahead {
	fi, err := os.Lstat(dir)
	if err != nil || !fi.IsDir() || fi.Mode().Perm()&0o077 != 0 {
		return nil
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || int(st.Uid) != os.Geteuid() {
		return nil
	}
	return &Ahead{dir: dir, poll: 10 * time.Millisecond}
}

// take returns the key of type typ made ahead, waiting while the maker
// may still write it, and removes its file: a key made ahead is used at
// most once. It returns nil when there is no such key (the maker was not
// asked for it, failed, or is gone without it).
func (a *Ahead) take(typ string) crypto.Signer {
	p := filepath.Join(a.dir, typ)
	for {
		if k := a.read(p, typ); k != nil {
			return k
		}
		if !a.making() {
			return a.read(p, typ) // written just before the maker let go
		}
		time.Sleep(a.poll)
	}
}

func (a *Ahead) read(p, typ string) crypto.Signer {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil
	}
	os.Remove(p)
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil
	}
	s, ok := k.(crypto.Signer)
	if !ok || keyType(s) != typ {
		return nil
	}
	return s
}

// making reports whether the maker still holds the directory's lock.
func (a *Ahead) making() bool {
	f, err := os.Open(filepath.Join(a.dir, aheadLock))
	if err != nil {
		return false
	}
	defer f.Close()
	return unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB) != nil
}

// Close removes the directory once its maker is done, with any key
// nobody took; while the maker still runs it leaves everything (the
// directory goes with the boot's /run).
func (a *Ahead) Close() error {
	if a == nil || a.making() {
		return nil
	}
	return os.RemoveAll(a.dir)
}

// StartHostKeyAhead is StartHostKey taking the key from a when it has
// one of type typ (waiting for it while a's maker may still make it), and
// generating one otherwise. a may be nil.
func StartHostKeyAhead(a *Ahead, typ string) *PendingHostKey {
	if a == nil {
		return StartHostKey(typ)
	}
	p := &PendingHostKey{typ: typ, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		if k := a.take(typ); k != nil {
			p.priv, p.ahead = k, true
			return
		}
		p.priv, p.err = newHostSigner(typ)
	}()
	return p
}

func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			return err
		}
	}
}

// keyType is the ssh_genkeytypes name of a private key's type.
func keyType(k crypto.Signer) string {
	switch k.(type) {
	case *rsa.PrivateKey:
		return "rsa"
	case *ecdsa.PrivateKey:
		return "ecdsa"
	case ed25519.PrivateKey:
		return "ed25519"
	}
	return ""
}
