package builtin

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/handlers/handlerstest"
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
