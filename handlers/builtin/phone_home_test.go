package builtin

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/handlers/handlerstest"
)

func TestPhoneHomePostsTheInstancesFacts(t *testing.T) {
	var mu sync.Mutex
	var got url.Values
	var path string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		mu.Lock()
		got, path = r.PostForm, r.URL.Path
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	const hostKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO+kE/+KKx4mb6XO165mscrkRWw77I8p+O3ETxZJtQag root@host\n"
	in := planInstance(t, "#cloud-config\nphone_home: {url: '"+srv.URL+"/$INSTANCE_ID/', post: [instance_id, hostname, pub_key_ed25519, pub_key_rsa]}\n",
		map[string]string{"etc/ssh/ssh_host_ed25519_key.pub": hostKey})
	st, out := in.Run(t, func(s *handlers.Setup) { s.Only = []string{"phone-home", "final-message"} })
	if r := handlerstest.Result(st, "phone-home"); r.Status != handlers.ResultOK {
		t.Fatalf("phone-home %s: %s\n%s", r.Status, r.Reason, out)
	}
	mu.Lock()
	defer mu.Unlock()
	if path != "/i-0123456789abcdef0/" {
		t.Errorf("posted to %s, want the instance id in the path", path)
	}
	if got.Get("instance_id") != "i-0123456789abcdef0" || got.Get("hostname") == "" || got.Get("pub_key_ed25519") != hostKey || got.Get("pub_key_rsa") != "N/A" {
		t.Errorf("form %v", got)
	}
}

func TestPhoneHomeBadInputIsOneLineAndTheChainGoesOn(t *testing.T) {
	old := phoneHomeWait
	phoneHomeWait = 10 * time.Millisecond
	t.Cleanup(func() { phoneHomeWait = old })
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", 500) }))
	t.Cleanup(srv.Close)
	secretURL := strings.Replace(srv.URL, "http://", "http://user:s3cret@", 1) + "/x?token=t0ken"
	for _, tc := range []struct{ name, ud, reason string }{
		{"a URL that is not absolute", "#cloud-config\nphone_home: {url: 'not-a-url'}\n", `phone_home.url: "not-a-url" is not an absolute URL`},
		{"a server that refuses every try", "#cloud-config\nphone_home: {url: '" + secretURL + "', tries: 2}\n", "posting to " + srv.URL + "/x?… failed 2 times (last: HTTP status 500)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := planInstance(t, tc.ud, nil)
			st, out := in.Run(t, func(s *handlers.Setup) { s.Only = []string{"phone-home", "final-message"} })
			wantOneFailedLine(t, st, out, "phone-home", tc.reason)
			if strings.Contains(out, "s3cret") || strings.Contains(out, "t0ken") {
				t.Errorf("the run log shows the URL's credentials:\n%s", out)
			}
		})
	}
}
