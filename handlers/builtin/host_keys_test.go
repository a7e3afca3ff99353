package builtin

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/handlers/handlerstest"
	"github.com/flint-dev/flint/internal/rootfs"
	"github.com/flint-dev/flint/internal/testenv"
	"github.com/flint-dev/flint/sshkeys"
)

func hostKeysRun(t *testing.T, in *instance) (handlers.Result, string) {
	t.Helper()
	st, out := acctRun(t, in, func(s *handlers.Setup) { s.Only = []string{"host-keys"} })
	return handlerstest.Result(st, "host-keys"), out
}

func TestCloudConfigHostKeysAndKeyTypesAreHonoured(t *testing.T) {
	given, err := sshkeys.GenerateHostKey("ed25519", "root@given")
	if err != nil {
		t.Fatal(err)
	}
	indent := func(s string) string { return "    " + strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n    ") }
	in := acctInstance(t, "#cloud-config\nssh_genkeytypes: [ecdsa]\nssh_keys:\n  ed25519_private: |\n"+indent(string(given.Private))+"\n  ed25519_public: "+strings.TrimSpace(string(given.Public))+"\n")
	// The image carries an RSA key baked from another instance.
	os.MkdirAll(filepath.Join(in.Root, "etc/ssh"), 0o755)
	os.WriteFile(filepath.Join(in.Root, "etc/ssh/ssh_host_rsa_key"), []byte("baked"), 0o600)
	os.WriteFile(filepath.Join(in.Root, "etc/ssh/ssh_host_rsa_key.pub"), []byte("baked"), 0o644)
	r, out := hostKeysRun(t, in)
	if r.Status != "ok" {
		t.Fatalf("%s %q\n%s", r.Status, r.Reason, out)
	}
	if in.ReadFile(t, "etc/ssh/ssh_host_ed25519_key") != string(given.Private) {
		t.Error("the given ed25519 key was not installed")
	}
	if _, err := os.Stat(filepath.Join(in.Root, "etc/ssh/ssh_host_rsa_key")); !os.IsNotExist(err) {
		t.Error("the baked RSA key was kept (ssh_deletekeys defaults to true)")
	}
	if !strings.HasPrefix(in.ReadFile(t, "etc/ssh/ssh_host_ecdsa_key.pub"), "ecdsa-sha2-nistp256 ") {
		t.Error("no ecdsa key generated")
	}
	if strings.Contains(out, "PRIVATE KEY") || strings.Contains(strings.Join(r.Notes, "\n"), "PRIVATE KEY") {
		t.Fatal("a private key reached the logs")
	}
	if !strings.Contains(out, "root@given (ED25519)") || !strings.Contains(out, "(ECDSA)") {
		t.Errorf("fingerprints:\n%s", out)
	}
}

func TestKeepingImageHostKeysWhenAsked(t *testing.T) {
	in := acctInstance(t, "#cloud-config\nssh_deletekeys: false\nssh_genkeytypes: [ed25519]\n")
	k, _ := sshkeys.GenerateHostKey("ed25519", "root@image")
	os.MkdirAll(filepath.Join(in.Root, "etc/ssh"), 0o755)
	os.WriteFile(filepath.Join(in.Root, "etc/ssh/ssh_host_ed25519_key"), k.Private, 0o600)
	os.WriteFile(filepath.Join(in.Root, "etc/ssh/ssh_host_ed25519_key.pub"), k.Public, 0o644)
	if r, out := hostKeysRun(t, in); r.Status != "ok" {
		t.Fatalf("%s %q\n%s", r.Status, r.Reason, out)
	}
	if in.ReadFile(t, "etc/ssh/ssh_host_ed25519_key") != string(k.Private) {
		t.Fatal("the image's key was replaced")
	}
}

func TestAMismatchedGivenHostKeyIsRefusedWithoutQuotingIt(t *testing.T) {
	a, _ := sshkeys.GenerateHostKey("ed25519", "")
	b, _ := sshkeys.GenerateHostKey("ed25519", "")
	in := acctInstance(t, "#cloud-config\nssh_keys:\n  ed25519_private: |\n    "+strings.ReplaceAll(strings.TrimSpace(string(a.Private)), "\n", "\n    ")+"\n  ed25519_public: "+strings.TrimSpace(string(b.Public))+"\n")
	img, _ := sshkeys.GenerateHostKey("rsa", "root@image")
	os.MkdirAll(filepath.Join(in.Root, "etc/ssh"), 0o755)
	os.WriteFile(filepath.Join(in.Root, "etc/ssh/ssh_host_rsa_key"), img.Private, 0o600)
	os.WriteFile(filepath.Join(in.Root, "etc/ssh/ssh_host_rsa_key.pub"), img.Public, 0o644)
	r, _ := hostKeysRun(t, in)
	if r.Status != "failed" || !strings.Contains(r.Reason, "not one pair") || strings.Contains(r.Reason, "PRIVATE") {
		t.Fatalf("%s %q", r.Status, r.Reason)
	}
	// Refused before anything was removed: sshd still has a host key.
	if in.ReadFile(t, "etc/ssh/ssh_host_rsa_key") != string(img.Private) {
		t.Fatal("a bad given pair cost the image its host keys")
	}
}

func TestSSHDAcceptsTheHostKeysFlintWrites(t *testing.T) {
	sshd := testenv.SSHD(t)
	in := acctInstance(t, "")
	if r, out := hostKeysRun(t, in); r.Status != "ok" {
		t.Fatalf("%s %q\n%s", r.Status, r.Reason, out)
	}
	var cfg strings.Builder
	for _, typ := range sshkeys.HostKeyTypes {
		cfg.WriteString("HostKey " + filepath.Join(in.Root, "etc/ssh/ssh_host_"+typ+"_key") + "\n")
	}
	conf := filepath.Join(t.TempDir(), "sshd_config")
	os.WriteFile(conf, []byte(cfg.String()+"ListenAddress 127.0.0.1:1\nPidFile none\n"), 0o600)
	if out, err := exec.Command(sshd, "-t", "-f", conf).CombinedOutput(); err != nil {
		t.Fatalf("sshd -t: %v\n%s", err, out)
	}
}

func TestARootWithoutSSHDGetsNoHostKeys(t *testing.T) {
	in := newInstance(t)
	r, out := hostKeysRun(t, in)
	if r.Status != "ok" || !strings.Contains(strings.Join(r.Notes, "\n"), "no sshd in this root") {
		t.Fatalf("%s %q %q\n%s", r.Status, r.Reason, r.Notes, out)
	}
	if _, err := os.Stat(filepath.Join(in.Root, "etc/ssh")); !os.IsNotExist(err) {
		t.Fatal("etc/ssh created")
	}
}

// Keys are started when the chain starts (an RSA key takes seconds on a
// slow machine) but take the host name the hostname handler sets later in
// the chain; a type the user-data leaves out is not written.
func TestHostKeysStartedWithTheChainCarryTheNameSetLater(t *testing.T) {
	in := acctInstance(t, "#cloud-config\nhostname: web-7\nssh_genkeytypes: [rsa, ed25519]\n")
	st, out := acctRun(t, in, func(s *handlers.Setup) { s.Only = []string{"hostname", "host-keys"} })
	if r := handlerstest.Result(st, "host-keys"); r.Status != "ok" {
		t.Fatalf("%s %q\n%s", r.Status, r.Reason, out)
	}
	for _, typ := range []string{"rsa", "ed25519"} {
		pub := in.ReadFile(t, "etc/ssh/ssh_host_"+typ+"_key.pub")
		if !strings.HasSuffix(pub, " root@web-7\n") {
			t.Errorf("%s: %q", typ, pub)
		}
		priv := in.ReadFile(t, "etc/ssh/ssh_host_"+typ+"_key")
		if err := sshkeys.CheckHostKeyPair([]byte(priv), []byte(pub)); err != nil {
			t.Errorf("%s: %v", typ, err)
		}
	}
	if _, err := os.Stat(filepath.Join(in.Root, "etc/ssh/ssh_host_ecdsa_key")); !os.IsNotExist(err) {
		t.Errorf("an ecdsa key was written: %v", err)
	}
}

// A boot that could not record the handler (a full /var) runs it again on
// the next boot of the same instance: the keys a person's known_hosts
// holds are kept, named by the instance file beside them. A new instance
// gets new keys.
func TestHostKeysAreMadeOncePerInstanceWhenTheHandlerRunsAgain(t *testing.T) {
	in := acctInstance(t, "")
	if r, out := hostKeysRun(t, in); r.Status != "ok" {
		t.Fatalf("%s %q\n%s", r.Status, r.Reason, out)
	}
	first := in.ReadFile(t, "etc/ssh/ssh_host_ed25519_key.pub")
	if got := in.ReadFile(t, "etc/ssh/ssh_host_keys.instance"); got != "i-0123456789abcdef0\n" {
		t.Fatalf("instance file %q", got)
	}

	forgetDone(t, in, "host-keys")
	r, out := hostKeysRun(t, in)
	if r.Status != "ok" || !strings.Contains(strings.Join(r.Notes, "\n"), "kept those made for this instance") {
		t.Fatalf("%s %q %v\n%s", r.Status, r.Reason, r.Notes, out)
	}
	if in.ReadFile(t, "etc/ssh/ssh_host_ed25519_key.pub") != first {
		t.Fatal("the handler running again for the same instance made new host keys")
	}
	if !strings.Contains(out, "BEGIN SSH HOST KEY FINGERPRINTS") {
		t.Errorf("the kept keys' fingerprints are not printed:\n%s", out)
	}

	in.Emu.Set("meta-data/instance-id", []byte("i-0fedcba9876543210"))
	if r, out := hostKeysRun(t, in); r.Status != "ok" {
		t.Fatalf("%s %q\n%s", r.Status, r.Reason, out)
	}
	if in.ReadFile(t, "etc/ssh/ssh_host_ed25519_key.pub") == first {
		t.Error("a new instance kept the host keys")
	}
	if got := in.ReadFile(t, "etc/ssh/ssh_host_keys.instance"); got != "i-0fedcba9876543210\n" {
		t.Errorf("instance file %q after a new instance", got)
	}
}

// The early stage decides what to make ahead from the image alone, and
// the handler writes the keys made ahead, with the host name set later,
// each taken once: the directory is gone after the run.
func TestHostKeysMadeAheadAreTheOnesWritten(t *testing.T) {
	in := acctInstance(t, "#cloud-config\nhostname: web-7\nssh_genkeytypes: [ed25519, ecdsa]\n")
	cfg, err := Catalog().LoadConfig(in.Root, "")
	if err != nil {
		t.Fatal(err)
	}
	root, err := rootfs.Open(in.Root)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	bare, err := rootfs.Open(newInstance(t).Root)
	if err != nil {
		t.Fatal(err)
	}
	defer bare.Close()
	if types, why, err := HostKeysAhead(bare, cfg); err != nil || types != nil || !strings.Contains(why, "no sshd") {
		t.Fatalf("a root without sshd: %v %q %v", types, why, err)
	}
	os.MkdirAll(filepath.Join(in.Root, "etc/ssh"), 0o755)
	types, why, err := HostKeysAhead(root, cfg)
	if err != nil || strings.Join(types, ",") != "rsa,ecdsa,ed25519" {
		t.Fatalf("a new image: %v %q %v", types, why, err)
	}
	dir := filepath.Join(in.Root, HostKeysAheadDir)
	// rsa is left out here to keep the test fast; the handler makes it
	// only if the user-data asks for it (it does not).
	if err := sshkeys.MakeAhead(dir, []string{"ed25519", "ecdsa"}); err != nil {
		t.Fatal(err)
	}
	made := map[string][]byte{}
	for _, typ := range []string{"ed25519", "ecdsa"} {
		if made[typ], err = os.ReadFile(filepath.Join(dir, typ)); err != nil {
			t.Fatal(err)
		}
	}
	st, out := acctRun(t, in, func(s *handlers.Setup) { s.Only = []string{"hostname", "host-keys"} })
	if r := handlerstest.Result(st, "host-keys"); r.Status != "ok" {
		t.Fatalf("%s %q\n%s", r.Status, r.Reason, out)
	}
	for typ, priv := range made {
		pub := in.ReadFile(t, "etc/ssh/ssh_host_"+typ+"_key.pub")
		if err := sshkeys.CheckHostKeyPair(priv, []byte(pub)); err != nil || !strings.HasSuffix(pub, " root@web-7\n") {
			t.Errorf("%s: wrote %q, not the key made ahead: %v", typ, pub, err)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the keys made ahead are still in %s: %v", dir, err)
	}
	notes := strings.Join(handlerstest.Result(st, "host-keys").Notes, "\n")
	for _, typ := range []string{"ed25519", "ecdsa"} {
		if !strings.Contains(notes, "host key "+typ+": made ahead by flint-host-keys.service (waited ") {
			t.Errorf("no note that the %s key was made ahead:\n%s", typ, notes)
		}
	}
	// The next boot of this image: keys were made for an instance.
	if types, why, err := HostKeysAhead(root, cfg); err != nil || types != nil || !strings.Contains(why, "i-0123456789abcdef0") {
		t.Errorf("after the first boot: %v %q %v", types, why, err)
	}
}
