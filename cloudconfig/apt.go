package cloudconfig

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/flint-dev/flint/userdata"
)

// Files cloud-init's apt module writes.
const (
	AptSourcesList   = "/etc/apt/sources.list"
	AptProxyFile     = "/etc/apt/apt.conf.d/90cloud-init-aptproxy"
	AptConfigFile    = "/etc/apt/apt.conf.d/94cloud-init-config"
	AptTrustedGPGDir = "/etc/apt/trusted.gpg.d/"
	// AptSignedByDir holds keys a source names with $KEY_FILE
	// (signed-by), kept out of apt's global trust.
	AptSignedByDir    = "/etc/apt/cloud-init.gpg.d/"
	DefaultKeyserver  = "keyserver.ubuntu.com"
	aptSourcesListDir = "/etc/apt/sources.list.d/"
)

// AptInput is the apt module's input.
type AptInput struct {
	// Config is cloud-config's apt value (v3 format).
	Config map[string]any
	// Release is the codename (bookworm), Arch dpkg's architecture.
	Release, Arch string
	// DefaultPrimary and DefaultSecurity are the image's mirrors
	// (cloud.cfg's package_mirrors), used when apt names none.
	DefaultPrimary, DefaultSecurity string
	// KeyFetched gives a key fetched for a keyid (see AptPlan.KeyFetches):
	// the armored key by keyid, or nil when not fetched yet.
	KeyFetched map[string]string
}

// AptSourceFile is one sources.list.d entry: appended to the file unless
// Replace.
type AptSourceFile struct {
	Path    string
	Line    string
	Replace bool
}

// AptKeyFetch is a key to fetch from a keyserver before planning again.
type AptKeyFetch struct {
	KeyID, Keyserver, URL string
}

// AptPlan is what the apt module does, in order: write Files (remove
// Remove), write Keys, add Sources, run Commands.
type AptPlan struct {
	Mirrors map[string]string
	Files   []File
	Remove  []string
	Keys    []File
	Sources []AptSourceFile
	// Commands are add-apt-repository calls for ppa:-style sources.
	Commands [][]string
	// KeyFetches are keyids with no key given: fetch each (KeyFetchURL)
	// and plan again with AptInput.KeyFetched.
	KeyFetches []AptKeyFetch
}

var aptRepoMatch = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[\w-]+:\w`) })

// Apt decides the apt module as cloud-init 22.4's cc_apt_configure does
// (frequency once per instance) for a v3 apt config: primary/security
// mirrors (uri; search and search_dns are not supported), sources.list
// from cloud-init's template or sources_list, disable_suites, proxies and
// conf, and sources with their keys. A key that is not an ASCII-armored
// OpenPGP key is a ConfigError naming the source: nothing is written for
// it. Keys are dearmored here, as gpg --dearmor would.
func Apt(in AptInput) (*AptPlan, error) {
	cfg := in.Config
	if cfg == nil {
		cfg = map[string]any{}
	}
	mirrors, err := aptMirrors(cfg, in)
	if err != nil {
		return nil, err
	}
	p := &AptPlan{Mirrors: mirrors}
	if isTrue(cfg["generate_mirrorlists"]) {
		return nil, configErrorf("apt.generate_mirrorlists", "is not supported")
	}
	if isFalse(orDefault(cfg["preserve_sources_list"], false)) {
		params := map[string]any{"RELEASE": in.Release, "codename": in.Release}
		for k, v := range mirrors {
			params[k] = v
			params[strings.ToLower(k)] = v
		}
		var out []byte
		if tmpl, ok := cfg["sources_list"].(string); ok {
			out, err = renderAnyTemplate(tmpl, params)
			if err != nil {
				return nil, configErrorf("apt.sources_list", "%v", err)
			}
		} else {
			if out, err = renderTemplate("sources.list.debian", params); err != nil {
				return nil, err
			}
		}
		disabled, err := disableSuites(cfg["disable_suites"], string(out), in.Release)
		if err != nil {
			return nil, err
		}
		p.Files = append(p.Files, File{Path: AptSourcesList, Mode: 0o644, Content: []byte(disabled)})
	}
	var proxies []string
	for _, pr := range [][2]string{{"proxy", "http"}, {"http_proxy", "http"}, {"ftp_proxy", "ftp"}, {"https_proxy", "https"}} {
		if v := cfg[pr[0]]; userdata.Truthy(v) {
			proxies = append(proxies, fmt.Sprintf("Acquire::%s::Proxy \"%s\";", pr[1], userdata.PyStr(v)))
		}
	}
	if len(proxies) > 0 {
		p.Files = append(p.Files, File{Path: AptProxyFile, Mode: 0o644, Content: []byte(strings.Join(proxies, "\n") + "\n")})
	} else {
		p.Remove = append(p.Remove, AptProxyFile)
	}
	if v := cfg["conf"]; userdata.Truthy(v) {
		p.Files = append(p.Files, File{Path: AptConfigFile, Mode: 0o644, Content: []byte(userdata.PyStr(v))})
	} else {
		p.Remove = append(p.Remove, AptConfigFile)
	}
	if src, ok := cfg["sources"]; ok {
		if err := p.addSources(src, in, mirrors); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func (p *AptPlan) addSources(src any, in AptInput, mirrors map[string]string) error {
	m, ok := src.(map[string]any)
	if !ok {
		return configErrorf("apt.sources", "is %s, not a mapping", typeName(src))
	}
	params := map[string]any{"RELEASE": in.Release}
	for k, v := range mirrors {
		params[k] = v
	}
	// cloud-init goes through the mapping in document order; decoded
	// cloud-config keeps no order, so flint goes by name.
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		key := "apt.sources." + name
		ent, ok := m[name].(map[string]any)
		if !ok {
			return configErrorf(key, "is %s, not a mapping", typeName(m[name]))
		}
		filename := name
		if f, ok := ent["filename"].(string); ok {
			filename = f
		}
		source, hasSource := ent["source"].(string)
		hardened := hasSource && strings.Contains(source, "$KEY_FILE")
		armored, hasKey := ent["key"].(string)
		if !hasKey {
			if id, ok := ent["keyid"]; ok {
				keyid := userdata.PyStr(id)
				if k, ok := in.KeyFetched[keyid]; ok {
					armored, hasKey = k, true
				} else {
					server := DefaultKeyserver
					if s, ok := ent["keyserver"].(string); ok {
						server = s
					}
					p.KeyFetches = append(p.KeyFetches, AptKeyFetch{KeyID: keyid, Keyserver: server, URL: KeyFetchURL(keyid, server)})
					continue
				}
			}
		}
		if hasKey {
			bin, err := Dearmor(armored)
			if err != nil {
				return configErrorf(key+".key", "%v; nothing written for this source", err)
			}
			dir := AptTrustedGPGDir
			if hardened {
				dir = AptSignedByDir
			}
			stem := strings.TrimSuffix(path.Base(filename), path.Ext(filename))
			kf := dir + stem + ".gpg"
			p.Keys = append(p.Keys, File{Path: kf, Mode: 0o644, Content: bin})
			if hardened {
				params["KEY_FILE"] = kf
			}
		}
		if !hasSource {
			continue
		}
		line, err := basicRender(source, params)
		if err != nil {
			return configErrorf(key+".source", "%v", err)
		}
		if !strings.HasPrefix(filename, "/") {
			filename = aptSourcesListDir + filename
		}
		if !strings.HasSuffix(filename, ".list") {
			filename += ".list"
		}
		if aptRepoMatch().MatchString(line) {
			p.Commands = append(p.Commands, []string{"add-apt-repository", "--no-update", line})
			continue
		}
		replace := false
		if v, ok := ent["append"]; ok && !userdata.Truthy(v) {
			replace = true
		}
		p.Sources = append(p.Sources, AptSourceFile{Path: filename, Line: line + "\n", Replace: replace})
	}
	return nil
}

// KeyFetchURL is where a keyid's key is fetched: the keyserver's HKP
// lookup over HTTPS (cloud-init runs gpg --recv-keys against it).
func KeyFetchURL(keyid, server string) string {
	host := strings.TrimPrefix(strings.TrimPrefix(strings.TrimPrefix(server, "hkp://"), "hkps://"), "https://")
	id := strings.ReplaceAll(keyid, " ", "")
	if !strings.HasPrefix(id, "0x") {
		id = "0x" + id
	}
	return "https://" + strings.TrimSuffix(host, "/") + "/pks/lookup?op=get&options=mr&search=" + url.QueryEscape(id)
}

// aptMirrors is find_apt_mirror_info for uri entries.
func aptMirrors(cfg map[string]any, in AptInput) (map[string]string, error) {
	get := func(kind string) (string, bool, error) {
		l, ok := cfg[kind]
		if !ok || l == nil {
			return "", false, nil
		}
		list, ok := l.([]any)
		if !ok {
			return "", false, configErrorf("apt."+kind, "is %s, not a list", typeName(l))
		}
		var chosen map[string]any
		for _, e := range list {
			m, ok := e.(map[string]any)
			if !ok {
				return "", false, configErrorf("apt."+kind, "has %s, not a mapping", typeName(e))
			}
			arches, _ := m["arches"].([]any)
			match := false
			for _, a := range arches {
				if userdata.PyStr(a) == in.Arch {
					match = true
				}
				if userdata.PyStr(a) == "default" && chosen == nil {
					chosen = m
				}
			}
			if match {
				chosen = m
				break
			}
		}
		if chosen == nil {
			return "", false, nil
		}
		if u, ok := chosen["uri"].(string); ok {
			return u, true, nil
		}
		if chosen["search"] != nil || chosen["search_dns"] != nil {
			return "", false, configErrorf("apt."+kind, "search and search_dns are not supported; give uri")
		}
		return "", false, nil
	}
	prim, okP, err := get("primary")
	if err != nil {
		return nil, err
	}
	sec, okS, err := get("security")
	if err != nil {
		return nil, err
	}
	var m map[string]string
	switch {
	case okP && okS:
		m = map[string]string{"PRIMARY": prim, "SECURITY": sec}
	case okP:
		m = map[string]string{"PRIMARY": prim, "SECURITY": prim}
	default:
		m = map[string]string{"PRIMARY": in.DefaultPrimary, "SECURITY": in.DefaultSecurity,
			"primary": in.DefaultPrimary, "security": in.DefaultSecurity}
	}
	m["MIRROR"] = m["PRIMARY"]
	return m, nil
}

// disableSuites is cloud-init's disable_suites.
func disableSuites(v any, src, release string) (string, error) {
	if !userdata.Truthy(v) {
		return src, nil
	}
	list, ok := v.([]any)
	if !ok {
		return "", configErrorf("apt.disable_suites", "is %s, not a list", typeName(v))
	}
	known := map[string]string{"updates": "$RELEASE-updates", "backports": "$RELEASE-backports",
		"security": "$RELEASE-security", "proposed": "$RELEASE-proposed", "release": "$RELEASE"}
	for _, s := range list {
		suite := userdata.PyStr(s)
		if k, ok := known[suite]; ok {
			suite = k
		}
		rs, err := basicRender(suite, map[string]any{"RELEASE": release})
		if err != nil {
			return "", configErrorf("apt.disable_suites", "%v", err)
		}
		var b strings.Builder
		for _, line := range splitLinesKeepEnds(src) {
			if !strings.HasPrefix(line, "#") {
				cols := strings.Fields(line)
				if len(cols) > 1 {
					pcol := 2
					if strings.HasPrefix(cols[1], "[") {
						for _, c := range cols[1:] {
							pcol++
							if strings.HasSuffix(c, "]") {
								break
							}
						}
					}
					if pcol < len(cols) && cols[pcol] == rs {
						line = "# suite disabled by cloud-init: " + line
					}
				}
			}
			b.WriteString(line)
		}
		src = b.String()
	}
	return src, nil
}

func splitLinesKeepEnds(s string) []string {
	var out []string
	for s != "" {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			out = append(out, s)
			break
		}
		out = append(out, s[:i+1])
		s = s[i+1:]
	}
	return out
}

var basicVar = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`\$\{([A-Za-z0-9_.]+)\}|\$([A-Za-z0-9_.]+)`)
})

// basicRender is cloud-init's templater.basic_render: $name and ${name}
// (dotted names walk mappings); an unknown name is an error, as the
// KeyError it is in cloud-init.
func basicRender(s string, params map[string]any) (string, error) {
	var rerr error
	out := basicVar().ReplaceAllStringFunc(s, func(m string) string {
		g := basicVar().FindStringSubmatch(m)
		name := g[1] + g[2]
		var cur any = params
		for _, k := range strings.Split(name, ".") {
			mm, ok := cur.(map[string]any)
			if !ok {
				rerr = fmt.Errorf("$%s: %q is not a mapping", name, k)
				return ""
			}
			if cur, ok = mm[k]; !ok {
				if rerr == nil {
					rerr = fmt.Errorf("$%s is not defined (known: $MIRROR, $PRIMARY, $SECURITY, $RELEASE, $KEY_FILE)", name)
				}
				return ""
			}
		}
		return userdata.PyStr(cur)
	})
	return out, rerr
}

// renderAnyTemplate renders a template given in config: jinja with its
// "## template:" line, else basic.
func renderAnyTemplate(tmpl string, params map[string]any) ([]byte, error) {
	first, _, _ := strings.Cut(tmpl, "\n")
	if strings.HasPrefix(strings.ToLower(strings.ReplaceAll(first, " ", "")), "##template:") {
		return renderJinjaString(tmpl, params)
	}
	out, err := basicRender(tmpl, params)
	return []byte(out), err
}

func orDefault(v, d any) any {
	if v == nil {
		return d
	}
	return v
}

// Dearmor decodes an ASCII-armored OpenPGP public key block into its
// binary packets, as gpg --dearmor does, checking the armor checksum and
// that the first packet is a public key.
func Dearmor(armored string) ([]byte, error) {
	const begin = "-----BEGIN PGP PUBLIC KEY BLOCK-----"
	s := strings.ReplaceAll(armored, "\r\n", "\n")
	i := strings.Index(s, begin)
	if i < 0 {
		return nil, fmt.Errorf("key is not an ASCII-armored OpenPGP public key (no %q line)", begin)
	}
	s = s[i+len(begin):]
	j := strings.Index(s, "-----END PGP PUBLIC KEY BLOCK-----")
	if j < 0 {
		return nil, fmt.Errorf("key has no END PGP PUBLIC KEY BLOCK line")
	}
	s = s[:j]
	// Armor headers end at the first blank line.
	lines := strings.Split(strings.TrimLeft(s, "\n"), "\n")
	start := 0
	for k, l := range lines {
		if strings.TrimSpace(l) == "" {
			start = k + 1
			break
		}
		if !strings.Contains(l, ": ") {
			break
		}
	}
	var body, crc strings.Builder
	for _, l := range lines[start:] {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "=") && len(l) == 5 {
			crc.WriteString(l[1:])
			continue
		}
		body.WriteString(l)
	}
	bin, err := base64.StdEncoding.DecodeString(body.String())
	if err != nil || len(bin) == 0 {
		return nil, fmt.Errorf("key's armored body is not valid base64")
	}
	if crc.Len() > 0 {
		want, err := base64.StdEncoding.DecodeString(crc.String())
		if err != nil || len(want) != 3 {
			return nil, fmt.Errorf("key's armor checksum is not valid base64")
		}
		if got := crc24(bin); !bytes.Equal(got, want) {
			return nil, fmt.Errorf("key's armor checksum does not match its content (damaged key)")
		}
	}
	// A public-key packet (tag 6), old or new format.
	tag := -1
	if bin[0]&0x80 != 0 {
		if bin[0]&0x40 != 0 {
			tag = int(bin[0] & 0x3f)
		} else {
			tag = int(bin[0]>>2) & 0x0f
		}
	}
	if tag != 6 {
		return nil, fmt.Errorf("key's first OpenPGP packet is not a public key")
	}
	return bin, nil
}

func crc24(b []byte) []byte {
	crc := uint32(0xB704CE)
	for _, c := range b {
		crc ^= uint32(c) << 16
		for i := 0; i < 8; i++ {
			crc <<= 1
			if crc&0x1000000 != 0 {
				crc ^= 0x1864CFB
			}
		}
	}
	return []byte{byte(crc >> 16), byte(crc >> 8), byte(crc)}
}
