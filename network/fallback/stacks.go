package fallback

import (
	"bufio"
	"bytes"
	"io/fs"
	"path"
	"strings"

	"go.yaml.in/yaml/v3"
)

// networkdConfigures returns the first .network file (by systemd's
// precedence: /etc, /run, /usr/lib, /lib) whose [Match] section matches l.
// A match key flint does not evaluate counts as matching: an image's own
// configuration is never overridden on a guess.
func networkdConfigures(root fs.FS, l Link) string {
	dirs := []string{"etc/systemd/network", "run/systemd/network", "usr/lib/systemd/network", "lib/systemd/network"}
	for _, f := range configFiles(root, dirs, ".network") {
		b, err := fs.ReadFile(root, f)
		if err != nil {
			continue
		}
		if networkdMatches(parseINI(b)["Match"], l) {
			return "/" + f
		}
	}
	return ""
}

func networkdMatches(match map[string][]string, l Link) bool {
	for k, vals := range match {
		for _, v := range vals {
			if v == "" {
				continue // an empty assignment resets the list
			}
			neg := strings.HasPrefix(v, "!")
			list := strings.Fields(strings.TrimPrefix(v, "!"))
			var hit bool
			switch k {
			case "Name", "OriginalName":
				hit = anyGlob(list, l.Name)
			case "MACAddress", "PermanentMACAddress":
				for _, m := range list {
					hit = hit || strings.EqualFold(m, l.MAC)
				}
			case "Type":
				hit = anyGlob(list, "ether")
			default:
				continue
			}
			if hit == neg {
				return false
			}
		}
	}
	return true
}

func anyGlob(globs []string, s string) bool {
	for _, g := range globs {
		if ok, _ := path.Match(g, s); ok {
			return true
		}
	}
	return false
}

// parseINI reads systemd unit / keyfile syntax: [Section] headers and
// Key=Value lines (a key may repeat); comments start with # or ;.
func parseINI(b []byte) map[string]map[string][]string {
	out := map[string]map[string][]string{}
	sec := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && strings.HasSuffix(line, "]"):
			sec = line[1 : len(line)-1]
			if out[sec] == nil {
				out[sec] = map[string][]string{}
			}
		default:
			k, v, ok := strings.Cut(line, "=")
			if ok && sec != "" {
				k = strings.TrimSpace(k)
				out[sec][k] = append(out[sec][k], strings.TrimSpace(v))
			}
		}
	}
	return out
}

// nmConfigures returns a keyfile connection that applies to l: bound to
// its name or MAC, or an Ethernet connection bound to neither.
func nmConfigures(root fs.FS, l Link) string {
	dirs := []string{"etc/NetworkManager/system-connections", "run/NetworkManager/system-connections", "usr/lib/NetworkManager/system-connections"}
	for _, f := range configFiles(root, dirs, ".nmconnection") {
		b, err := fs.ReadFile(root, f)
		if err != nil {
			continue
		}
		ini := parseINI(b)
		first := func(sec, key string) string {
			if v := ini[sec][key]; len(v) > 0 {
				return v[len(v)-1]
			}
			return ""
		}
		name, mac := first("connection", "interface-name"), first("ethernet", "mac-address")
		typ := first("connection", "type")
		switch {
		case name == l.Name, strings.EqualFold(mac, l.MAC):
			return "/" + f
		case name == "" && mac == "" && (typ == "ethernet" || typ == "802-3-ethernet"):
			return "/" + f
		}
	}
	return ""
}

// netplanConfigures returns a netplan file with an ethernets entry for l
// (by match: name or macaddress, else by its id as the name). Files of
// the same name in /run hide /etc, which hide /lib.
func netplanConfigures(root fs.FS, l Link) string {
	for _, f := range configFiles(root, []string{"run/netplan", "etc/netplan", "lib/netplan", "usr/lib/netplan"}, ".yaml") {
		b, err := fs.ReadFile(root, f)
		if err != nil {
			continue
		}
		var doc struct {
			Network struct {
				Ethernets map[string]struct {
					Match *struct {
						Name       string `yaml:"name"`
						MACAddress string `yaml:"macaddress"`
					} `yaml:"match"`
				} `yaml:"ethernets"`
			} `yaml:"network"`
		}
		if err := yaml.Unmarshal(b, &doc); err != nil {
			// A file netplan itself would reject: not flint's to judge,
			// and not to be overridden.
			return "/" + f
		}
		for id, e := range doc.Network.Ethernets {
			m := e.Match
			if m == nil {
				if id == l.Name {
					return "/" + f
				}
				continue
			}
			if (m.Name == "" || anyGlob([]string{m.Name}, l.Name)) && (m.MACAddress == "" || strings.EqualFold(m.MACAddress, l.MAC)) {
				return "/" + f
			}
		}
	}
	return ""
}

// ifupdownPlan returns the interfaces file that names l (an iface, auto
// or allow-* stanza), or the file to write: a new file in
// /etc/network/interfaces.d when /etc/network/interfaces sources it, else
// /etc/network/interfaces with the stanza appended.
func ifupdownPlan(root fs.FS, l Link) (string, File) {
	main := "etc/network/interfaces"
	sourced := false
	seen := map[string]bool{}
	var visit func(f string) string
	visit = func(f string) string {
		if seen[f] {
			return ""
		}
		seen[f] = true
		b, err := fs.ReadFile(root, f)
		if err != nil {
			return ""
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			w := strings.Fields(sc.Text())
			if len(w) < 2 || strings.HasPrefix(w[0], "#") {
				continue
			}
			switch {
			case w[0] == "iface" || w[0] == "auto" || w[0] == "mapping" || strings.HasPrefix(w[0], "allow-"):
				limit := len(w)
				if w[0] == "iface" {
					limit = 2
				}
				for _, n := range w[1:limit] {
					if n == l.Name {
						return "/" + f
					}
				}
			case w[0] == "source" || w[0] == "source-directory":
				pat := strings.TrimPrefix(w[1], "/")
				if !strings.HasPrefix(w[1], "/") {
					pat = path.Join("etc/network", w[1])
				}
				if strings.HasPrefix(pat, "etc/network/interfaces.d") {
					sourced = true
				}
				if w[0] == "source-directory" {
					pat = path.Join(pat, "*")
				}
				matches, _ := fs.Glob(root, pat)
				for _, m := range matches {
					if c := visit(m); c != "" {
						return c
					}
				}
			}
		}
		return ""
	}
	if c := visit(main); c != "" {
		return c, File{}
	}
	stanza := ifupdownStanza(l)
	if sourced {
		return "", File{ownFiles[Ifupdown], []byte(header + stanza), 0o644}
	}
	old, err := fs.ReadFile(root, main)
	if err != nil {
		old = []byte("auto lo\niface lo inet loopback\n")
	}
	if len(old) > 0 && old[len(old)-1] != '\n' {
		old = append(old, '\n')
	}
	return "", File{main, append(append(old, '\n'), header+stanza...), 0o644}
}
