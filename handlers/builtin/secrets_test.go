package builtin

import (
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/handlers/handlerstest"
	"github.com/flint-dev/flint/internal/testenv"
)

// The fixture's role credentials (imdstest's default instance).
const (
	fixtureSecretKey = "exampleSecretKeyDoNotUse0000000000000000"
	fixtureSession   = "exampleSessionTokenDoNotUse"
)

// secretUserData carries every kind of secret user-data holds: a plain
// chpasswd password, a users[].passwd hash, a plain_text_passwd and a
// private key in write_files. It is a jinja template, so the run reads
// the whole meta-data tree, role credentials included.
const secretUserData = `## template: jinja
#cloud-config
users:
  - default
  - name: carol
    shell: /bin/sh
    lock_passwd: false
    passwd: "$6$saltsalt$SecretHashOfCarolDoNotShow0000000000000000000000000000000000000000"
  - name: erin
    lock_passwd: false
    plain_text_passwd: "ErinPlainSecretPw"
chpasswd:
  expire: false
  list: |
    admin:AdminChpasswdSecretPw
write_files:
  - path: /etc/app/id_ed25519
    permissions: '0600'
    content: |
      -----BEGIN OPENSSH PRIVATE KEY-----
      PrivateKeyMaterialDoNotShowb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ
      -----END OPENSSH PRIVATE KEY-----
runcmd:
  - [sh, -c, "echo region {{ v1.region }}"]
`

// tokenRecorder passes requests to the emulator and remembers the IMDSv2
// tokens it hands out.
type tokenRecorder struct {
	next   http.Handler
	mu     sync.Mutex
	tokens []string
}

func (r *tokenRecorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPut || !strings.HasSuffix(req.URL.Path, "/api/token") {
		r.next.ServeHTTP(w, req)
		return
	}
	rec := httptest.NewRecorder()
	r.next.ServeHTTP(rec, req)
	body, _ := io.ReadAll(rec.Body)
	if rec.Code == http.StatusOK {
		r.mu.Lock()
		r.tokens = append(r.tokens, strings.TrimSpace(string(body)))
		r.mu.Unlock()
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	w.Write(body)
}

func TestAWholeBootShowsNoSecretInLogsStatusResultsOrFilesOthersCanRead(t *testing.T) {
	needAccountTools(t)
	in := acctInstance(t, secretUserData)
	rec := &tokenRecorder{next: in.Emu}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	start := time.Now().Add(-time.Second)

	st, logs := in.Run(t, func(s *handlers.Setup) { s.Endpoint = srv.URL })
	if r := handlerstest.Result(st, "users"); r.Status != handlers.ResultOK {
		t.Fatalf("users: %s (%s); the fixture's secrets were not all used\n%s", r.Status, r.Reason, logs)
	}
	if r := handlerstest.Result(st, "write-files"); r.Status != handlers.ResultOK {
		t.Fatalf("write-files: %s (%s)", r.Status, r.Reason)
	}
	readCreds := false
	for _, r := range in.Emu.Log() {
		readCreds = readCreds || r.Status == http.StatusOK && strings.Contains(r.Path, "/iam/security-credentials/") && !strings.HasSuffix(r.Path, "/")
	}
	if !readCreds {
		t.Fatal("the run never read the role's credentials: the test shows nothing about them")
	}
	rec.mu.Lock()
	tokens := append([]string(nil), rec.tokens...)
	rec.mu.Unlock()
	if len(tokens) == 0 {
		t.Fatal("the run took no IMDSv2 token")
	}
	secrets := append([]string{fixtureSecretKey, fixtureSession, "SecretHashOfCarolDoNotShow", "ErinPlainSecretPw",
		"AdminChpasswdSecretPw", "PrivateKeyMaterialDoNotShow"}, tokens...)
	check := func(what, text string) {
		t.Helper()
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("%s shows the secret %.12s…", what, s)
			}
		}
	}
	check("the log (stderr)", logs)
	check("status.json", in.ReadFile(t, handlers.StatusPath))
	check("results.json", in.ReadFile(t, "var/lib/flint/instance/results.json"))
	check("the kept metadata", in.ReadFile(t, "var/lib/flint/instance/"+handlers.MetadataFile))

	// The requested key file is the user's: it must have the mode asked.
	key := filepath.Join(in.Root, "etc/app/id_ed25519")
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("write_files target: %v, want mode 0600", err)
	}
	// Every other file the run wrote that is readable beyond its owner.
	// The account database's shadow files (and the backups the account
	// tools keep of them) are 0640 for the shadow group by design and
	// hold hashes by nature.
	exempt := map[string]bool{"etc/app/id_ed25519": true, "etc/shadow": true, "etc/gshadow": true,
		"etc/shadow-": true, "etc/gshadow-": true}
	checked := 0
	filepath.WalkDir(in.Root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		rel, _ := filepath.Rel(in.Root, p)
		fi, err := d.Info()
		if err != nil || exempt[rel] || fi.Mode().Perm()&0o044 == 0 || fi.ModTime().Before(start) {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		checked++
		check(rel+" (mode "+fi.Mode().Perm().String()+")", string(b))
		return nil
	})
	if checked < 3 {
		t.Errorf("only %d files readable by others were written; the walk is wrong", checked)
	}
}

// TestAWholeBootSendsNoSecretToTheJournal runs a boot as the flint
// binary with log.target journal, in a mount namespace where journald's
// socket is the test's: everything flint logs and every line its programs
// print reaches the test, and no secret is among it.
func TestAWholeBootSendsNoSecretToTheJournal(t *testing.T) {
	needAccountTools(t)
	unshare := testenv.Tool(t, "unshare")
	in := acctInstance(t, secretUserData)
	in.Config(t, acctConfig+"log:\n  target: journal\n")
	rec := &tokenRecorder{next: in.Emu}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(dir, "socket"), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var journal []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf, oob := make([]byte, 1<<20), make([]byte, 1024)
		for {
			conn.SetReadDeadline(time.Now().Add(2 * time.Second))
			n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
			if err != nil {
				return
			}
			journal = append(journal, string(buf[:n]))
			// An entry too big for a datagram comes as a memfd.
			msgs, _ := syscall.ParseSocketControlMessage(oob[:oobn])
			for _, m := range msgs {
				fds, _ := syscall.ParseUnixRights(&m)
				for _, fd := range fds {
					f := os.NewFile(uintptr(fd), "entry")
					b, _ := io.ReadAll(io.NewSectionReader(f, 0, 1<<30))
					f.Close()
					journal = append(journal, string(b))
				}
			}
		}
	}()
	script := "mount -t tmpfs flint-run /run && mkdir -p /run/systemd/journal && mount --bind " + dir + " /run/systemd/journal && exec \"$0\" \"$@\""
	out, err := exec.Command(unshare, "-m", "--propagation", "private", "sh", "-ec", script, testenv.FlintBinary(t),
		"run", "--root", in.Root, "--live", "--endpoint", srv.URL, "--skip", "network").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); err != nil && (!ok || ee.ExitCode() != 2) {
		t.Fatalf("run: %v\n%s", err, out)
	}
	<-done
	all := strings.Join(journal, "\n")
	for _, want := range []string{"SYSLOG_IDENTIFIER=flint\n", "SYSLOG_IDENTIFIER=flint-output\n", "region eu-west-1"} {
		if !strings.Contains(all, want) {
			t.Fatalf("the journal stream lacks %q: the test shows nothing\n%s\nstderr: %s", want, all, out)
		}
	}
	rec.mu.Lock()
	secrets := append([]string{fixtureSecretKey, fixtureSession, "SecretHashOfCarolDoNotShow", "ErinPlainSecretPw",
		"AdminChpasswdSecretPw", "PrivateKeyMaterialDoNotShow"}, rec.tokens...)
	rec.mu.Unlock()
	for _, s := range secrets {
		if strings.Contains(all, s) || strings.Contains(string(out), s) {
			t.Errorf("the journal stream or stderr shows the secret %.12s…", s)
		}
	}
}
