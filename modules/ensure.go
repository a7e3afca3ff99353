package modules

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// Options is one run of Ensure: the kernel-modules handler at boot, or
// "flint modules install".
type Options struct {
	// Root is the target root ("" or "/" on the instance).
	Root string
	// Release overrides the running kernel's release (baking an image).
	Release string
	Config  Config
	// Metadata supplies kernel-id, ramdisk-id and the region; nil when
	// there is none (image baking).
	Metadata Metadata
	// Credentials sign s3:// bundles (the instance role's).
	Credentials CredentialsProvider
	// Bundle, when set, is installed instead of what Config resolves to.
	Bundle *Bundle
	// Force resolves the bundle even over a complete tree (and reinstalls
	// when its digest differs from the recorded one).
	Force bool
	// Load loads Config.Load afterwards; only sensible for the running
	// kernel on the live root.
	Load bool
	// Progress and TTY: see Fetcher.
	Progress io.Writer
	TTY      bool
	// Fetcher replaces the default one (tests: an HTTP client for
	// httptest). Its Credentials, Region, Progress and TTY are filled in
	// from these options when empty.
	Fetcher *Fetcher
	Limits  Limits
	Depmod  func(ctx context.Context, base, release string) error
}

// Action says what Ensure did.
type Action string

// The outcomes of Ensure.
const (
	// ActionNone: the tree is complete (installed before, or shipped by the
	// image) and nothing was fetched.
	ActionNone Action = "none"
	// ActionInstalled: a bundle was fetched, verified and installed.
	ActionInstalled Action = "installed"
	// ActionNotConfigured: the tree is missing and no bundle is configured.
	ActionNotConfigured Action = "not-configured"
)

// Outcome reports an Ensure run.
type Outcome struct {
	Kernel Kernel   `json:"kernel"`
	Action Action   `json:"action"`
	Record *Record  `json:"record,omitempty"`
	Loaded []string `json:"loaded,omitempty"`
}

// Ensure makes sure <root>/lib/modules/<release> exists for the kernel:
// detect it, leave a complete tree alone (one installed by flint, or shipped
// by the image), else resolve the bundle from the configuration, install it
// and optionally load the configured modules.
//
// A complete tree that flint installed is not re-checked against the
// configuration on every boot (that would need the network at boot for
// nothing: a new kernel has a new release, hence no tree); Force does it.
// Metadata (kernel-id, region) is read only when a bundle is resolved: a
// complete tree needs neither IMDS nor the network.
func Ensure(ctx context.Context, o Options) (Outcome, error) {
	var out Outcome
	k, err := Detect(ctx, nil)
	if err != nil {
		return out, err
	}
	if o.Release != "" {
		k.Release = o.Release
	}
	out.Kernel = k
	st, err := ReadStatus(o.Root, k.Release)
	if err != nil {
		return out, err
	}
	if st.Old || len(st.Leftovers) > 0 {
		dir, err := resolveModulesDir(o.Root, false)
		if err != nil {
			return out, err
		}
		// Under the install lock: another install's staging directory is
		// not debris while that install runs.
		unlock, err := lock(dir, k.Release)
		if err != nil {
			return out, err
		}
		err = Recover(dir, k.Release)
		unlock()
		if err != nil {
			return out, err
		}
		if st, err = ReadStatus(o.Root, k.Release); err != nil {
			return out, err
		}
	}
	f := o.fetcher()
	var b Bundle
	switch {
	case o.Bundle != nil:
		b = *o.Bundle
	case st.Indexed && !o.Force:
		out.Action, out.Record = ActionNone, st.Record
	default:
		if o.Metadata != nil {
			if err := k.readIDs(ctx, o.Metadata); err != nil {
				return out, err
			}
			out.Kernel = k
		}
		if f.Region == "" && o.Metadata != nil {
			if r, err := optional(ctx, o.Metadata, "meta-data/placement/region"); err == nil {
				f.Region = r
			}
		}
		b, err = Resolve(ctx, f, o.Config, k)
		if errors.Is(err, ErrNoBundle) && !st.Present {
			out.Action = ActionNotConfigured
			return out, fmt.Errorf("lib/modules/%s is missing and %w", k.Release, err)
		}
		if errors.Is(err, ErrNoBundle) {
			out.Action = ActionNone
			break
		}
		if err != nil {
			return out, err
		}
	}
	if b.URL != "" {
		in := &Installer{Root: o.Root, Release: k.Release, Limits: o.Limits, Open: f.Open, Depmod: o.Depmod}
		res, err := in.Install(ctx, b)
		if err != nil {
			return out, err
		}
		out.Record = &res.Record
		out.Action = ActionInstalled
		if res.AlreadyInstalled {
			out.Action = ActionNone
		}
	}
	if o.Load && len(o.Config.Load) > 0 {
		plan, err := Load(ctx, o.Root, k.Release, o.Config.Load)
		out.Loaded = plan.Files
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

func (o Options) fetcher() *Fetcher {
	f := &Fetcher{}
	if o.Fetcher != nil {
		c := *o.Fetcher
		f = &c
	}
	if f.Credentials == nil {
		f.Credentials = o.Credentials
	}
	if f.Region == "" {
		f.Region = o.Config.S3Region
	}
	if f.Region == "" {
		f.Region = regionFromEnv()
	}
	if f.S3Endpoint == "" {
		f.S3Endpoint = S3Endpoint(o.Config.S3Endpoint)
	}
	if f.Progress == nil {
		f.Progress, f.TTY = o.Progress, o.TTY
	}
	return f
}
