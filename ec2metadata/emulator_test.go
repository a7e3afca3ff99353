package ec2metadata

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/flint-dev/flint/imds"
	"github.com/flint-dev/flint/imds/imdstest"
)

// startEmulator serves the shipped fixture on loopback and returns it with
// a connect function for Main that uses the real client.
func startEmulator(tb testing.TB, opts imdstest.Options) (*imdstest.Server, func(string) (Getter, error)) {
	tb.Helper()
	tree, err := imdstest.LoadFixture("../imds/imdstest/testdata/instance.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	emu := imdstest.New(tree, opts)
	srv := httptest.NewServer(emu)
	tb.Cleanup(func() { srv.Close(); emu.Close() })
	return emu, func(endpoint string) (Getter, error) {
		if endpoint == "" {
			endpoint = srv.URL
		}
		return imds.New(imds.Options{Endpoint: endpoint, Getenv: func(string) string { return "" }})
	}
}

func TestAllAgainstTheEmulatorUsesOneTokenAndAsksEachPathOnce(t *testing.T) {
	for _, v2only := range []bool{false, true} {
		emu, connect := startEmulator(t, imdstest.Options{V2Only: v2only})
		var out, errOut strings.Builder
		code := Main(context.Background(), []string{"-i", "--all"}, &out, &errOut, connect)
		if code != 0 || errOut.String() != "" {
			t.Fatalf("exit %d, stderr %q", code, errOut.String())
		}
		for _, line := range []string{
			"ami-id: ami-0c55b159cbfafe1f0\n",
			"block-device-mapping: \n\t ami: /dev/xvda\n\t ebs2: sdb\n\t root: /dev/xvda\ninstance-id:",
			"kernel-id: aki-0a4a7cd4e1bb2ab4c\n",
			"keyname:deploy\nindex:1\nformat:openssh-key\nkey:(begins from next line)\nssh-rsa AAAA",
			"ramdisk-id: not available\n",
			"user-data: \x1f\x8b",
			"tags: \n\t Name: web-1\n\t Environment: staging\n",
		} {
			if !strings.Contains(out.String(), line) {
				t.Errorf("output lacks %q:\n%s", line, out.String())
			}
		}
		if !strings.HasPrefix(out.String(), "instance-id: i-0123456789abcdef0\nami-id: ") {
			t.Errorf("output does not start with -i's line:\n%s", out.String())
		}
		puts, seen := 0, map[string]bool{}
		for _, r := range emu.Log() {
			switch {
			case r.Method == "PUT":
				puts++
			case r.Token != "valid":
				t.Errorf("%s sent without a valid token (%q)", r, r.Token)
			case seen[r.Path]:
				t.Errorf("%s asked twice", r.Path)
			}
			seen[r.Path] = true
		}
		if puts != 1 {
			t.Errorf("v2-only=%v: %d token requests, want 1", v2only, puts)
		}
	}
}

func TestEndpointFlagReachesTheClient(t *testing.T) {
	_, connect := startEmulator(t, imdstest.Options{})
	var out, errOut strings.Builder
	code := Main(context.Background(), []string{"--endpoint", "http://[::1", "-i"}, &out, &errOut, connect)
	if code != 1 || out.String() != "" || !strings.Contains(errOut.String(), "http://[::1") {
		t.Errorf("a malformed endpoint: exit %d, stderr %q, output %q", code, errOut.String(), out.String())
	}
}

// BenchmarkQueryAll is `flint query --all` in process against a loopback
// emulator: one client and one token per iteration, as a process would.
func BenchmarkQueryAll(b *testing.B) {
	benchmarkQuery(b, "--all")
}

// BenchmarkQueryInstanceID is `flint query -i` in process.
func BenchmarkQueryInstanceID(b *testing.B) {
	benchmarkQuery(b, "-i")
}

func benchmarkQuery(b *testing.B, args ...string) {
	_, connect := startEmulator(b, imdstest.Options{})
	for b.Loop() {
		var out, errOut strings.Builder
		if code := Main(context.Background(), args, &out, &errOut, connect); code != 0 {
			b.Fatalf("exit %d: %s", code, errOut.String())
		}
	}
}
