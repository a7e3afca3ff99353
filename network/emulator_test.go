package network

import (
	"context"
	"net/http/httptest"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/flint-dev/flint/imds"
	"github.com/flint-dev/flint/imds/imdstest"
)

// TestReconcileAgainstTheEmulator runs the real IMDS client against the
// emulator's default fixture (on 127.0.0.1) and configures a namespace.
func TestReconcileAgainstTheEmulator(t *testing.T) {
	tree, err := imdstest.ParseFixture(imdstest.DefaultFixture)
	if err != nil {
		t.Fatal(err)
	}
	emu := imdstest.New(tree, imdstest.Options{V2Only: true})
	srv := httptest.NewServer(emu)
	defer srv.Close()
	client, err := imds.New(imds.Options{Endpoint: srv.URL, Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}

	tn := newTestNet(t)
	const primary, secondary = "0e:49:61:0f:c3:11", "0e:7c:1a:44:aa:02"
	tn.attachMAC(t, 0, primary)
	tn.attachMAC(t, 1, secondary)
	ctx := context.Background()
	if _, err := Reconcile(ctx, tn.h, client, staticCfg, false); err != nil {
		t.Fatal(err)
	}
	checkState(t, tn,
		sorted("eth0 10.0.1.23/24", "eth0 2001:db8:1234:1a00::23/64",
			"eth1 10.0.2.40/24", "eth1 10.0.2.41/32", "eth1 10.0.2.42/32", "eth1 2001:db8:1234:1b00::42/64"),
		sorted("10.0.1.0/24 dev eth0 table 10000", "default via 10.0.1.1 dev eth0 table 10000",
			"default via 10.0.1.1 dev eth0 metric 512",
			"2001:db8:1234:1a00::/64 dev eth0 table 10000", "default via 2001:db8:1234:1a00::1 dev eth0 table 10000",
			"default via 2001:db8:1234:1a00::1 dev eth0 metric 512",
			"10.0.2.0/24 dev eth1 table 10001", "default via 10.0.2.1 dev eth1 table 10001",
			"2001:db8:1234:1b00::/64 dev eth1 table 10001", "default via 2001:db8:1234:1b00::1 dev eth1 table 10001",
			"local 10.0.2.64/28 dev eth1 table local", "local 2001:db8:1234:1b01::/80 dev eth1 table local"),
		sorted("priority 10001 from 10.0.2.40 lookup 10001", "priority 10001 from 10.0.2.41 lookup 10001",
			"priority 10001 from 10.0.2.42 lookup 10001", "priority 10001 from 2001:db8:1234:1b00::42 lookup 10001",
			"priority 10001 from 10.0.2.64/28 lookup 10001", "priority 10001 from 2001:db8:1234:1b01::/80 lookup 10001"))

	// Only the keys the planner needs are read, each once per run.
	emu.ResetLog()
	res, err := Reconcile(ctx, tn.h, client, staticCfg, false)
	if err != nil || len(res.Changes) != 0 {
		t.Fatalf("second run: err %v, changes %v", err, changeLines(res.Changes))
	}
	var got []string
	for _, r := range emu.Log() {
		if r.Method == "GET" {
			got = append(got, strings.TrimPrefix(r.Path, "/latest/"))
		}
	}
	want := []string{"meta-data/mac", macsPath}
	for _, mac := range []string{primary, secondary} {
		for _, k := range Keys {
			want = append(want, macsPath+mac+"/"+k)
		}
	}
	sort.Strings(got)
	sort.Strings(want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("requests:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
}
