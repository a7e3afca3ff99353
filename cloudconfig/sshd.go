package cloudconfig

import (
	"io/fs"
	"strings"

	"github.com/flint-dev/flint/userdata"
)

// SSHDConfigPath is sshd's main configuration file.
const SSHDConfigPath = "/etc/ssh/sshd_config"

// SSHPwauthInput is the ssh_pwauth module's input (cloud-init runs it in
// cc_set_passwords, once per instance).
type SSHPwauthInput struct {
	// Value is the cloud-config ssh_pwauth value; Present reports whether
	// the key is there at all.
	Value   any
	Present bool
	// SSHDConfig is sshd_config's content (nil when absent); DropIn is the
	// current content of the drop-in cloud-init writes (nil when absent).
	SSHDConfig []byte
	DropIn     []byte
}

// SSHPwauth decides sshd's PasswordAuthentication as cloud-init's
// handle_ssh_pwauth does: true/"yes"/"on"/"1" is yes, false/"no"/"off"/"0"
// is no, "unchanged" (or no key) leaves sshd alone, anything else is a
// ConfigError (cloud-init logs a warning and leaves sshd alone). When
// sshd_config includes sshd_config.d/*.conf the setting goes to
// sshd_config.d/50-cloud-init.conf (the same file cloud-init writes, so
// it sorts before the images' own drop-ins and sshd's first value wins);
// otherwise sshd_config itself is updated. The returned file is nil when
// nothing changes; restart tells whether sshd needs restarting.
func SSHPwauth(in SSHPwauthInput) (f *File, restart bool, err error) {
	if !in.Present || in.Value == nil {
		return nil, false, nil
	}
	var val string
	switch {
	case isTrue(in.Value):
		val = "yes"
	case isFalse(in.Value):
		val = "no"
	default:
		if s, ok := in.Value.(string); ok && strings.EqualFold(s, "unchanged") {
			return nil, false, nil
		}
		return nil, false, configErrorf("ssh_pwauth", "%q is not true, false or \"unchanged\"; sshd's PasswordAuthentication left unchanged", userdata.PyStr(in.Value))
	}
	path, current, mode := SSHDConfigPath, in.SSHDConfig, fs.FileMode(0o644)
	if includesDropIns(in.SSHDConfig) {
		path, current, mode = SSHDConfigPath+".d/50-cloud-init.conf", in.DropIn, 0o600
	}
	out, changed := updateSSHDConfig(current, map[string]string{"PasswordAuthentication": val}, []string{"PasswordAuthentication"})
	if !changed {
		return nil, false, nil
	}
	return &File{Path: path, Mode: mode, Content: out}, true, nil
}

// includesDropIns is cloud-init's _includes_dconf: a line starting
// exactly "Include /etc/ssh/sshd_config.d/*.conf".
func includesDropIns(cfg []byte) bool {
	for _, l := range strings.Split(string(cfg), "\n") {
		if strings.HasPrefix(l, "Include "+SSHDConfigPath+".d/*.conf") {
			return true
		}
	}
	return false
}

// updateSSHDConfig is cloud-init's parse_ssh_config +
// update_ssh_config_lines: lines are read stripped, "Key value" and
// "Key=value" lines are written back as "Key value" (a line with a key and
// no value is dropped), lines setting an updated key (case-insensitively)
// get the new value, missing keys are appended. The result is what
// cloud-init writes when something changed.
func updateSSHDConfig(cur []byte, updates map[string]string, order []string) ([]byte, bool) {
	var lines []string
	found := map[string]bool{}
	changed := false
	for _, l := range strings.Split(strings.ReplaceAll(string(cur), "\r\n", "\n"), "\n") {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "#") {
			lines = append(lines, t)
			continue
		}
		key, value, ok := splitSSHDLine(t)
		if !ok {
			continue
		}
		for _, k := range order {
			if strings.EqualFold(k, key) {
				found[k] = true
				if value != updates[k] {
					changed = true
					value = updates[k]
				}
			}
		}
		if value != "" {
			key += " " + value
		}
		lines = append(lines, key)
	}
	// Python's splitlines has no empty last line for a trailing newline.
	if n := len(lines); n > 0 && lines[n-1] == "" && (len(cur) == 0 || strings.HasSuffix(string(cur), "\n")) {
		lines = lines[:n-1]
	}
	for _, k := range order {
		if !found[k] {
			changed = true
			lines = append(lines, k+" "+updates[k])
		}
	}
	return []byte(strings.Join(lines, "\n") + "\n"), changed
}

// splitSSHDLine is python's line.split(None, 1), else line.split("=", 1).
func splitSSHDLine(t string) (key, value string, ok bool) {
	if i := strings.IndexFunc(t, isPySpace); i >= 0 {
		return t[:i], strings.TrimLeftFunc(t[i:], isPySpace), true
	}
	if k, v, found := strings.Cut(t, "="); found {
		return k, v, true
	}
	return "", "", false
}

func isPySpace(r rune) bool {
	switch r {
	case ' ', '\t', '\n', '\r', '\v', '\f':
		return true
	}
	return false
}
