package handlers

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/flint-dev/flint/internal/rootfs"
	"github.com/flint-dev/flint/internal/state"
	"github.com/flint-dev/flint/sshkeys"
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

// DefaultDisableRootOpts is cloud-init's disable_root_opts.
const DefaultDisableRootOpts = `no-port-forwarding,no-agent-forwarding,no-X11-forwarding,command="echo 'Please login as the user \"$USER\" rather than the user \"$DISABLE_USER\".';echo;sleep 10;exit 142"`

// SSHKeysLookup returns the `flint ssh-keys` settings of a configuration:
// the default user, whether Instance Connect keys are served, the CA bundle.
func SSHKeysLookup(cfg interface {
	Section(name string, v any) (bool, error)
}) (sshkeys.Lookup, error) {
	user, err := DefaultUserName(cfg)
	if err != nil {
		return sshkeys.Lookup{}, err
	}
	var c sshKeysConfig
	if _, err := cfg.Section("ssh_keys", &c); err != nil {
		return sshkeys.Lookup{}, err
	}
	return sshkeys.Lookup{
		DefaultUser:       user,
		CABundle:          c.CABundle,
		NoInstanceConnect: c.InstanceConnect != nil && !*c.InstanceConnect,
	}, nil
}

// SSHKeys installs the instance's metadata public keys and cloud-config
// ssh_authorized_keys for the default user (and root, behind
// disable_root), and each cloud-config user's own keys, merged into the
// file sshd reads.
var SSHKeys = &Func{N: "ssh-keys", F: state.PerInstance, Deps: []string{"users"}, Fn: runSSHKeys}

func runSSHKeys(ctx context.Context, b *Boot) error {
	var cfg sshKeysConfig
	if err := b.Section("ssh_keys", &cfg); err != nil {
		return err
	}
	cc, specs, err := decidedUsers(ctx, b)
	if err != nil {
		return err
	}
	mdKeys, probs, err := sshkeys.MetadataKeys(ctx, b.Metadata)
	if err != nil {
		return fmt.Errorf("reading the instance's public keys: %w", err)
	}
	ccKeys, p := sshkeys.Parse("cloud-config ssh_authorized_keys", strings.Join(cc.SSHAuthorizedKeys, "\n"))
	probs = append(probs, p...)
	shared := append(mdKeys, ccKeys...)

	type want struct {
		user string
		keys []sshkeys.Key
	}
	var wants []want
	defaultUser := ""
	for _, s := range specs {
		var ks []sshkeys.Key
		if s.Default {
			defaultUser = s.Name
			ks = append(ks, shared...)
		}
		if len(s.SSHImportID) > 0 {
			b.Note("%s: ssh_import_id is not supported (it fetches keys from the network); give ssh_authorized_keys", s.Name)
			b.Log.Warn("ssh_import_id is not supported", "user", s.Name)
		}
		own, p := sshkeys.Parse("cloud-config users "+s.Name+" ssh_authorized_keys", strings.Join(s.SSHAuthorizedKeys, "\n"))
		probs = append(probs, p...)
		ks = append(ks, own...)
		if len(ks) > 0 {
			wants = append(wants, want{s.Name, ks})
		}
	}
	disableRoot := cfg.DisableRoot == nil || *cfg.DisableRoot
	if cc.DisableRoot != nil {
		disableRoot = *cc.DisableRoot
	}
	if len(shared) > 0 && disableRoot && defaultUser == "" {
		skipRootKeys(b, len(shared))
	} else if len(shared) > 0 {
		rootKeys := shared
		if disableRoot {
			opts := cfg.DisableRootOpts
			if opts == "" {
				opts = DefaultDisableRootOpts
			}
			opts = strings.ReplaceAll(strings.ReplaceAll(opts, "$USER", defaultUser), "$DISABLE_USER", "root")
			rootKeys = nil
			for _, k := range shared {
				rk, err := sshkeys.WithOptions(k, opts)
				if err != nil {
					// Never give root a plain key because its forced
					// command was mistyped.
					return fmt.Errorf("ssh_keys.disable_root_opts: %w; root's keys not written", err)
				}
				rootKeys = append(rootKeys, rk)
			}
		}
		wants = append(wants, want{"root", rootKeys})
	}
	for _, pr := range probs {
		b.Note("skipped a key: %s", pr)
		b.Log.Warn("skipped a key", "problem", pr.String())
	}
	var errs []error
	planned := 0
	for _, w := range wants {
		u, err := sshkeys.LookupUser(b.Root, w.user)
		if errors.Is(err, sshkeys.ErrNoUser) && (b.DryRun || !b.Live) {
			b.Note("%s: %d keys, once the user exists", w.user, len(w.keys))
			planned++
			continue
		}
		if errors.Is(err, sshkeys.ErrNoUser) && w.user == "root" {
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
		return fmt.Errorf("keys for %d users that do not exist yet: %w", planned, ErrNotLive)
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
