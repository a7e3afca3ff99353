package network

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

// eventually polls cond every 20ms until it holds or d passes.
func eventually(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func hasRule(t *testing.T, ns, want string) bool {
	_, _, rules := ipState(t, ns)
	return contains(rules, want)
}

func TestWatchConfiguresHotPluggedENIAndCleansUpOnDetach(t *testing.T) {
	tn := newTestNet(t)
	tn.attach(t, 0)
	md := newMapMetadata(map[string]string{"meta-data/mac": mac0})
	md.addENI(mac0, eniKeys("device-number", "0", "local-ipv4s", "10.0.1.10", "subnet-ipv4-cidr-block", "10.0.1.0/24"))

	ctx, cancel := context.WithCancel(context.Background())
	var (
		wg      sync.WaitGroup
		werr    error
		mu      sync.Mutex
		rounds  int
		logHint []string
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		werr = Watch(ctx, tn.h, md, WatchOptions{
			Config:    staticCfg,
			Namespace: &tn.nsh,
			Logf: func(f string, a ...any) {
				mu.Lock()
				defer mu.Unlock()
				logHint = append(logHint, f)
			},
			OnReconcile: func(Result, error) { mu.Lock(); rounds++; mu.Unlock() },
		})
	}()
	defer func() { cancel(); wg.Wait() }()

	if !eventually(5*time.Second, func() bool {
		_, routes, _ := ipState(t, tn.ns)
		return contains(routes, "default via 10.0.1.1 dev eth0 table 10000")
	}) {
		t.Fatal("watch did not configure eth0 at start")
	}

	// Attached, but IMDS does not know it yet, then reports the
	// device-number 0 placeholder: nothing may happen to eth1.
	tn.attach(t, 1)
	time.Sleep(300 * time.Millisecond)
	md.addENI(mac1, eniKeys("device-number", "0", "local-ipv4s", "10.0.2.10\n10.0.2.11", "subnet-ipv4-cidr-block", "10.0.2.0/24"))
	time.Sleep(500 * time.Millisecond)
	addrs, _, rules := ipState(t, tn.ns)
	for _, a := range addrs {
		if strings.HasPrefix(a, "eth1 ") {
			t.Errorf("eth1 configured while its device-number was the 0 placeholder: %s", a)
		}
	}
	if len(rules) != 0 {
		t.Errorf("rules during the device-number race: %v", rules)
	}

	md.set(macsPath+mac1+"/device-number", "1")
	if !eventually(2*time.Second, func() bool {
		return hasRule(t, tn.ns, "priority 10001 from 10.0.2.11 lookup 10001")
	}) {
		t.Fatalf("eth1 not configured within 2s of its metadata appearing; log: %v", logHint)
	}
	addrs, routes, _ := ipState(t, tn.ns)
	if !contains(addrs, "eth1 10.0.2.10/24") || !contains(routes, "default via 10.0.2.1 dev eth1 table 10001") {
		t.Errorf("eth1 half configured: %v %v", addrs, routes)
	}

	// Idle: with nothing pending the watcher must not keep polling.
	mu.Lock()
	before := rounds
	mu.Unlock()
	time.Sleep(1500 * time.Millisecond)
	mu.Lock()
	idle := rounds - before
	mu.Unlock()
	if idle > 1 {
		t.Errorf("%d reconciliations while idle, want at most 1", idle)
	}

	tn.detach(t, 1)
	if !eventually(2*time.Second, func() bool {
		_, _, rules := ipState(t, tn.ns)
		return len(rules) == 0
	}) {
		_, _, rules := ipState(t, tn.ns)
		t.Errorf("rules of detached eth1 still present: %v", rules)
	}
	cancel()
	wg.Wait()
	if werr != nil {
		t.Errorf("Watch returned %v after cancel, want nil", werr)
	}
}
