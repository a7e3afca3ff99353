package builtin

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/handlers/handlerstest"
)

func TestNTPConfiguresTheInstalledClientAndKeepsItsConfigAside(t *testing.T) {
	in := planInstance(t, "#cloud-config\nntp:\n  servers: [time.example.com]\n",
		map[string]string{"usr/sbin/chronyd": "", "etc/chrony/chrony.conf": "pool 2.debian.pool.ntp.org iburst\n"})
	st, out := in.Run(t, notLiveOnly("ntp"))
	r := handlerstest.Result(st, "ntp")
	if r.Status != handlers.ResultPlanned || !strings.Contains(r.Reason, "systemctl enable chrony.service") {
		t.Fatalf("ntp %s: %s, want the service planned\n%s", r.Status, r.Reason, out)
	}
	if got := in.ReadFile(t, "etc/chrony/chrony.conf"); !strings.Contains(got, "server time.example.com") || strings.Contains(got, "2.debian.pool") {
		t.Errorf("chrony.conf without the server asked for:\n%s", got)
	}
	if got := in.ReadFile(t, "etc/chrony/chrony.conf.dist"); got != "pool 2.debian.pool.ntp.org iburst\n" {
		t.Errorf("the image's chrony.conf not kept as .dist: %q", got)
	}
}

func TestNTPWithoutTheClientInstallsItAsCloudInitDoes(t *testing.T) {
	in := planInstance(t, "#cloud-config\nntp: {ntp_client: chrony}\n", map[string]string{"usr/bin/apt-get": ""})
	if err := os.Chmod(filepath.Join(in.Root, "usr/bin/apt-get"), 0o755); err != nil {
		t.Fatal(err)
	}
	st, out := in.Run(t, notLiveOnly("ntp"))
	r := handlerstest.Result(st, "ntp")
	if r.Status != handlers.ResultPlanned || !strings.Contains(r.Reason, "the chrony configuration is written") {
		t.Fatalf("ntp %s: %s, want the install planned\n%s", r.Status, r.Reason, out)
	}
	if notes := strings.Join(r.Notes, "\n"); !strings.Contains(notes, "apt-get") || !strings.Contains(notes, "install chrony") {
		t.Errorf("notes do not plan installing chrony:\n%s", notes)
	}
	if got := in.ReadFile(t, "etc/chrony/chrony.conf"); !strings.Contains(got, "0.debian.pool.ntp.org") {
		t.Errorf("chrony.conf without the default pools:\n%s", got)
	}
}

func TestNTPBadInputIsOneLineAndTheChainGoesOn(t *testing.T) {
	in := planInstance(t, "#cloud-config\nntp: {ntp_client: openntpd-x}\n", map[string]string{"usr/sbin/chronyd": ""})
	st, out := in.Run(t, notLiveOnly("ntp"))
	r := handlerstest.Result(st, "ntp")
	wantOneFailedLine(t, st, out, "ntp", r.Reason)
	if !strings.Contains(r.Reason, "openntpd-x") || !strings.Contains(r.Reason, "time sync left as it is") {
		t.Errorf("reason %q does not name the client and what was kept", r.Reason)
	}
}
