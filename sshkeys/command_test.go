package sshkeys_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/flint-dev/flint/imds"
	"github.com/flint-dev/flint/imds/imdstest"
	"github.com/flint-dev/flint/sshkeys"
)

// fixtureDeploy ends the embedded fixture's second key; its first is alice
// (keys_test.go).
const fixtureDeploy = "deploy-key"

func emulator(t testing.TB) (*imdstest.Server, string) {
	t.Helper()
	tree, err := imdstest.ParseFixture(imdstest.DefaultFixture)
	if err != nil {
		t.Fatal(err)
	}
	emu := imdstest.New(tree, imdstest.Options{})
	ts := httptest.NewServer(emu)
	t.Cleanup(func() { emu.Close(); ts.Close() })
	return emu, ts.URL
}

func client(t testing.TB, url string) *imds.Client {
	t.Helper()
	c, err := imds.New(imds.Options{Endpoint: url, MaxAttempts: 1, Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTheDefaultUserGetsEveryMetadataKeyWithOneToken(t *testing.T) {
	emu, url := emulator(t)
	lines, err := sshkeys.AuthorizedKeysFor(context.Background(), client(t, url), "admin", sshkeys.Lookup{DefaultUser: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 2 || lines[0] != alice || !strings.HasSuffix(lines[1], fixtureDeploy) {
		t.Fatalf("lines = %q", lines)
	}
	var puts, gets []string
	for _, r := range emu.Log() {
		if r.Method == "PUT" {
			puts = append(puts, r.Path)
		} else {
			gets = append(gets, r.Path)
		}
	}
	// Token; listing; two keys; the user's Instance Connect keys (404).
	if len(puts) != 1 || len(gets) != 4 {
		t.Fatalf("requests: PUT %v GET %v", puts, gets)
	}
}

func TestOtherUsersGetOnlyInstanceConnectKeys(t *testing.T) {
	emu, url := emulator(t)
	lines, err := sshkeys.AuthorizedKeysFor(context.Background(), client(t, url), "bob", sshkeys.Lookup{DefaultUser: "admin"})
	if err != nil || len(lines) != 0 {
		t.Fatalf("lines %q, err %v", lines, err)
	}
	if n := len(emu.Log()); n != 2 {
		t.Fatalf("%d requests for a user without keys, want token + one GET: %v", n, emu.Log())
	}
}

func TestInstanceConnectKeysAreServedOnlyWhenTheyVerify(t *testing.T) {
	emu, url := emulator(t)
	p := newEICPKI(t, "")
	now := time.Now()
	p.serve(t, emu.Set, "bob",
		p.block(t, eicKey, testInstance, now.Add(time.Minute)),
		p.block(t, otherKey, testInstance, now.Add(-time.Minute)))
	var logs []string
	lookup := sshkeys.Lookup{DefaultUser: "admin", CABundle: p.bundlePath, Logf: func(f string, a ...any) { logs = append(logs, f) }}
	lines, err := sshkeys.AuthorizedKeysFor(context.Background(), client(t, url), "bob", lookup)
	if err != nil || len(lines) != 1 || lines[0] != eicKey {
		t.Fatalf("lines %q, err %v", lines, err)
	}
	if len(logs) != 2 {
		t.Errorf("want one line for the dropped key and one for the served one: %q", logs)
	}
	// The default user gets both kinds.
	lines, err = sshkeys.AuthorizedKeysFor(context.Background(), client(t, url), "admin", lookup)
	if err != nil || len(lines) != 2 {
		t.Fatalf("default user without Instance Connect keys: %q %v", lines, err)
	}
	// With a CA bundle that does not hold the root, nothing is trusted.
	other := newEICPKI(t, "")
	lookup.CABundle = other.bundlePath
	lines, err = sshkeys.AuthorizedKeysFor(context.Background(), client(t, url), "bob", lookup)
	if len(lines) != 0 || err == nil || !strings.Contains(err.Error(), "trust chain") {
		t.Fatalf("untrusted signer: %q %v", lines, err)
	}
}

func TestAnUnreachableIMDSGivesNoKeysAndOneError(t *testing.T) {
	ts := httptest.NewServer(nil)
	dead := ts.URL
	ts.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var logs []string
	lines, err := sshkeys.AuthorizedKeysFor(ctx, client(t, dead), "admin", sshkeys.Lookup{DefaultUser: "admin", Logf: func(f string, a ...any) { logs = append(logs, f) }})
	if len(lines) != 0 || err == nil || len(logs) != 0 {
		t.Fatalf("lines %q err %v logs %q", lines, err, logs)
	}
}

func TestBadUserNamesAreNotLookedUp(t *testing.T) {
	emu, url := emulator(t)
	for _, name := range []string{"../admin", "a/b", "", "-x"} {
		if lines, err := sshkeys.AuthorizedKeysFor(context.Background(), client(t, url), name, sshkeys.Lookup{}); err == nil || len(lines) != 0 {
			t.Errorf("%q: lines %q err %v", name, lines, err)
		}
	}
	if n := len(emu.Log()); n != 0 {
		t.Fatalf("%d requests for bad names", n)
	}
}

// BenchmarkAuthorizedKeysFor is the in-process part of `flint ssh-keys`
// (a fresh client each time, as each sshd lookup is a new process).
func BenchmarkAuthorizedKeysFor(b *testing.B) {
	_, url := emulator(b)
	for b.Loop() {
		lines, err := sshkeys.AuthorizedKeysFor(context.Background(), client(b, url), "admin", sshkeys.Lookup{DefaultUser: "admin"})
		if err != nil || len(lines) != 2 {
			b.Fatal(lines, err)
		}
	}
}
