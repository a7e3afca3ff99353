package builtin

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/imds"
	"github.com/flint-dev/flint/internal/hostnames"
	"github.com/flint-dev/flint/internal/rootfs"
	"github.com/flint-dev/flint/internal/state"
	"github.com/flint-dev/flint/userdata"
)

// hostnameConfig is the `hostname:` section of flint.yaml.
type hostnameConfig struct {
	// ManageEtcHosts keeps a "127.0.1.1 fqdn short" line in /etc/hosts.
	ManageEtcHosts *bool `yaml:"manage_etc_hosts"`
	// FromTag names an instance tag (Name) whose value, sanitised, is the
	// host name when cloud-config sets neither hostname nor fqdn. Off by
	// default: tags are free text any IAM user with ec2:CreateTags may set.
	FromTag string `yaml:"from_tag"`
}

// Defaults sets what an unset section means, for `flint config check`'s
// effective view.
func (c *hostnameConfig) Defaults() {
	manage := true
	c.ManageEtcHosts = &manage
}

// hostnameHandler sets the host name from cloud-config (hostname, fqdn,
// prefer_fqdn_over_hostname) or meta-data/local-hostname, following
// cloud-init's get_hostname_fqdn rules, or, when flint.yaml's
// hostname.from_tag asks and cloud-config names no host, from an instance
// tag.
var hostnameHandler = handlers.Builtin{
	Name: "hostname", Frequency: state.PerBoot,
	Section: "hostname", Config: func() any { return new(hostnameConfig) },
	Run: runHostname,
}

// hostNames is the decision: the name to set and the fully qualified one.
type hostNames struct {
	Hostname string
	FQDN     string
}

// decideHostname is cloud-init's get_hostname_fqdn plus
// prefer_fqdn_over_hostname, on sanitised names. localHostname is
// meta-data/local-hostname ("" when absent).
func decideHostname(cc *userdata.CloudConfig, localHostname string) (hostNames, error) {
	var fqdn, short string
	switch {
	case cc.FQDN != "":
		fqdn = cc.FQDN
		short = cc.Hostname
		if short == "" {
			short, _, _ = strings.Cut(fqdn, ".")
		}
	case strings.Contains(cc.Hostname, "."):
		fqdn = cc.Hostname
		short, _, _ = strings.Cut(fqdn, ".")
	case cc.Hostname != "":
		short = cc.Hostname
		fqdn = localHostname
		if fqdn == "" || !strings.Contains(fqdn, ".") {
			fqdn = short
		}
	default:
		fqdn = localHostname
		short, _, _ = strings.Cut(fqdn, ".")
	}
	short, fqdn = hostnames.Sanitize(short), hostnames.Sanitize(fqdn)
	if short == "" {
		return hostNames{}, errors.New("no usable host name in cloud-config or meta-data/local-hostname")
	}
	if fqdn == "" {
		fqdn = short
	}
	name := short
	if cc.PreferFQDNOverHostname != nil && *cc.PreferFQDNOverHostname {
		name = fqdn
	}
	return hostNames{Hostname: name, FQDN: fqdn}, nil
}

func runHostname(ctx context.Context, b *handlers.Boot) error {
	var cfg hostnameConfig
	if err := b.Settings(&cfg); err != nil {
		return err
	}
	cc, ud := b.CloudConfigOrNone(ctx)
	local := ""
	if v, err := b.Metadata.Get(ctx, "meta-data/local-hostname"); err == nil {
		local = strings.TrimSpace(string(v))
	} else if !errors.Is(err, imds.ErrNotFound) {
		return err
	}
	names, tagErr := hostnameFromTag(ctx, b, cfg.FromTag, cc, local)
	if names == nil {
		n, err := decideHostname(cc, local)
		if err != nil {
			return errors.Join(tagErr, err)
		}
		names = &n
	}
	manageHosts := cfg.ManageEtcHosts == nil || *cfg.ManageEtcHosts
	// cloud-config decides when it says anything: false turns the
	// /etc/hosts line off, true/template/localhost on.
	if v, set := ud.Config["manage_etc_hosts"]; set {
		manageHosts = v != false && v != nil && v != "false"
	}
	b.Note("host name %s (fqdn %s)", names.Hostname, names.FQDN)
	if b.DryRun {
		return tagErr
	}
	// Reconcile: a boot that finds the names in place writes nothing.
	if cur, _ := b.Root.ReadFile("etc/hostname", rootfs.InRoot); string(cur) != names.Hostname+"\n" {
		if err := b.Root.WriteFile("etc/hostname", []byte(names.Hostname+"\n"), rootfs.WriteOptions{Perm: 0o644, MkdirPerm: 0o755}); err != nil {
			return err
		}
	}
	if manageHosts {
		old, err := b.Root.ReadFile("etc/hosts", rootfs.InRoot)
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return err
		}
		if upd := updateEtcHosts(string(old), *names); upd != string(old) {
			if err := b.Root.WriteFile("etc/hosts", []byte(upd), rootfs.WriteOptions{Perm: 0o644, MkdirPerm: 0o755}); err != nil {
				return err
			}
		}
	}
	if !b.Root.IsHost() {
		// A baked image root: the file is the change; the running kernel's
		// name belongs to the host.
		return tagErr
	}
	var uts unix.Utsname
	if unix.Uname(&uts) == nil && unix.ByteSliceToString(uts.Nodename[:]) == names.Hostname {
		return tagErr
	}
	if err := unix.Sethostname([]byte(names.Hostname)); err != nil {
		return fmt.Errorf("sethostname %s: %w", names.Hostname, err)
	}
	return tagErr
}

// hostnameFromTag is hostname.from_tag: the names from the tag's value
// (hostnames.FromTag: sanitised, with local-hostname's domain), or nil
// when the names come from the usual places: from_tag unset, cloud-config
// naming the host (user-data, given for this launch, wins), or no such
// tag (tags not exposed in metadata, or the instance lacks it: a note).
// A tag whose value gives no host name, or tags that cannot be read, are
// an error returned beside nil names: the usual name is set and the
// handler fails with that line.
func hostnameFromTag(ctx context.Context, b *handlers.Boot, tag string, cc *userdata.CloudConfig, local string) (*hostNames, error) {
	if tag == "" {
		return nil, nil
	}
	if cc.Hostname != "" || cc.FQDN != "" {
		b.Note("hostname.from_tag %s: cloud-config names the host, the tag is not used", tag)
		return nil, nil
	}
	tags, err := imds.Tags(ctx, b.Metadata)
	if err != nil {
		return nil, fmt.Errorf("hostname.from_tag %s: instance tags cannot be read: %w", tag, err)
	}
	v, ok := tags[tag]
	switch {
	case tags == nil:
		b.Note("hostname.from_tag %s: the instance does not expose tags in metadata (instance metadata option InstanceMetadataTags); name from meta-data", tag)
		return nil, nil
	case !ok:
		b.Note("hostname.from_tag %s: the instance has no tag %s; name from meta-data", tag, tag)
		return nil, nil
	}
	n, err := hostnames.FromTag(v, local)
	if err != nil {
		return nil, fmt.Errorf("hostname.from_tag %s: %w", tag, err)
	}
	names := hostNames{Hostname: n.Hostname, FQDN: n.FQDN}
	if cc.PreferFQDNOverHostname != nil && *cc.PreferFQDNOverHostname {
		names.Hostname = names.FQDN
	}
	b.Note("host name from tag %s", tag)
	return &names, nil
}

// hostsMarker ends the /etc/hosts line flint owns.
const hostsMarker = "# flint"

// updateEtcHosts returns hosts with flint's line ("127.0.1.1 FQDN SHORT #
// flint") replaced or added; every other line is kept as it was.
func updateEtcHosts(hosts string, n hostNames) string {
	names := n.FQDN
	if short, _, _ := strings.Cut(n.FQDN, "."); short != n.FQDN {
		names += " " + short
	}
	line := "127.0.1.1 " + names + " " + hostsMarker
	var out []string
	found := false
	for _, l := range strings.Split(strings.TrimSuffix(hosts, "\n"), "\n") {
		if strings.HasSuffix(strings.TrimSpace(l), hostsMarker) {
			if !found {
				out = append(out, line)
				found = true
			}
			continue
		}
		if l != "" || len(out) > 0 {
			out = append(out, l)
		}
	}
	if !found {
		if len(out) == 0 {
			out = append(out, "127.0.0.1 localhost")
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n") + "\n"
}
