package network

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

// benchMetadata is 4 ENIs with 10 IPv4 addresses each.
func benchMetadata() *mapMetadata {
	md := newMapMetadata(map[string]string{"meta-data/mac": mac0})
	for i, mac := range benchMACs {
		var ips []string
		for j := range 10 {
			ips = append(ips, fmt.Sprintf("10.0.%d.%d", i+1, 10+j))
		}
		md.addENI(mac, eniKeys("device-number", fmt.Sprint(i), "network-card", "0",
			"local-ipv4s", strings.Join(ips, "\n"), "subnet-ipv4-cidr-block", fmt.Sprintf("10.0.%d.0/24", i+1)))
	}
	return md
}

var benchMACs = fixtureMACs

func benchNet(b *testing.B) *testNet {
	tn := newTestNet(b)
	for i := range benchMACs {
		tn.attach(b, i)
	}
	return tn
}

// undo reverses the additions of a reconciliation so the next one starts
// from scratch.
func undo(b *testing.B, h *netlink.Handle, changes []Change) {
	var inv []Change
	for i := len(changes) - 1; i >= 0; i-- {
		c := changes[i]
		if c.Op == OpAdd {
			c.Op = OpDel
			inv = append(inv, c)
		}
	}
	if err := Apply(context.Background(), h, inv); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkReconcile4ENIx10Addresses measures the whole handler (read
// metadata from memory, read kernel state, plan, diff, apply) configuring
// 4 ENIs with 10 addresses each from scratch: 40 addresses, 8 routes,
// 30 rules.
func BenchmarkReconcile4ENIx10Addresses(b *testing.B) {
	tn := benchNet(b)
	md := benchMetadata()
	ctx := context.Background()
	for b.Loop() {
		res, err := Reconcile(ctx, tn.h, md, staticCfg, false)
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Changes) < 40+8+30 {
			b.Fatalf("only %d changes", len(res.Changes))
		}
		b.StopTimer()
		undo(b, tn.h, res.Changes)
		b.StartTimer()
	}
}

// BenchmarkReconcileConverged is the same handler when nothing is left to
// do: the cost of every later boot and of each watch wake-up.
func BenchmarkReconcileConverged(b *testing.B) {
	tn := benchNet(b)
	md := benchMetadata()
	ctx := context.Background()
	if _, err := Reconcile(ctx, tn.h, md, staticCfg, false); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		res, err := Reconcile(ctx, tn.h, md, staticCfg, false)
		if err != nil || len(res.Changes) != 0 {
			b.Fatalf("err %v, changes %v", err, changeLines(res.Changes))
		}
	}
}

// BenchmarkPlanDiff is the pure part alone.
func BenchmarkPlanDiff(b *testing.B) {
	in, err := Gather(context.Background(), benchMetadata())
	if err != nil {
		b.Fatal(err)
	}
	links := []Link{
		{Index: 2, Name: "eth0", MAC: mac0}, {Index: 3, Name: "eth1", MAC: mac1},
		{Index: 4, Name: "eth2", MAC: mac2}, {Index: 5, Name: "eth3", MAC: benchMACs[3]},
	}
	for b.Loop() {
		if n := len(Diff(Plan(in, links, staticCfg), Current{})); n < 78 {
			b.Fatalf("%d changes", n)
		}
	}
}

// TestMain runs the watch-idle measurement subject instead of the tests
// when bench/watch-idle.sh starts the test binary with FLINT_WATCH_IDLE=1
// inside a namespace it made.
func TestMain(m *testing.M) {
	if os.Getenv("FLINT_WATCH_IDLE") == "1" {
		if err := watchIdle(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// watchIdle runs Watch over the fixture until SIGTERM.
func watchIdle() error {
	h, err := netlink.NewHandle()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	md := fixtureMetadata()
	return Watch(ctx, h, md, WatchOptions{Config: staticCfg,
		Logf: func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) },
		OnReconcile: func(r Result, err error) {
			fmt.Fprintf(os.Stderr, "%s reconciled: %d changes, err %v\n", time.Now().Format(time.TimeOnly), len(r.Changes), err)
		}})
}
