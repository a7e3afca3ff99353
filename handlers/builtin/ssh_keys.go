package builtin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/flint-dev/flint/cloudconfig"
	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/imds"
	"github.com/flint-dev/flint/internal/accounts"
	"github.com/flint-dev/flint/internal/rootfs"
	"github.com/flint-dev/flint/internal/state"
	"github.com/flint-dev/flint/sshkeys"
	"github.com/flint-dev/flint/userdata"
)

// sshKeysConfig is the `ssh_keys:` section of flint.yaml.
type sshKeysConfig struct {
	// DisableRoot (default true, cloud-config disable_root wins) gives
	// root the keys behind a forced command asking to log in as the
	// default user, as cloud-init does.
	DisableRoot *bool `yaml:"disable_root"`
	// DisableRootOpts replaces that forced command; $USER is the default
	// user, $DISABLE_USER is root.
	DisableRootOpts string `yaml:"disable_root_opts"`
	// InstanceConnect (default true) makes `flint ssh-keys` serve EC2
	// Instance Connect keys.
	InstanceConnect *bool `yaml:"instance_connect"`
	// CABundle is the trusted CA bundle for Instance Connect signers
	// ("" = the system bundle).
	CABundle string `yaml:"ca_bundle"`
}

// defaultDisableRootOpts is cloud-init's disable_root_opts.
const defaultDisableRootOpts = `no-port-forwarding,no-agent-forwarding,no-X11-forwarding,command="echo 'Please login as the user \"$USER\" rather than the user \"$DISABLE_USER\".';echo;sleep 10;exit 142"`

// SSHKeysLookup returns the `flint ssh-keys` settings of a configuration:
// the default user, whether Instance Connect keys are served, the CA bundle.
func SSHKeysLookup(cfg interface {
	Section(name string, v any) (bool, error)
}) (sshkeys.Lookup, error) {
	user, err := defaultUserName(cfg)
	if err != nil {
		return sshkeys.Lookup{}, err
	}
	var c sshKeysConfig
	if _, err := cfg.Section(sshKeysSection, &c); err != nil {
		return sshkeys.Lookup{}, err
	}
	return sshkeys.Lookup{
		DefaultUser:       user,
		CABundle:          c.CABundle,
		NoInstanceConnect: c.InstanceConnect != nil && !*c.InstanceConnect,
	}, nil
}

// sshKeysHandler installs the instance's metadata public keys and cloud-config
// ssh_authorized_keys for the default user (and root, behind
// disable_root), and each cloud-config user's own keys, merged into the
// file sshd reads.
var sshKeysHandler = handlers.Builtin{
	Name: "ssh-keys", Frequency: state.PerInstance, Needs: []string{"users"},
	Section: sshKeysSection, Config: func() any { return new(sshKeysConfig) },
	Ready:   true,
	Prepare: warmMetadata(func(ctx context.Context, md imds.Reader) { sshkeys.MetadataKeys(ctx, md) }),
	Run:     runSSHKeys,
}

// sshKeysSection is the ssh-keys handler's flint.yaml section, which
// `flint ssh-keys` reads too.
const sshKeysSection = "ssh_keys"

// keyGrant is a user and the keys the handler merges into its file.
type keyGrant struct {
	user string
	keys []sshkeys.Key
}

// keysPlan is who gets which keys, and what was left out.
type keysPlan struct {
	grants []keyGrant
	// probs are keys that were skipped, with the reason.
	probs []sshkeys.Problem
	// rootSkipped counts the shared keys root did not get: with
	// disable_root and no default user, root's file would only hold a
	// forced command that sends everyone to a user that does not exist.
	rootSkipped int
	// redirectNotes say why an ssh_redirect_user gave no lines (no
	// default user, no instance keys), as cloud-init warns;
	// redirectErrs are ssh_redirect_user values that cannot be applied:
	// such a user gets no keys at all.
	redirectNotes, redirectErrs []string
}

// planKeys decides the keys: the default user gets the instance's
// metadata keys and cloud-config ssh_authorized_keys, every user its own
// keys, and root the shared ones, behind the disable_root forced command
// unless disable_root is off (cloud-config's word wins over flint.yaml's).
// A user whose entry in rawUsers (user-data's users entries by name) has
// ssh_redirect_user gets the instance's metadata keys behind cloud-init's
// forced command naming the default user (cloudconfig.SSHRedirect).
func planKeys(cfg sshKeysConfig, cc *userdata.CloudConfig, specs []userSpec, mdKeys []sshkeys.Key, mdProbs []sshkeys.Problem, rawUsers map[string]map[string]any) (keysPlan, error) {
	p := keysPlan{probs: mdProbs}
	ccKeys, probs := sshkeys.Parse("cloud-config ssh_authorized_keys", strings.Join(cc.SSHAuthorizedKeys, "\n"))
	p.probs = append(p.probs, probs...)
	shared := append(slices.Clip(mdKeys), ccKeys...)
	defaultUser := ""
	for _, s := range specs {
		if s.Default {
			defaultUser = s.Name
		}
	}
	for _, s := range specs {
		var ks []sshkeys.Key
		if s.Default {
			ks = append(ks, shared...)
		}
		own, probs := sshkeys.Parse("cloud-config users "+s.Name+" ssh_authorized_keys", strings.Join(s.SSHAuthorizedKeys, "\n"))
		p.probs = append(p.probs, probs...)
		ks = append(ks, own...)
		if raw := rawUsers[s.Name]; raw != nil {
			redirected, ok := p.planRedirect(s.Name, raw, defaultUser, mdKeys)
			if !ok {
				continue
			}
			ks = append(ks, redirected...)
		}
		if len(ks) > 0 {
			p.grants = append(p.grants, keyGrant{s.Name, ks})
		}
	}
	disableRoot := cfg.DisableRoot == nil || *cfg.DisableRoot
	if cc.DisableRoot != nil {
		disableRoot = *cc.DisableRoot
	}
	if len(shared) == 0 {
		return p, nil
	}
	if disableRoot && defaultUser == "" {
		p.rootSkipped = len(shared)
		return p, nil
	}
	rootKeys := shared
	if disableRoot {
		opts := cfg.DisableRootOpts
		if opts == "" {
			opts = defaultDisableRootOpts
		}
		opts = strings.ReplaceAll(strings.ReplaceAll(opts, "$USER", defaultUser), "$DISABLE_USER", "root")
		rootKeys = nil
		for _, k := range shared {
			rk, err := sshkeys.WithOptions(k, opts)
			if err != nil {
				// Never give root a plain key because its forced
				// command was mistyped.
				return keysPlan{}, fmt.Errorf("ssh_keys.disable_root_opts: %w; root's keys not written", err)
			}
			rootKeys = append(rootKeys, rk)
		}
	}
	p.grants = append(p.grants, keyGrant{"root", rootKeys})
	return p, nil
}

// planRedirect is users[].ssh_redirect_user for user name: the keys it
// adds, and false when the value cannot be applied (the user then gets
// no keys, where cloud-init would not create it).
func (p *keysPlan) planRedirect(name string, raw map[string]any, defaultUser string, mdKeys []sshkeys.Key) ([]sshkeys.Key, bool) {
	lines := make([]string, len(mdKeys))
	for i, k := range mdKeys {
		lines[i] = k.Line
	}
	out, note, err := cloudconfig.SSHRedirect(name, raw, defaultUser, lines)
	if err != nil {
		// The users handler has made the account: say what flint kept.
		p.redirectErrs = append(p.redirectErrs, strings.Replace(err.Error(), "user not created", "no keys installed for "+name, 1))
		return nil, false
	}
	if note != "" {
		p.redirectNotes = append(p.redirectNotes, note)
	}
	keys, probs := sshkeys.Parse("ssh_redirect_user of "+name, strings.Join(out, "\n"))
	p.probs = append(p.probs, probs...)
	return keys, true
}

// rawUserEntries are user-data's users entries by name, as written: the
// keys the typed decoding does not keep (ssh_redirect_user) are read
// from them.
func rawUserEntries(v any) map[string]map[string]any {
	out := map[string]map[string]any{}
	switch v := v.(type) {
	case []any:
		for _, e := range v {
			if m, ok := e.(map[string]any); ok {
				if n, ok := m["name"].(string); ok {
					out[n] = m
				}
			}
		}
	case map[string]any:
		for n, e := range v {
			if m, ok := e.(map[string]any); ok {
				out[n] = m
			}
		}
	}
	return out
}

func runSSHKeys(ctx context.Context, b *handlers.Boot) error {
	var cfg sshKeysConfig
	if err := b.Settings(&cfg); err != nil {
		return err
	}
	cc, specs, err := decidedUsers(ctx, b)
	if err != nil {
		return err
	}
	mdKeys, mdProbs, err := sshkeys.MetadataKeys(ctx, b.Metadata)
	var unread *sshkeys.UnreadableKeysError
	if errors.As(err, &unread) {
		// The keys that were read are installed; the rest wait for the
		// next boot, which runs this handler again.
		b.Partial("%v; the %d keys that were read are installed", err, len(mdKeys))
		b.Log.Warn("some public keys could not be read", "error", err, "kept", len(mdKeys))
		err = nil
	}
	if err != nil {
		return fmt.Errorf("reading the instance's public keys: %w", err)
	}
	var rawUsers any
	if ud, err := b.UserData(ctx); err == nil {
		rawUsers = ud.Config["users"]
	}
	plan, err := planKeys(cfg, cc, specs, mdKeys, mdProbs, rawUserEntries(rawUsers))
	if err != nil {
		return err
	}
	for _, pr := range plan.probs {
		b.Note("skipped a key: %s", pr)
		b.Log.Warn("skipped a key", "problem", pr.String())
	}
	if plan.rootSkipped > 0 {
		msg := fmt.Sprintf("root: %d instance keys not installed: there is no default user to send root's logins to "+
			"(set users.default_user, or disable_root: false to log in as root)", plan.rootSkipped)
		b.Note("%s", msg)
		b.Warn("%s", msg)
	}
	for _, n := range plan.redirectNotes {
		b.Note("%s", n)
	}
	var errs []error
	for _, e := range plan.redirectErrs {
		errs = append(errs, errors.New(e))
	}
	planned := 0
	for _, w := range plan.grants {
		u, err := accounts.LookupUser(b.Root, w.user)
		if errors.Is(err, accounts.ErrNoUser) && (b.DryRun || !b.Live) {
			b.Note("%s: %d keys, once the user exists", w.user, len(w.keys))
			planned++
			continue
		}
		if errors.Is(err, accounts.ErrNoUser) && w.user == "root" {
			// A root without a root account (a bare test tree, a container
			// image) has nobody to give the forced command to.
			b.Note("root: not in etc/passwd; no keys for root")
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("keys for %s: %w", w.user, err))
			continue
		}
		rel, source, err := sshkeys.AuthorizedKeysFile(ctx, b.Root, u)
		if err != nil {
			errs = append(errs, fmt.Errorf("keys for %s: sshd configuration: %w", w.user, err))
			continue
		}
		if rel == "" {
			b.Note("%s: AuthorizedKeysFile is none (%s); keys are served by AuthorizedKeysCommand only", w.user, source)
			continue
		}
		if b.DryRun {
			b.Note("%s: merge %d keys into /%s", w.user, len(w.keys), rel)
			continue
		}
		res, err := sshkeys.Install(b.Root, u, rel, w.keys)
		for _, r := range res.Repaired {
			b.Note("%s: repaired %s", w.user, r)
		}
		if err != nil {
			if errors.Is(err, rootfs.ErrSymlink) {
				err = fmt.Errorf("refused: a symlink on the path to /%s (%w); nothing written", rel, err)
			}
			errs = append(errs, fmt.Errorf("keys for %s: %w", w.user, err))
			continue
		}
		b.Note("%s: /%s: %d keys added, %d given", w.user, rel, res.Added, len(w.keys))
	}
	if len(errs) > 0 {
		return joinedErr(errs)
	}
	if planned > 0 && !b.DryRun {
		return fmt.Errorf("keys for %d users that do not exist yet: %w", planned, handlers.ErrNotLive)
	}
	return nil
}

// joinedErr is several errors on one line (a handler's reason is one line).
type joinedErr []error

func (e joinedErr) Error() string {
	var s []string
	for _, err := range e {
		s = append(s, err.Error())
	}
	return strings.Join(s, "; ")
}

func (e joinedErr) Unwrap() []error { return e }
