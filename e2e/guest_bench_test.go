package e2e

import (
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/imds/imdstest"
)

// TestGuestBootFigures boots the guest image in alternating rounds, each
// round once per variant, and reports for every first boot the time from
// QEMU's start (the kernel's, within a few hundred milliseconds) to the
// first SSH login as the image's default user, and for flint its
// flint.service start to READY=1 with each handler's time; a reboot of
// each flint guest adds the per-boot figures. The host's load average is
// reported with each boot: under TCG every figure moves with it.
//
// It is opt-in, as each boot takes a minute or more under TCG:
//
//	FLINT_GUEST_BENCH=flint,cloud-init     variants, alternated in this order
//	FLINT_GUEST_BENCH_ROUNDS=2             rounds (default 2)
//
// A variant is "cloud-init" (the image with Debian's cloud-init in
// flint's place), "flint" (the package FLINT_DEB) or NAME=PATH (another
// flint package, to compare two builds). flint's guests get no module
// bundle: a first boot's READY is flint's own time, growing the root
// partition and its file system included (the disk is a GiB larger than
// the image, as in the guest test).
func TestGuestBootFigures(t *testing.T) {
	spec := os.Getenv("FLINT_GUEST_BENCH")
	if spec == "" {
		t.Skip("opt-in: FLINT_GUEST_BENCH=flint,cloud-init (see the test's comment)")
	}
	needGuestTools(t)
	rounds := 2
	if n, err := strconv.Atoi(os.Getenv("FLINT_GUEST_BENCH_ROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	type variant struct{ name, deb string }
	var variants []variant
	for _, v := range strings.Split(spec, ",") {
		switch name, deb, ok := strings.Cut(strings.TrimSpace(v), "="); {
		case name == "cloud-init" && !ok:
			variants = append(variants, variant{name: name})
		case name == "flint" && !ok:
			variants = append(variants, variant{name, flintDeb(t)})
		case ok:
			if _, err := os.Stat(deb); err != nil {
				t.Fatalf("FLINT_GUEST_BENCH: %v", err)
			}
			variants = append(variants, variant{name, deb})
		default:
			t.Fatalf("FLINT_GUEST_BENCH: %q is not cloud-init, flint or NAME=PATH.deb", v)
		}
	}
	k := findKernel(t)
	// One emulator for every guest, IMDSv1 allowed as on EC2 by default:
	// cloud-init 22.4 asks for a token once, and when that first try
	// finds no network yet it stays on IMDSv1 for the boot.
	tree, err := imdstest.ParseFixture(imdstest.DefaultFixture)
	if err != nil {
		t.Fatal(err)
	}
	emu := imdstest.New(tree, imdstest.Options{})
	t.Cleanup(emu.Close)
	key := guestInstance(t, emu)
	srv := &guest{forward: map[string]string{}}
	srv.serve(t, guestIMDSAddr, emu)

	var figs []bootFigure
	for round := 1; round <= rounds; round++ {
		for _, vr := range variants {
			tarball, user := rootfsTarball(t, "rootfs"), guestUser
			setup := func(root string) {
				installFlint(t, root, vr.deb)
				flintConfig(t, root, "network:\n  mtu: -1\n")
			}
			if vr.deb == "" {
				tarball, user, setup = rootfsTarball(t, "rootfs-cloud-init"), "debian", nil
			}
			disk := guestDisk(t, k, tarball, setup)
			boots := []string{"first boot"}
			if vr.deb != "" {
				boots = append(boots, "reboot")
			}
			prev := ""
			for _, boot := range boots {
				load := loadAvg(t)
				v := startVM(t, k, disk, srv.forward, key, user)
				prev = v.waitSSH(t, prev, 10*time.Minute)
				f := bootFigure{variant: vr.name, boot: boot, round: round, ssh: time.Since(v.started), load: load}
				if vr.deb != "" {
					f.ready = v.ready(t)
					f.status = v.status(t)
					t.Logf("%s, round %d, %s: flint analyze\n%s", vr.name, round, boot, v.must(t, "sudo -n flint analyze"))
				} else if out := v.must(t, "id -un; sudo -n true && echo sudo-ok"); !strings.Contains(out, "debian\n") || !strings.Contains(out, "sudo-ok") {
					t.Errorf("cloud-init's default user: %q", out)
				}
				t.Logf("%s, round %d, %s: kernel start to SSH %v, READY %v, load %s", vr.name, round, boot,
					f.ssh.Round(100*time.Millisecond), f.ready.Round(time.Millisecond), load)
				figs = append(figs, f)
				v.poweroff(t)
			}
			os.Remove(disk)
		}
	}
	t.Logf("figures:\n%s", renderFigures(figs))
	var names []string
	for _, vr := range variants {
		if vr.deb != "" {
			names = append(names, vr.name)
		}
	}
	for _, boot := range []string{"first boot", "reboot"} {
		t.Logf("handlers up to READY=1, %s: median (min-max) of %d rounds, ms\n%s", boot, rounds, perHandler(figs, boot, names))
	}
}

// bootFigure is one boot's figures.
type bootFigure struct {
	variant, boot string
	round         int
	ssh, ready    time.Duration // to the first SSH login, flint.service to READY=1
	load          string
	status        *handlers.Status // flint's; nil for cloud-init
}

// renderFigures is a table of every boot, first boots first.
func renderFigures(figs []bootFigure) string {
	figs = slices.Clone(figs)
	sort.SliceStable(figs, func(i, j int) bool { return figs[i].boot < figs[j].boot })
	var b strings.Builder
	// READY's time outside the handlers: start-up, configuration, IMDS
	// before the chain, the status file after each handler.
	fmt.Fprintf(&b, "%-12s %-10s %5s %10s %10s %12s %10s  %s\n", "variant", "boot", "round", "to SSH", "to READY", "in handlers", "outside", "load (1 5 15 min)")
	for _, f := range figs {
		var in, outside time.Duration
		if f.status != nil {
			// Handlers beside the chain overlap the others: their
			// time counts once.
			var upTo []handlers.Result
			for _, r := range f.status.Handlers {
				if _, ok := beforeReady(f.status)[r.Name]; ok && r.Status != handlers.ResultSkipped {
					upTo = append(upTo, r)
				}
			}
			in = time.Duration(handlers.WallMS(upTo) * float64(time.Millisecond))
			outside = f.ready - in
		}
		fmt.Fprintf(&b, "%-12s %-10s %5d %10v %10v %12v %10v  %s\n", f.variant, f.boot, f.round, f.ssh.Round(100*time.Millisecond),
			f.ready.Round(time.Millisecond), in.Round(time.Millisecond), outside.Round(time.Millisecond), f.load)
	}
	return b.String()
}

// perHandler is a table of the handlers up to READY=1 that ran in one of
// the boots of kind boot, with each variant's median time and range.
func perHandler(figs []bootFigure, boot string, variants []string) string {
	times := map[string]map[string][]time.Duration{} // variant, handler
	var order []string
	for _, f := range figs {
		if f.boot != boot || f.status == nil {
			continue
		}
		if times[f.variant] == nil {
			times[f.variant] = map[string][]time.Duration{}
		}
		for _, r := range f.status.Handlers {
			if d, ok := beforeReady(f.status)[r.Name]; ok && r.Status != handlers.ResultSkipped {
				times[f.variant][r.Name] = append(times[f.variant][r.Name], d)
				if !slices.Contains(order, r.Name) {
					order = append(order, r.Name)
				}
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-16s", "handler")
	for _, v := range variants {
		fmt.Fprintf(&b, " %22s", v)
	}
	b.WriteString("\n")
	ms := func(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }
	for _, h := range order {
		fmt.Fprintf(&b, "%-16s", h)
		for _, v := range variants {
			ds := slices.Clone(times[v][h])
			slices.Sort(ds)
			cell := "-"
			if len(ds) > 0 {
				mid := (ds[(len(ds)-1)/2] + ds[len(ds)/2]) / 2
				cell = ms(mid) + " (" + ms(ds[0]) + "-" + ms(ds[len(ds)-1]) + ")"
			}
			fmt.Fprintf(&b, " %22s", cell)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// beforeReady is the time of each handler up to ssh-keys, after which
// READY=1 is sent.
func beforeReady(st *handlers.Status) map[string]time.Duration {
	out := map[string]time.Duration{}
	for _, r := range st.Handlers {
		out[r.Name] = time.Duration(r.DurationMS * float64(time.Millisecond))
		if r.Name == "ssh-keys" {
			break
		}
	}
	return out
}

// loadAvg is the host's load average (1, 5 and 15 minutes).
func loadAvg(t *testing.T) string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}
