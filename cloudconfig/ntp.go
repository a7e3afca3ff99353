package cloudconfig

import (
	"fmt"
	"strings"
)

// Amazon Time Sync Service addresses, reachable from every EC2 instance
// (the IPv6 one on Nitro instances with IPv6).
const (
	AmazonTimeSyncIPv4 = "169.254.169.123"
	AmazonTimeSyncIPv6 = "fd00:ec2::123"
)

// NTPClient describes one NTP client as cloud-init's NTP_CLIENT_CONFIG
// does for Debian and Ubuntu.
type NTPClient struct {
	Name        string
	CheckExe    string // present when the client is installed
	ConfPath    string
	Packages    []string
	ServiceName string
	Template    string // under templates/, "{distro}" replaced
}

// ntpClients are cloud-init 22.4's clients, Debian's overrides applied,
// in its preference order (PREFERRED_NTP_CLIENTS).
var ntpClients = []NTPClient{
	{"chrony", "chronyd", "/etc/chrony/chrony.conf", []string{"chrony"}, "chrony", "chrony.conf.{distro}"},
	{"systemd-timesyncd", "/lib/systemd/systemd-timesyncd", "/etc/systemd/timesyncd.conf.d/cloud-init.conf", nil, "systemd-timesyncd", "timesyncd.conf"},
	{"ntp", "ntpd", "/etc/ntp.conf", []string{"ntp"}, "ntp", "ntp.conf.{distro}"},
	{"ntpdate", "ntpdate", "/etc/ntp.conf", []string{"ntpdate"}, "ntpdate", "ntp.conf.{distro}"},
}

// NTPPlan is what the ntp module does.
type NTPPlan struct {
	Client NTPClient
	// Install is set when the client's program is missing: its packages
	// are to be installed (cloud-init installs them).
	Install bool
	// File is the client's configuration; RenamedConf, when set, is where
	// the file already at File.Path moves first (<path>.dist), as
	// cloud-init does.
	File        File
	RenamedConf string
	// Service is reloaded (or started) afterwards.
	Service string
}

// NTPInput is the ntp module's input.
type NTPInput struct {
	// Config is the cloud-config "ntp" value (nil: not present).
	Config any
	// Present reports whether cloud-config has an "ntp" key at all;
	// without it the module does nothing.
	Present bool
	// Distro is "debian" or "ubuntu" (templates differ).
	Distro string
	// Installed reports whether a client's check program exists
	// (cloud-init's subp.which).
	Installed func(exe string) bool
	// Exists reports whether a file exists (for the ntp.conf rename).
	Exists func(path string) bool
	// AmazonTimeSync adds the Amazon Time Sync Service's addresses to the
	// servers when the user asked for it (a flint option; cloud-init has
	// no such key: there the user lists 169.254.169.123 in servers).
	AmazonTimeSync bool
}

// NTP decides the ntp module (cloud-init cc_ntp, frequency once per
// instance). A nil plan and nil error mean the module does nothing.
func NTP(in NTPInput) (*NTPPlan, error) {
	if !in.Present {
		return nil, nil
	}
	cfg := map[string]any{}
	switch c := in.Config.(type) {
	case nil:
	case map[string]any:
		cfg = c
	default:
		return nil, configErrorf("ntp", "is %T, not a mapping", in.Config)
	}
	if en, ok := cfg["enabled"]; ok && isFalse(en) {
		return nil, nil
	}
	distro := in.Distro
	if distro == "" {
		distro = "debian"
	}
	client, err := selectNTPClient(cfg["ntp_client"], in.Installed)
	if err != nil {
		return nil, err
	}
	template := ""
	if over, ok := cfg["config"].(map[string]any); ok {
		if client, template, err = overrideNTPClient(client, over); err != nil {
			return nil, err
		}
	} else if cfg["config"] != nil {
		return nil, configErrorf("ntp.config", "is %T, not a mapping", cfg["config"])
	}
	servers, err := stringList(cfg, "servers")
	if err != nil {
		return nil, err
	}
	pools, err := stringList(cfg, "pools")
	if err != nil {
		return nil, err
	}
	if in.AmazonTimeSync {
		servers = appendMissing(servers, AmazonTimeSyncIPv4, AmazonTimeSyncIPv6)
	}
	if len(servers) == 0 && len(pools) == 0 {
		for i := 0; i < 4; i++ {
			pools = append(pools, fmt.Sprintf("%d.%s.pool.ntp.org", i, distro))
		}
	}
	params := map[string]any{"servers": toAny(servers), "pools": toAny(pools)}
	var out []byte
	if template != "" {
		out, err = renderInline(template, params)
	} else {
		out, err = renderTemplate(strings.ReplaceAll(client.Template, "{distro}", distro), params)
	}
	if err != nil {
		return nil, err
	}
	p := &NTPPlan{
		Client:  client,
		Install: in.Installed == nil || !in.Installed(client.CheckExe),
		File:    File{Path: client.ConfPath, Mode: 0o644, Content: out},
		Service: client.ServiceName,
	}
	if len(client.Packages) == 0 {
		p.Install = false
	}
	// cloud-init's rename_ntp_conf: whatever is at the path is kept aside.
	if in.Exists != nil && in.Exists(client.ConfPath) {
		p.RenamedConf = client.ConfPath + ".dist"
	}
	return p, nil
}

// selectNTPClient is cloud-init's select_ntp_client with the distro's
// ntp_client left at "auto": the user's choice, else the first installed
// client in preference order, else chrony.
func selectNTPClient(v any, installed func(string) bool) (NTPClient, error) {
	name, _ := v.(string)
	if v != nil && name == "" {
		return NTPClient{}, configErrorf("ntp.ntp_client", "is %T, not a string", v)
	}
	if name != "" && name != "auto" {
		for _, c := range ntpClients {
			if c.Name == name {
				return c, nil
			}
		}
		// cloud-init goes on with an empty client config and fails on
		// its missing template.
		return NTPClient{}, configErrorf("ntp.ntp_client", "%q is not a known NTP client (chrony, systemd-timesyncd, ntp, ntpdate)", name)
	}
	for _, c := range ntpClients {
		if installed != nil && installed(c.CheckExe) {
			return c, nil
		}
	}
	return ntpClients[0], nil
}

// overrideNTPClient applies ntp.config (cloud-init merges it over the
// client's settings).
func overrideNTPClient(c NTPClient, over map[string]any) (NTPClient, string, error) {
	str := func(k string, dst *string) error {
		v, ok := over[k]
		if !ok {
			return nil
		}
		s, ok := v.(string)
		if !ok {
			return configErrorf("ntp.config."+k, "is %T, not a string", v)
		}
		*dst = s
		return nil
	}
	var template string
	for k, dst := range map[string]*string{"confpath": &c.ConfPath, "check_exe": &c.CheckExe, "service_name": &c.ServiceName, "template": &template} {
		if err := str(k, dst); err != nil {
			return c, "", err
		}
	}
	if v, ok := over["packages"]; ok {
		l, err := stringList(map[string]any{"packages": v}, "packages")
		if err != nil {
			return c, "", configErrorf("ntp.config.packages", "is %T, not a list of strings", v)
		}
		c.Packages = l
	}
	// cloud-init's supplemental_schema_validation: these may not be empty.
	for k, v := range map[string]string{"confpath": c.ConfPath, "check_exe": c.CheckExe, "service_name": c.ServiceName} {
		if v == "" {
			return c, "", configErrorf("ntp.config."+k, "is empty")
		}
	}
	return c, template, nil
}

// renderInline renders a template given in ntp.config.template; cloud-init
// renders it as a file, so without a "## template:" line it is a "basic"
// ($var) template, which flint does not render.
func renderInline(tmpl string, params map[string]any) ([]byte, error) {
	first, _, _ := strings.Cut(tmpl, "\n")
	if !strings.HasPrefix(strings.ToLower(strings.ReplaceAll(first, " ", "")), "##template:jinja") {
		return nil, configErrorf("ntp.config.template", "only jinja templates (first line \"## template:jinja\") are supported")
	}
	out, err := renderJinjaString(tmpl, params)
	if err != nil {
		return nil, configErrorf("ntp.config.template", "%v", err)
	}
	return out, nil
}

func stringList(cfg map[string]any, key string) ([]string, error) {
	v, ok := cfg[key]
	if !ok || v == nil {
		return nil, nil
	}
	l, ok := v.([]any)
	if !ok {
		return nil, configErrorf(key, "is %T, not a list", v)
	}
	out := make([]string, 0, len(l))
	for _, x := range l {
		s, ok := x.(string)
		if !ok {
			return nil, configErrorf(key, "has a %T item, not a string", x)
		}
		out = append(out, s)
	}
	return out, nil
}

func appendMissing(l []string, add ...string) []string {
	for _, a := range add {
		found := false
		for _, x := range l {
			found = found || x == a
		}
		if !found {
			l = append(l, a)
		}
	}
	return l
}

func toAny(l []string) []any {
	out := make([]any, len(l))
	for i, s := range l {
		out[i] = s
	}
	return out
}
