package builtin

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/handlers/handlerstest"
)

const testCert = "-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----"

func TestCACertsWritesTheTrustedCertificates(t *testing.T) {
	in := planInstance(t, "#cloud-config\nca_certs:\n  trusted:\n    - |\n      "+strings.ReplaceAll(testCert, "\n", "\n      ")+"\n",
		map[string]string{"etc/ca-certificates.conf": "mozilla/A.crt\n"})
	st, out := in.Run(t, notLiveOnly("ca-certs"))
	r := handlerstest.Result(st, "ca-certs")
	if r.Status != handlers.ResultPlanned || !strings.Contains(r.Reason, "update-ca-certificates") {
		t.Fatalf("ca-certs %s: %s, want update-ca-certificates planned\n%s", r.Status, r.Reason, out)
	}
	if got := in.ReadFile(t, "usr/share/ca-certificates/cloud-init-ca-certs.crt"); got != testCert+"\n" {
		t.Errorf("certificate file = %q", got)
	}
	if got, want := in.ReadFile(t, "etc/ca-certificates.conf"), "mozilla/A.crt\ncloud-init-ca-certs.crt\n"; got != want {
		t.Errorf("ca-certificates.conf = %q, want %q", got, want)
	}
}

func TestCACertsRemoveDefaultsIsPlannedNotDoneWithoutLive(t *testing.T) {
	in := planInstance(t, "#cloud-config\nca_certs: {remove_defaults: true}\n", map[string]string{"etc/ssl/certs/a.pem": "x", "etc/ca-certificates.conf": "mozilla/A.crt\n"})
	st, out := in.Run(t, notLiveOnly("ca-certs"))
	if r := handlerstest.Result(st, "ca-certs"); r.Status != handlers.ResultPlanned {
		t.Fatalf("ca-certs %s: %s\n%s", r.Status, r.Reason, out)
	}
	if _, err := os.Stat(filepath.Join(in.Root, "etc/ssl/certs/a.pem")); err != nil {
		t.Errorf("the store was emptied without --live: %v", err)
	}
}

func TestCACertsBadInputIsOneLineAndTheChainGoesOn(t *testing.T) {
	in := planInstance(t, "#cloud-config\nca_certs: [not, a, mapping]\n", map[string]string{"etc/ca-certificates.conf": "mozilla/A.crt\n"})
	st, out := in.Run(t, notLiveOnly("ca-certs"))
	wantOneFailedLine(t, st, out, "ca-certs", "ca_certs: is a list, not a mapping")
	if got := in.ReadFile(t, "etc/ca-certificates.conf"); got != "mozilla/A.crt\n" {
		t.Errorf("ca-certificates.conf changed: %q", got)
	}
}
