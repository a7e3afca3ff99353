package sshkeys

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"
)

func pendingPublic(t *testing.T, p *PendingHostKey) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	k, err := p.Key(ctx, "root@test")
	if err != nil {
		t.Fatal(err)
	}
	return string(k.Public)
}

// aheadPublic is the authorized_keys form (no comment) of a key file
// MakeAhead wrote.
func aheadPublic(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.ParsePrivateKey(b)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k.PublicKey())))
}

func TestKeysMadeAheadAreTakenOnceEach(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run/flint/host-keys")
	if err := MakeAhead(dir, []string{"ed25519", "ecdsa"}); err != nil {
		t.Fatal(err)
	}
	if err := MakeAhead(dir, []string{"ed25519"}); !errors.Is(err, ErrAheadExists) {
		t.Fatalf("a second maker on the same boot: %v, want ErrAheadExists", err)
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("the directory: %v %v, want 0700", fi.Mode(), err)
	}
	made := map[string]string{}
	for _, typ := range []string{"ed25519", "ecdsa"} {
		if fi, err := os.Stat(filepath.Join(dir, typ)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v, want a 0600 file", typ, fi, err)
		}
		want := aheadPublic(t, filepath.Join(dir, typ))
		a := OpenAhead(dir)
		if a == nil {
			t.Fatal("OpenAhead refused the directory MakeAhead made")
		}
		made[typ] = pendingPublic(t, StartHostKeyAhead(a, typ))
		if !strings.HasPrefix(made[typ], want+" ") {
			t.Errorf("%s: got %q, made ahead %q", typ, made[typ], want)
		}
		if _, err := os.Stat(filepath.Join(dir, typ)); !os.IsNotExist(err) {
			t.Errorf("%s was taken but its file is still there: %v", typ, err)
		}
		// Taken again: a new key, never the same one twice.
		if again := pendingPublic(t, StartHostKeyAhead(a, typ)); again == made[typ] {
			t.Errorf("%s: the key made ahead was given out twice", typ)
		}
	}
	if made["ed25519"][:11] != "ssh-ed25519" || made["ecdsa"][:19] != "ecdsa-sha2-nistp256" {
		t.Errorf("keys of the wrong types: %q", made)
	}
	// rsa was not made ahead: made on the spot.
	a := OpenAhead(dir)
	if pub := pendingPublic(t, StartHostKeyAhead(a, "rsa")); pub[:7] != "ssh-rsa" {
		t.Errorf("rsa: %q", pub)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("Close left the directory: %v", err)
	}
}

// A reader waits for a key its maker is still making, and gives up on one
// the maker ended without.
func TestAKeyStillBeingMadeIsWaitedFor(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "host-keys")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	lock, err := os.Create(filepath.Join(dir, aheadLock))
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	a := OpenAhead(dir)
	p := StartHostKeyAhead(a, "ed25519")
	select {
	case <-p.done:
		t.Fatal("the key was given before its maker wrote it")
	case <-time.After(100 * time.Millisecond):
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("Close removed the directory while its maker ran: %v", err)
	}
	if err := makeAheadKey(dir, "ed25519"); err != nil {
		t.Fatal(err)
	}
	want := aheadPublic(t, filepath.Join(dir, "ed25519"))
	if got := pendingPublic(t, p); !strings.HasPrefix(got, want+" ") {
		t.Fatalf("the waiting reader got %q, the maker wrote %q", got, want)
	}

	q := StartHostKeyAhead(a, "rsa") // never made by this maker
	lock.Close()                     // the maker is gone
	if pub := pendingPublic(t, q); pub[:7] != "ssh-rsa" {
		t.Errorf("rsa after the maker left: %q", pub)
	}
}

func TestKeysAheadAreTrustedOnlyFromAClosedDirectoryOfOurOwn(t *testing.T) {
	base := t.TempDir()
	open := filepath.Join(base, "open")
	os.Mkdir(open, 0o755)
	link := filepath.Join(base, "link")
	closed := filepath.Join(base, "closed")
	os.Mkdir(closed, 0o700)
	os.Symlink(closed, link)
	for _, d := range []string{open, link, filepath.Join(base, "missing")} {
		if OpenAhead(d) != nil {
			t.Errorf("OpenAhead trusted %s", d)
		}
	}
	if OpenAhead(closed) == nil {
		t.Error("OpenAhead refused a 0700 directory of its own")
	}
	// A file of the wrong type under a type's name is not used.
	dir := filepath.Join(base, "wrong")
	if err := MakeAhead(dir, []string{"ed25519"}); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "ed25519"), filepath.Join(dir, "ecdsa")); err != nil {
		t.Fatal(err)
	}
	if pub := pendingPublic(t, StartHostKeyAhead(OpenAhead(dir), "ecdsa")); pub[:5] != "ecdsa" {
		t.Errorf("an ed25519 key filed as ecdsa was used: %q", pub)
	}
}
