package imds_test

import (
	"errors"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/flint-dev/flint/imds"
	"github.com/flint-dev/flint/imds/imdstest"
	"github.com/flint-dev/flint/internal/testenv"
)

// addrs puts each address on lo of the namespace ns (nodad: an IPv6
// address is usable at once).
func addrs(t *testing.T, ns string, cidrs ...string) {
	t.Helper()
	for _, a := range cidrs {
		args := []string{"-n", ns, "addr", "add", a, "dev", "lo"}
		if strings.Contains(a, ":") {
			args = append(args, "nodad")
		}
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
}

// serveIn starts an emulator listening on addr inside ns.
func serveIn(t *testing.T, ns, addr string) *imdstest.Server {
	t.Helper()
	emu := imdstest.New(fixture(t), imdstest.Options{})
	var ln net.Listener
	var err error
	testenv.Do(t, ns, func() { ln, err = net.Listen("tcp", addr) })
	if err != nil {
		t.Fatalf("listen on %s in %s: %v", addr, ns, err)
	}
	srv := &http.Server{Handler: emu}
	go srv.Serve(ln)
	t.Cleanup(func() { emu.Close(); srv.Close() })
	return emu
}

func TestEndpointModeAutoOnAnIPv6OnlyNamespaceUsesTheIPv6EndpointForTheWholeRun(t *testing.T) {
	ns := testenv.Netns(t)
	// Only IPv6: 169.254.169.254 has no route here, so the IPv4 connect
	// fails at once and no packet for it exists at all.
	addrs(t, ns, "fd00:ec2::254/128")
	emu := serveIn(t, ns, "[fd00:ec2::254]:80")
	var c *imds.Client
	var id, again []byte
	var err, err2 error
	testenv.Do(t, ns, func() {
		// Generous timeouts: a token PUT unanswered within the default 1s
		// (a loaded machine) would fall back to IMDSv1 and change the sequence.
		c, err = imds.New(imds.Options{Getenv: func(string) string { return "" }, TokenTimeout: 10 * time.Second, AttemptTimeout: 10 * time.Second})
		if err != nil {
			return
		}
		id, err = c.Get(t.Context(), "meta-data/instance-id")
		again, err2 = c.Get(t.Context(), "meta-data/local-ipv4")
	})
	if err != nil || err2 != nil {
		t.Fatalf("reads in an IPv6-only namespace: %v, %v", err, err2)
	}
	if string(id) != "i-0123456789abcdef0" || len(again) == 0 {
		t.Fatalf("instance-id = %q, local-ipv4 = %q", id, again)
	}
	if got := c.Endpoint(); got != imds.DefaultIPv6Endpoint {
		t.Errorf("Endpoint() = %s, want %s", got, imds.DefaultIPv6Endpoint)
	}
	log := emu.Log()
	if got := sequence(log); got != "PUT /latest/api/token 200\nGET /latest/meta-data/instance-id 200\nGET /latest/meta-data/local-ipv4 200" {
		t.Errorf("requests: %s", got)
	}
	for _, r := range log {
		if r.Remote != log[0].Remote {
			t.Errorf("requests on more than one connection: %s and %s", log[0].Remote, r.Remote)
		}
	}
}

func TestEndpointModeAutoPrefersIPv4WhenBothAnswer(t *testing.T) {
	ns := testenv.Netns(t)
	addrs(t, ns, "169.254.169.254/32", "fd00:ec2::254/128")
	v4 := serveIn(t, ns, "169.254.169.254:80")
	v6 := serveIn(t, ns, "[fd00:ec2::254]:80")
	var c *imds.Client
	var err error
	testenv.Do(t, ns, func() {
		if c, err = imds.New(imds.Options{Endpoint: imds.AutoEndpoint, TokenTimeout: 10 * time.Second, AttemptTimeout: 10 * time.Second}); err == nil {
			_, err = c.Get(t.Context(), "meta-data/instance-id")
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Endpoint() != imds.DefaultEndpoint || len(v4.Log()) != 2 || len(v6.Log()) != 0 {
		t.Errorf("endpoint %s; IPv4 emulator saw %d requests, IPv6 one %d; want IPv4 only", c.Endpoint(), len(v4.Log()), len(v6.Log()))
	}
}

func TestAnExplicitIPv4EndpointKeepsItsMeaningOnAnIPv6OnlyNamespace(t *testing.T) {
	ns := testenv.Netns(t)
	addrs(t, ns, "fd00:ec2::254/128")
	emu := serveIn(t, ns, "[fd00:ec2::254]:80")
	for _, tc := range []struct {
		name string
		opts imds.Options
	}{
		{"the endpoint option", imds.Options{Endpoint: imds.DefaultEndpoint}},
		{"the endpoint mode variable", imds.Options{Getenv: func(k string) string {
			return map[string]string{"AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE": "IPv4"}[k]
		}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			testenv.Do(t, ns, func() {
				tc.opts.MaxAttempts = 1
				var c *imds.Client
				if c, err = imds.New(tc.opts); err == nil {
					_, err = c.Get(t.Context(), "meta-data/instance-id")
				}
			})
			if err == nil || errors.Is(err, imds.ErrNotFound) {
				t.Fatalf("read through an explicit IPv4 endpoint succeeded or was not a connect error: %v", err)
			}
		})
	}
	if n := len(emu.Log()); n != 0 {
		t.Errorf("the IPv6 emulator saw %d requests", n)
	}
}
