package sshkeys

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/flint-dev/flint/internal/accounts"
	"github.com/flint-dev/flint/internal/rootfs"
)

// DefaultAuthorizedKeysFile is sshd's compiled-in default (the first of its
// two files is where keys are written).
const DefaultAuthorizedKeysFile = ".ssh/authorized_keys"

// SSHDPath is where sshd is looked for on the live system.
var SSHDPath = "/usr/sbin/sshd"

// AuthorizedKeysFile returns the root-relative path of the file sshd
// reads u's keys from: the first AuthorizedKeysFile entry, with %h, %u,
// %U and %% expanded and relative entries taken from the home directory.
// The root's sshd_config and its Includes are read; on the live system,
// where a Match block sets AuthorizedKeysFile, sshd's effective setting
// for u comes from `sshd -T` instead (when it can run: not before host
// keys exist). "none" yields "".
func AuthorizedKeysFile(ctx context.Context, root *rootfs.Root, u accounts.User) (rel, source string, err error) {
	pattern, source := "", ""
	// sshd -T (a process start, half a second under emulation) only
	// where what it adds to reading the files counts: a Match block that
	// sets AuthorizedKeysFile, which sshd evaluates per connection.
	if root.IsHost() && matchSets(root, "etc/ssh/sshd_config", "authorizedkeysfile") && sshdCanTest(root) {
		if p, err := sshdT(ctx, u.Name); err == nil {
			pattern, source = p, "sshd -T"
		}
	}
	if source == "" {
		p, err := ConfigValue(root, "etc/ssh/sshd_config", "authorizedkeysfile")
		if err != nil {
			return "", "", err
		}
		pattern, source = p, "sshd_config"
		if p == "" {
			pattern, source = DefaultAuthorizedKeysFile, "default"
		}
	}
	first := strings.Fields(pattern)
	if len(first) == 0 {
		return path.Join(strings.TrimPrefix(u.Home, "/"), DefaultAuthorizedKeysFile), source, nil
	}
	if strings.EqualFold(first[0], "none") {
		return "", source, nil
	}
	p := ExpandTokens(first[0], u)
	if !strings.HasPrefix(p, "/") {
		p = path.Join(u.Home, p)
	}
	return strings.TrimPrefix(path.Clean(p), "/"), source, nil
}

// ExpandTokens expands sshd's %% %h %u %U in an AuthorizedKeysFile entry.
func ExpandTokens(p string, u accounts.User) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] != '%' || i+1 == len(p) {
			b.WriteByte(p[i])
			continue
		}
		i++
		switch p[i] {
		case '%':
			b.WriteByte('%')
		case 'h':
			b.WriteString(u.Home)
		case 'u':
			b.WriteString(u.Name)
		case 'U':
			fmt.Fprint(&b, u.UID)
		default:
			b.WriteByte('%')
			b.WriteByte(p[i])
		}
	}
	return b.String()
}

// sshdCanTest reports whether `sshd -T` can print the configuration in
// root: it exits with "no hostkeys available" first when none of its host
// keys exists, as on a first boot before host keys are made. With no
// HostKey in sshd_config (the defaults, etc/ssh/ssh_host_*_key) and no
// such file, running it would only cost a process start.
func sshdCanTest(root *rootfs.Root) bool {
	if v, err := ConfigValue(root, "etc/ssh/sshd_config", "hostkey"); err != nil || v != "" {
		return true // the image names its keys: let sshd look
	}
	ents, err := root.ReadDir("etc/ssh", rootfs.InRoot)
	if err != nil {
		return true
	}
	for _, e := range ents {
		if n := e.Name(); strings.HasPrefix(n, "ssh_host_") && strings.HasSuffix(n, "_key") {
			return true
		}
	}
	return false
}

func sshdT(ctx context.Context, user string) (string, error) {
	if _, err := os.Stat(SSHDPath); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, SSHDPath, "-T", "-C", "user="+user+",host=localhost,addr=127.0.0.1").Output()
	if err != nil {
		return "", fmt.Errorf("sshd -T: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		if k == "authorizedkeysfile" {
			return v, nil
		}
	}
	return "", errors.New("sshd -T printed no authorizedkeysfile")
}

// ConfigValue returns the first value of keyword (lower case) in an
// sshd_config below root, following Include like sshd (globs, paths
// relative to etc/ssh, resolved inside the root) and ignoring Match
// blocks, which apply per connection. "" means not set.
func ConfigValue(root *rootfs.Root, file, keyword string) (string, error) {
	val := ""
	_, err := walkConfig(root, file, false, 0, func(k, v string, inMatch bool) bool {
		if !inMatch && k == keyword {
			val = strings.Trim(v, `"`)
			return false
		}
		return true
	})
	return val, err
}

// walkConfig calls fn with each directive (keyword in lower case) of an
// sshd_config below root, in sshd's order, following Include like sshd
// (globs, paths relative to etc/ssh, resolved inside the root), and says
// whether a Match block holds it: the lines after a Match line in its
// file, and the files an Include inside a Match block names. fn returns
// false to stop the walk; walkConfig then returns false.
func walkConfig(root *rootfs.Root, file string, inMatch bool, depth int, fn func(keyword, value string, inMatch bool) bool) (bool, error) {
	if depth > 16 {
		return false, fmt.Errorf("%s: Include nested too deeply", root.Path(file))
	}
	b, err := root.ReadFile(file, rootfs.InRoot)
	if errors.Is(err, os.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, _ := strings.Cut(strings.Replace(line, "=", " ", 1), " ")
		k, v = strings.ToLower(k), strings.TrimSpace(v)
		switch k {
		case "match":
			inMatch = true
		case "include":
			for _, rel := range included(root, v) {
				if more, err := walkConfig(root, rel, inMatch, depth+1, fn); !more || err != nil {
					return more, err
				}
			}
		default:
			if !fn(k, v, inMatch) {
				return false, nil
			}
		}
	}
	return true, nil
}

// matchSets reports whether a Match block in an sshd_config below root
// (or a file it includes) sets keyword (lower case). Any doubt (a file
// that cannot be read, Includes nested too deeply) is true: sshd decides.
func matchSets(root *rootfs.Root, file, keyword string) bool {
	found := false
	_, err := walkConfig(root, file, false, 0, func(k, _ string, inMatch bool) bool {
		found = inMatch && k == keyword
		return !found
	})
	return found || err != nil
}

// included lists, root-relative and in sshd's order, the files an
// Include line's patterns name (relative ones below /etc/ssh), resolved
// inside root.
func included(root *rootfs.Root, patterns string) []string {
	var out []string
	for _, pat := range strings.Fields(patterns) {
		if !strings.HasPrefix(pat, "/") {
			pat = "/etc/ssh/" + pat
		}
		matches, _ := filepath.Glob(root.Path(pat))
		for _, m := range matches {
			if rel, err := filepath.Rel(root.Dir(), m); err == nil && !strings.HasPrefix(rel, "..") {
				out = append(out, rel)
			}
		}
	}
	return out
}
