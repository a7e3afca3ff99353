package builtin

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/internal/config"
	"github.com/flint-dev/flint/internal/rootfs"
	"github.com/flint-dev/flint/internal/state"
	"github.com/flint-dev/flint/sshkeys"
	"github.com/flint-dev/flint/userdata"
)

// hostKeysConfig is the `host_keys:` section of flint.yaml.
type hostKeysConfig struct {
	// Types to generate (default rsa, ecdsa, ed25519); cloud-config
	// ssh_genkeytypes wins.
	Types []string `yaml:"types"`
	// DeleteExisting (default true; cloud-config ssh_deletekeys wins)
	// removes the host keys an image carries on a new instance: keys baked
	// into an image are shared by every instance made from it.
	DeleteExisting *bool `yaml:"delete_existing"`
}

// hostKeysHandler gives each instance its own SSH host keys (generated in Go or
// taken from cloud-config ssh_keys) and prints their fingerprints to the
// console the way cloud-init does, so a person can check the first
// connection.
var hostKeysHandler = handlers.Builtin{
	Name: "host-keys", Frequency: state.PerInstance,
	Section: "host_keys", Config: func() any { return new(hostKeysConfig) },
	Beside:  true,
	Prepare: prepareHostKeys,
	Run:     runHostKeys,
}

// pendingHostKeys are the keys prepareHostKeys started, by type, and the
// keys made ahead they come from.
type pendingHostKeys struct {
	keys  map[string]*sshkeys.PendingHostKey
	ahead *sshkeys.Ahead
}

// HostKeysAheadDir holds the host keys `flint local --host-keys` makes
// ahead of the chain on a new instance's first boot (see sshkeys.MakeAhead).
const HostKeysAheadDir = "run/flint/host-keys"

// prepareHostKeys starts generating, when the chain starts, the keys the
// handler is going to generate as the configuration, the user-data and
// the image's key files tell then: an RSA key takes seconds on a slow
// machine, sshd waits for every key, and the handlers before this one
// mostly wait for tools and the metadata service. A key the early stage
// made ahead (HostKeysAheadDir) is taken instead, waited for while it is
// being made. Run takes the keys its own plan still generates and makes
// any other itself.
func prepareHostKeys(ctx context.Context, b *handlers.Boot) any {
	var cfg hostKeysConfig
	if err := b.Settings(&cfg); err != nil || !hasSSHD(b.Root) {
		return nil
	}
	cc, err := b.CloudConfig(ctx)
	if err != nil {
		cc = &userdata.CloudConfig{} // as Run goes on without user-data
	}
	plan, err := planRootHostKeys(b.Root, cfg, cc)
	if err != nil || keptForInstance(b, plan) {
		return nil
	}
	started := &pendingHostKeys{keys: map[string]*sshkeys.PendingHostKey{}, ahead: sshkeys.OpenAhead(b.Root.Path(HostKeysAheadDir))}
	for _, k := range plan.keys {
		if k.given == nil {
			started.keys[k.typ] = sshkeys.StartHostKeyAhead(started.ahead, k.typ)
		}
	}
	return started
}

// HostKeysAhead is what `flint local --host-keys` makes ahead of the
// chain, into HostKeysAheadDir: the types the host-keys handler generates
// as flint.yaml tells (user-data cannot be read before the network; a
// type it leaves out is made and not used). It makes none, and says why,
// where the handler would make none or cannot tell before it knows the
// instance: no sshd, the handler disabled, or host keys made for an
// instance in the image (a reboot, or an image baked without
// flint clean --host-keys).
func HostKeysAhead(root *rootfs.Root, cfg *config.Config) (types []string, why string, err error) {
	if slices.Contains(cfg.Handlers.Disable, hostKeysHandler.Name) {
		return nil, "the host-keys handler is disabled", nil
	}
	if !hasSSHD(root) {
		return nil, "no sshd in this root (no etc/ssh, no usr/sbin/sshd)", nil
	}
	if id, err := root.ReadFile(hostKeysInstanceFile, rootfs.InRoot); err == nil {
		return nil, fmt.Sprintf("/%s names instance %s: flint run decides once it knows this instance", hostKeysInstanceFile, strings.TrimSpace(string(id))), nil
	}
	var hc hostKeysConfig
	if _, err := cfg.Section(hostKeysHandler.Section, &hc); err != nil {
		return nil, "", err
	}
	plan, err := planRootHostKeys(root, hc, &userdata.CloudConfig{})
	if err != nil {
		return nil, "", err
	}
	for _, k := range plan.keys {
		types = append(types, k.typ)
	}
	if len(types) == 0 {
		return nil, "flint.yaml's host_keys keeps the image's keys", nil
	}
	return types, "", nil
}

// sshDir holds the host keys.
const sshDir = "etc/ssh"

func hostKeyPath(typ string) string { return sshDir + "/ssh_host_" + typ + "_key" }

// hostKeysPlan is what the host-keys handler does to a root with sshd.
type hostKeysPlan struct {
	// remove are the files in etc/ssh to delete before writing.
	remove []string
	// keys are written in this order; a nil key is generated.
	keys []plannedHostKey
	// certs are host certificates from cloud-config, by type.
	certs map[string][]byte
	notes []string
}

// plannedHostKey is one host key to write.
type plannedHostKey struct {
	typ string
	// given is the pair from cloud-config ssh_keys; nil: generate one.
	given *sshkeys.HostKey
}

// planHostKeys decides the host keys from flint.yaml, cloud-config
// (ssh_genkeytypes, ssh_deletekeys and ssh_keys win) and the host key
// files etc/ssh holds now.
func planHostKeys(cfg hostKeysConfig, cc *userdata.CloudConfig, existing []string) (hostKeysPlan, error) {
	types := cfg.Types
	if len(types) == 0 {
		types = sshkeys.HostKeyTypes
	}
	if len(cc.SSHGenKeyTypes) > 0 {
		types = cc.SSHGenKeyTypes
	}
	for _, t := range types {
		if !slices.Contains(sshkeys.HostKeyTypes, t) {
			return hostKeysPlan{}, fmt.Errorf("host key type %q is not one of %s", t, strings.Join(sshkeys.HostKeyTypes, ", "))
		}
	}
	del := cfg.DeleteExisting == nil || *cfg.DeleteExisting
	if cc.SSHDeleteKeys != nil {
		del = *cc.SSHDeleteKeys
	}
	var p hostKeysPlan
	if del {
		p.remove = existing
		if len(existing) > 0 {
			p.notes = append(p.notes, fmt.Sprintf("remove %d host key files the image carried", len(existing)))
		}
	}
	given := givenHostKeys(cc.SSHKeys)
	for _, t := range sshkeys.HostKeyTypes {
		switch {
		case given[t] != nil:
			p.notes = append(p.notes, "host key "+t+": from cloud-config ssh_keys")
			p.keys = append(p.keys, plannedHostKey{t, given[t]})
		case slices.Contains(types, t):
			p.notes = append(p.notes, "host key "+t+": generate")
			if !del && slices.Contains(existing, path.Base(hostKeyPath(t))) {
				continue // kept (delete_existing off)
			}
			p.keys = append(p.keys, plannedHostKey{t, nil})
		}
	}
	p.certs = givenCerts(cc.SSHKeys)
	return p, nil
}

func runHostKeys(ctx context.Context, b *handlers.Boot) error {
	var cfg hostKeysConfig
	if err := b.Settings(&cfg); err != nil {
		return err
	}
	cc, _ := b.CloudConfigOrNone(ctx)
	if !hasSSHD(b.Root) {
		if _, err := planHostKeys(cfg, cc, nil); err != nil {
			return err
		}
		b.Note("no sshd in this root (no etc/ssh, no usr/sbin/sshd); no host keys")
		return nil
	}
	plan, err := planRootHostKeys(b.Root, cfg, cc)
	if err != nil {
		return err
	}
	if keptForInstance(b, plan) {
		b.Note("host keys: kept those made for this instance by an earlier boot (%s names it; flint clean --host-keys removes them)", hostKeysInstanceFile)
		return printHostKeys(b)
	}
	for _, n := range plan.notes {
		b.Note("%s", n)
	}
	if b.DryRun {
		return nil
	}
	// Every key is checked or made before anything is removed: a bad pair
	// in cloud-config must not leave the image without host keys.
	comment := "root@" + rootHostname(b.Root)
	pending, _ := b.Prepared().(*pendingHostKeys)
	if pending == nil {
		pending = &pendingHostKeys{}
	}
	defer pending.ahead.Close()
	var keys []sshkeys.HostKey
	for _, pk := range plan.keys {
		if g := pk.given; g != nil {
			if err := sshkeys.CheckHostKeyPair(g.Private, g.Public); err != nil {
				return fmt.Errorf("cloud-config ssh_keys %s: %w; the image's host keys were left in place", pk.typ, err)
			}
			keys = append(keys, *g)
			continue
		}
		var k sshkeys.HostKey
		if p := pending.keys[pk.typ]; p != nil {
			begin := time.Now()
			k, err = p.Key(ctx, comment)
			if err == nil && p.MadeAhead() {
				// Why this handler took long, for a person reading
				// flint analyze: the early stage was still making it.
				b.Note("host key %s: made ahead by flint-host-keys.service (waited %v for it)", pk.typ, time.Since(begin).Round(time.Millisecond))
			}
		} else {
			k, err = sshkeys.GenerateHostKey(pk.typ, comment)
		}
		if err != nil {
			return err
		}
		keys = append(keys, k)
	}
	for _, f := range plan.remove {
		if err := b.Root.Remove(sshDir+"/"+f, rootfs.InRoot); err != nil {
			return err
		}
	}
	if err := b.Root.MkdirAll(sshDir, 0o755, rootfs.NoOwner, rootfs.InRoot); err != nil {
		return err
	}
	root := rootfs.Owner{UID: 0, GID: 0}
	// Durable together (one sync, not one a file); each public half
	// after its key: a reader that sees the .pub finds its key.
	var writes []rootfs.FileWrite
	for i, k := range keys {
		p := hostKeyPath(plan.keys[i].typ)
		writes = append(writes,
			rootfs.FileWrite{Rel: p, Data: k.Private, Options: rootfs.WriteOptions{Perm: 0o600, Owner: root}},
			rootfs.FileWrite{Rel: p + ".pub", Data: k.Public, Options: rootfs.WriteOptions{Perm: 0o644, Owner: root}})
	}
	for _, t := range slices.Sorted(maps.Keys(plan.certs)) {
		writes = append(writes, rootfs.FileWrite{Rel: hostKeyPath(t) + "-cert.pub", Data: plan.certs[t], Options: rootfs.WriteOptions{Perm: 0o644, Owner: root}})
	}
	if err := b.Root.WriteFiles(writes); err != nil {
		return err
	}
	if err := b.Root.WriteFile(hostKeysInstanceFile, []byte(b.InstanceID+"\n"), rootfs.WriteOptions{Perm: 0o644, Owner: root}); err != nil {
		b.Note("could not write %s (%v): a boot of this instance that cannot record the handler makes new host keys", hostKeysInstanceFile, err)
	}
	return printHostKeys(b)
}

// hostKeysInstanceFile names the instance the host keys were made for. It
// is kept beside the keys, not in the state directory: on a boot that
// cannot write the state directory (a full /var) the handler is not
// recorded and runs again at the next boot, which must not give a known
// host new keys. Its name matches ssh_host_*key*, so ssh_deletekeys on
// a new instance and flint clean --host-keys remove it with the keys.
const hostKeysInstanceFile = sshDir + "/ssh_host_keys.instance"

// keptForInstance reports whether the keys the plan would generate were
// already made for this instance: the instance file names it and every
// planned key is present. Keys from cloud-config ssh_keys are written
// again either way.
func keptForInstance(b *handlers.Boot, plan hostKeysPlan) bool {
	id, err := b.Root.ReadFile(hostKeysInstanceFile, rootfs.InRoot)
	if err != nil || b.InstanceID == "" || strings.TrimSpace(string(id)) != b.InstanceID {
		return false
	}
	for _, k := range plan.keys {
		if k.given != nil {
			return false
		}
		for _, f := range []string{hostKeyPath(k.typ), hostKeyPath(k.typ) + ".pub"} {
			if _, err := b.Root.Stat(f, rootfs.InRoot); err != nil {
				return false
			}
		}
	}
	return true
}

// printHostKeys notes the host keys' fingerprints and prints them to the
// console the way cloud-init does.
func printHostKeys(b *handlers.Boot) error {
	var fps, pubs []string
	for _, t := range []string{"ecdsa", "ed25519", "rsa"} {
		pub, err := b.Root.ReadFile(hostKeyPath(t)+".pub", rootfs.InRoot)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		fp, err := sshkeys.FingerprintLine(pub)
		if err != nil {
			return fmt.Errorf("%s.pub: %w", b.Root.Path(hostKeyPath(t)), err)
		}
		fps = append(fps, fp)
		pubs = append(pubs, string(pub))
		b.Note("host key %s", fp)
	}
	if b.Console != nil && len(fps) > 0 {
		fmt.Fprint(b.Console, sshkeys.FingerprintsBlock(fps, pubs))
	}
	return nil
}

// planRootHostKeys is planHostKeys for the host key files root holds now.
func planRootHostKeys(root *rootfs.Root, cfg hostKeysConfig, cc *userdata.CloudConfig) (hostKeysPlan, error) {
	existing, err := existingHostKeyFiles(root)
	if err != nil {
		return hostKeysPlan{}, err
	}
	return planHostKeys(cfg, cc, existing)
}

// existingHostKeyFiles lists etc/ssh/ssh_host_*key* (what cloud-init's
// ssh_deletekeys removes).
func existingHostKeyFiles(root *rootfs.Root) ([]string, error) {
	ents, err := root.ReadDir(sshDir, rootfs.InRoot)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if n := e.Name(); strings.HasPrefix(n, "ssh_host_") && strings.Contains(n, "key") && !e.IsDir() {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out, nil
}

// givenHostKeys picks the complete pairs out of cloud-config ssh_keys
// (TYPE_private and TYPE_public). The private halves are secrets.
func givenHostKeys(m map[string]string) map[string]*sshkeys.HostKey {
	out := map[string]*sshkeys.HostKey{}
	for _, t := range sshkeys.HostKeyTypes {
		priv, pub := m[t+"_private"], m[t+"_public"]
		if priv == "" || pub == "" {
			continue
		}
		out[t] = &sshkeys.HostKey{Type: t, Private: []byte(strings.TrimRight(priv, "\n") + "\n"), Public: []byte(strings.TrimSpace(pub) + "\n")}
	}
	return out
}

func givenCerts(m map[string]string) map[string][]byte {
	out := map[string][]byte{}
	for _, t := range sshkeys.HostKeyTypes {
		if c := m[t+"_certificate"]; c != "" {
			out[t] = []byte(strings.TrimSpace(c) + "\n")
		}
	}
	return out
}

// hostName is the root's etc/hostname (the hostname handler ran first).
func rootHostname(root *rootfs.Root) string {
	b, err := root.ReadFile("etc/hostname", rootfs.InRoot)
	if name := strings.TrimSpace(string(b)); err == nil && name != "" {
		return name
	}
	if name, err := os.Hostname(); err == nil && root.IsHost() {
		return name
	}
	return "localhost"
}

// hasSSHD reports whether the root has an OpenSSH server to give keys to.
func hasSSHD(root *rootfs.Root) bool {
	for _, p := range []string{sshDir, "usr/sbin/sshd"} {
		if _, err := root.Stat(p, rootfs.InRoot); err == nil {
			return true
		}
	}
	return false
}
