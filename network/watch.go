package network

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// WatchOptions configures Watch. The zero value works.
type WatchOptions struct {
	Config Config
	// Namespace is the network namespace h works in, so link updates are
	// subscribed there too; nil means the caller's namespace.
	Namespace *netns.NsHandle
	// Logf receives one line per change applied and per problem; nil is silent.
	Logf func(format string, args ...any)
	// MinBackoff and MaxBackoff bound the wait between metadata polls for a
	// link that is not configured yet (defaults 100ms and 1s: a hot-plugged
	// ENI is configured about a second after its metadata appears).
	MinBackoff, MaxBackoff time.Duration
	// GiveUp stops polling for a link whose metadata never becomes usable
	// (default 10 minutes); the next link event starts again.
	GiveUp time.Duration
	// Refresh, when positive, reconciles everything that often even without
	// link events, to pick up addresses assigned to an ENI later.
	Refresh time.Duration
	// OnReconcile, when set, is called after every reconciliation.
	OnReconcile func(Result, error)
}

func (o *WatchOptions) defaults() {
	if o.MinBackoff <= 0 {
		o.MinBackoff = 100 * time.Millisecond
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(time.Second, o.MinBackoff)
	}
	if o.GiveUp <= 0 {
		o.GiveUp = 10 * time.Minute
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
}

// settle coalesces the burst of link messages one attach or detach makes.
const settle = 50 * time.Millisecond

// Watch configures every ENI now and then follows netlink link updates
// until ctx ends: a link attached later is configured once its metadata
// appears (polled with capped backoff, never busy), and when a link goes
// away the rules of its table are removed. It returns nil when ctx ends,
// or an error when the netlink subscription fails. md must answer fresh on
// every call (no cache).
func Watch(ctx context.Context, h *netlink.Handle, md Metadata, opts WatchOptions) error {
	opts.defaults()
	if err := opts.Config.Validate(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	updates := make(chan netlink.LinkUpdate, 64)
	var (
		subMu  sync.Mutex
		subErr error
	)
	err := netlink.LinkSubscribeWithOptions(updates, ctx.Done(), netlink.LinkSubscribeOptions{
		Namespace: opts.Namespace,
		ErrorCallback: func(err error) {
			subMu.Lock()
			defer subMu.Unlock()
			if subErr == nil {
				subErr = err
			}
		},
	})
	if err != nil {
		return fmt.Errorf("subscribe to link updates: %w", err)
	}

	w := &watcher{h: h, md: md, opts: opts, known: map[int]linkSeen{}, hotplug: map[string]bool{}, since: map[string]time.Time{}, gaveUp: map[string]bool{}}
	if links, err := ReadLinks(h); err == nil {
		for _, l := range links {
			w.known[l.Index] = seen(l)
		}
	}
	timer := time.NewTimer(0) // first reconcile right away
	var refresh <-chan time.Time
	if opts.Refresh > 0 {
		t := time.NewTicker(opts.Refresh)
		defer t.Stop()
		refresh = t.C
	}
	backoff := opts.MinBackoff
	for {
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case u, ok := <-updates:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				subMu.Lock()
				defer subMu.Unlock()
				return fmt.Errorf("link updates stopped: %w", errors.Join(subErr, errors.New("netlink socket closed")))
			}
			if w.relevant(u) {
				clear(w.since) // a link event restarts every wait
				clear(w.gaveUp)
				backoff = opts.MinBackoff
				resetTimer(timer, settle)
			}
		case <-refresh:
			resetTimer(timer, 0)
		case <-timer.C:
			retry := w.reconcile(ctx)
			if retry {
				resetTimer(timer, backoff)
				backoff = min(2*backoff, opts.MaxBackoff)
			} else {
				backoff = opts.MinBackoff
			}
		}
	}
}

func resetTimer(t *time.Timer, d time.Duration) {
	t.Stop()
	t.Reset(d)
}

type linkSeen struct {
	name, mac string
	up        bool
}

func seen(l Link) linkSeen { return linkSeen{l.Name, l.MAC, l.Up} }

type watcher struct {
	h     *netlink.Handle
	md    Metadata
	opts  WatchOptions
	known map[int]linkSeen
	// hotplug holds MACs of links that appeared while watching: those are
	// waited for until their metadata shows up.
	hotplug map[string]bool
	// since is when each MAC started waiting, to give up after GiveUp.
	since  map[string]time.Time
	gaveUp map[string]bool
}

// relevant records a link update and says whether it calls for a
// reconciliation: a link added, removed, renamed, re-addressed or brought
// up. Updates flint's own MTU changes cause, and updates of ignored links
// (container veths come and go by the hundred), are not.
func (w *watcher) relevant(u netlink.LinkUpdate) bool {
	l := linkFrom(u.Link)
	if u.Header.Type == unix.RTM_DELLINK {
		old, ok := w.known[l.Index]
		delete(w.known, l.Index)
		delete(w.hotplug, old.mac)
		return ok && !w.opts.Config.Ignored(old.name)
	}
	if w.opts.Config.Ignored(l.Name) {
		w.known[l.Index] = seen(l)
		return false
	}
	old, ok := w.known[l.Index]
	w.known[l.Index] = seen(l)
	if !ok || old.mac != l.MAC {
		if l.MAC != "" {
			w.hotplug[l.MAC] = true
		}
		return true
	}
	return old != seen(l)
}

// reconcile runs one reconciliation and reports whether something is
// still waiting (metadata not there yet, a transient error).
func (w *watcher) reconcile(ctx context.Context) bool {
	res, err := Reconcile(ctx, w.h, w.md, w.opts.Config, false)
	for _, c := range res.Changes {
		w.opts.Logf("network: %s", c)
	}
	if w.opts.OnReconcile != nil {
		w.opts.OnReconcile(res, err)
	}
	waiting := map[string]bool{}
	if err != nil && res.Desired.Links == nil && res.Desired.Errors == nil && res.Desired.Unlisted == nil {
		// Metadata or netlink could not be read at all.
		waiting[""] = true
	}
	for _, l := range res.Desired.Unlisted {
		if w.hotplug[l.MAC] {
			waiting[l.MAC] = true
		}
	}
	for _, e := range res.Desired.Errors {
		if e.Pending {
			waiting[e.MAC] = true
		}
	}
	if err != nil && ctx.Err() == nil {
		w.opts.Logf("network: %s", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	now := time.Now()
	retry := false
	for mac := range waiting {
		start, ok := w.since[mac]
		if !ok {
			w.since[mac], start = now, now
		}
		switch {
		case now.Sub(start) < w.opts.GiveUp:
			retry = true
		case !w.gaveUp[mac]:
			w.gaveUp[mac] = true
			w.opts.Logf("network: giving up on %s after %s; a link event starts again", orAll(mac), w.opts.GiveUp)
		}
	}
	for mac := range w.since {
		if !waiting[mac] {
			delete(w.since, mac)
			delete(w.gaveUp, mac)
		}
	}
	return retry
}

func orAll(mac string) string {
	if mac == "" {
		return "instance metadata"
	}
	return mac
}
