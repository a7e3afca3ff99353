package cloudconfig

import (
	"strings"

	"github.com/flint-dev/flint/userdata"
)

// Debian's paths for ca_certs (cloud-init's DEFAULT_CONFIG).
const (
	CACertPath       = "/usr/share/ca-certificates/"
	CACertFilename   = "cloud-init-ca-certs.crt"
	CACertConfig     = "/etc/ca-certificates.conf"
	CACertSystemPath = "/etc/ssl/certs/"
)

// CACertsPlan is what the ca_certs module does, in order: empty
// EmptyDirs, feed DebconfSelections to debconf-set-selections, write Files
// (in order: the same path may come twice), run Commands.
type CACertsPlan struct {
	EmptyDirs         []string
	DebconfSelections string
	Files             []File
	Commands          [][]string
	// Notes are deprecation notices cloud-init logs.
	Notes []string
}

// CACertsInput is the ca_certs module's input.
type CACertsInput struct {
	// Config is cloud-config's ca_certs; Deprecated its old spelling
	// ca-certs. Present/DeprecatedPresent tell whether the keys exist.
	Config, Deprecated         any
	Present, DeprecatedPresent bool
	// CurrentConfig is /etc/ca-certificates.conf's content (nil: absent).
	CurrentConfig []byte
}

// CACerts decides the ca_certs module as cloud-init 22.4's cc_ca_certs
// does on Debian and Ubuntu (frequency once per instance): remove_defaults
// (any python-truthy value) empties the certificate directories, writes an
// empty ca-certificates.conf and tells debconf not to trust new defaults;
// trusted certificates (a list, or one string) are joined with newlines
// into cloud-init-ca-certs.crt, listed last in ca-certificates.conf; then
// update-ca-certificates runs, whatever the config held.
func CACerts(in CACertsInput) (*CACertsPlan, error) {
	if !in.Present && !in.DeprecatedPresent {
		return nil, nil
	}
	p := &CACertsPlan{}
	cfgVal := in.Config
	if in.DeprecatedPresent {
		p.Notes = append(p.Notes, "DEPRECATION: key 'ca-certs' is now deprecated. Use 'ca_certs' instead.")
		if !in.Present {
			cfgVal = in.Deprecated
		}
	}
	cfg, ok := cfgVal.(map[string]any)
	if !ok {
		// cloud-init fails with a TypeError on a non-mapping.
		return nil, configErrorf("ca_certs", "is %s, not a mapping", typeName(cfgVal))
	}
	conf := in.CurrentConfig
	remove := false
	if v, ok := cfg["remove-defaults"]; ok {
		p.Notes = append(p.Notes, "DEPRECATION: key 'ca-certs.remove-defaults' is now deprecated. Use 'ca_certs.remove_defaults' instead.")
		remove = userdata.Truthy(v)
	} else {
		remove = userdata.Truthy(cfg["remove_defaults"])
	}
	if remove {
		p.EmptyDirs = []string{CACertPath, CACertSystemPath}
		p.Files = append(p.Files, File{Path: CACertConfig, Mode: 0o644, Content: []byte{}})
		p.DebconfSelections = "ca-certificates ca-certificates/trust_new_crts select no"
		conf = []byte{}
	}
	if v, ok := cfg["trusted"]; ok {
		certs := cfgOptionList(v)
		if len(certs) > 0 {
			p.Files = append(p.Files,
				File{Path: CACertPath + CACertFilename, Mode: 0o644, Content: []byte(strings.Join(certs, "\n"))},
				File{Path: CACertConfig, Mode: 0o644, Content: certConfig(conf)})
		}
	}
	p.Commands = [][]string{{"update-ca-certificates"}}
	return p, nil
}

// certConfig is cloud-init's update_cert_config: the file name added last,
// any earlier mention of it dropped. An absent file counts as empty
// (cloud-init fails the module there).
func certConfig(cur []byte) []byte {
	if len(cur) == 0 {
		return []byte(CACertFilename + "\n")
	}
	var keep []string
	for _, l := range userdata.PySplitLines(string(cur)) {
		if l != CACertFilename {
			keep = append(keep, l)
		}
	}
	return []byte(strings.TrimRightFunc(strings.Join(keep, "\n"), isPySpace) + "\n" + CACertFilename + "\n")
}

// cfgOptionList is cloud-init's util.get_cfg_option_list: a list's items
// as str(), one string as a list of it, nothing for None.
func cfgOptionList(v any) []string {
	switch v := v.(type) {
	case nil:
		return nil
	case []any:
		out := make([]string, 0, len(v))
		for _, x := range v {
			out = append(out, userdata.PyStr(x))
		}
		return out
	case string:
		return []string{v}
	}
	return []string{userdata.PyStr(v)}
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case []any:
		return "a list"
	case bool:
		return "a boolean"
	case int, int64, float64:
		return "a number"
	}
	return "a mapping"
}
