package builtin

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/handlers/handlerstest"
)

func TestWriteFilesSourceIsFetchedAndAFailureNeverWritesAnEmptyFile(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/motd":
			w.Write([]byte("fetched motd\n"))
		case r.URL.Path == "/private" && r.Header.Get("Authorization") == "Bearer s3cr3t-token":
			w.Write([]byte("private\n"))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	u := strings.Replace(srv.URL, "http://", "http://user:hunter2@", 1)
	in := planInstance(t, "#cloud-config\nwrite_files:\n"+
		"  - {path: /etc/motd, source: {uri: '"+srv.URL+"/motd'}, content: 'fallback'}\n"+
		"  - {path: /etc/private, source: {uri: '"+srv.URL+"/private', headers: {Authorization: 'Bearer s3cr3t-token'}}}\n"+
		"  - {path: /etc/fallback, source: {uri: '"+srv.URL+"/missing'}, content: 'from content'}\n"+
		"  - {path: /etc/none, source: {uri: '"+u+"/missing?X-Amz-Signature=abc'}}\n", nil)
	st, out := in.Run(t, func(s *handlers.Setup) { s.Only = []string{"write-files", "final-message"} })
	r := handlerstest.Result(st, "write-files")
	wantOneFailedLine(t, st, out, "write-files", "/etc/none: source "+srv.URL+"/missing?… could not be fetched")
	if !strings.Contains(r.Reason, "no content to fall back to; not written") {
		t.Errorf("reason %q does not say the file was not written", r.Reason)
	}
	for _, secret := range []string{"hunter2", "X-Amz-Signature", "s3cr3t-token"} {
		if strings.Contains(out, secret) || strings.Contains(r.Reason, secret) || strings.Contains(strings.Join(r.Notes, "\n"), secret) {
			t.Errorf("the run log shows %q", secret)
		}
	}
	for path, want := range map[string]string{"etc/motd": "fetched motd\n", "etc/private": "private\n", "etc/fallback": "from content"} {
		if got := in.ReadFile(t, path); got != want {
			t.Errorf("%s = %q, want %q", path, got, want)
		}
	}
	if _, err := os.Stat(filepath.Join(in.Root, "etc/none")); err == nil {
		t.Error("/etc/none written though its source failed and it has no content")
	}
}
