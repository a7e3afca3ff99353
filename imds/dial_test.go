package imds

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flint-dev/flint/internal/testenv"
)

// echoOnce accepts one connection on network/addr and echoes one line.
func echoOnce(t *testing.T, network, addr string) string {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		line, _ := bufio.NewReader(c).ReadString('\n')
		io.WriteString(c, line)
	}()
	return ln.Addr().String()
}

func TestDialDirectConnectsToLiteralAddresses(t *testing.T) {
	for _, tc := range []struct{ network, listen string }{
		{"tcp4", "127.0.0.1:0"},
		{"tcp6", "[::1]:0"},
	} {
		t.Run(tc.listen, func(t *testing.T) {
			if tc.network == "tcp6" {
				ln, err := net.Listen("tcp6", "[::1]:0")
				testenv.Need(t, err == nil, "IPv6 loopback (::1) is not configured")
				ln.Close()
			}
			addr := echoOnce(t, tc.network, tc.listen)
			c, handled, err := dialDirect(addr, time.Now().Add(5*time.Second))
			if !handled || err != nil {
				t.Fatalf("dialDirect(%s) = handled %v, %v", addr, handled, err)
			}
			defer c.Close()
			if _, ok := c.(*net.TCPConn); !ok {
				t.Errorf("got a %T, want a *net.TCPConn on the poller", c)
			}
			if c.RemoteAddr().String() != addr {
				t.Errorf("connected to %s, want %s", c.RemoteAddr(), addr)
			}
			// Deadlines work: the socket is on the runtime's poller.
			c.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(c, "ping\n")
			if line, err := bufio.NewReader(c).ReadString('\n'); line != "ping\n" || err != nil {
				t.Errorf("echo = %q, %v", line, err)
			}
		})
	}
}

func TestDialDirectReportsARefusedConnectionLikeNet(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	_, handled, err := dialDirect(addr, time.Now().Add(5*time.Second))
	if !handled || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dialDirect to a closed port = handled %v, %v; want ECONNREFUSED", handled, err)
	}
	if want := "dial tcp " + addr + ": connect: connection refused"; err.Error() != want {
		t.Errorf("error %q, want net's wording %q", err, want)
	}
}

func TestDialDirectLeavesWhatItCannotDecideToNet(t *testing.T) {
	for _, tc := range []struct {
		addr     string
		deadline time.Time
	}{
		{"localhost:80", time.Now().Add(time.Second)},
		{"[fe80::1%lo]:80", time.Now().Add(time.Second)},
		{"127.0.0.1:http", time.Now().Add(time.Second)},
		{"127.0.0.1:80", time.Now().Add(-time.Second)},
	} {
		if c, handled, err := dialDirect(tc.addr, tc.deadline); handled || c != nil || err != nil {
			t.Errorf("dialDirect(%q) = %v, handled %v, %v; want it left to net", tc.addr, c, handled, err)
		}
	}
}

func TestTheTransportStillDialsHostNames(t *testing.T) {
	addr := echoOnce(t, "tcp4", "127.0.0.1:0")
	_, port, _ := strings.Cut(addr, ":")
	ctx := &deadlineCtx{Context: t.Context(), deadline: time.Now().Add(5 * time.Second)}
	c, err := newConnTransport(1).dial(ctx, "localhost:"+port)
	if err != nil {
		t.Fatalf("dial localhost:%s: %v", port, err)
	}
	c.Close()
}
