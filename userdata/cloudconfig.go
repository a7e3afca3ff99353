package userdata

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// CloudConfig holds the cloud-config keys flint acts on, decoded from the
// merged document with cloud-init's leniency (YAML 1.1 booleans, octal
// modes, strings or lists where cloud-init takes either). Keys flint does
// not handle stay in Unknown; the full document is UserData.Config.
type CloudConfig struct {
	Hostname               string            `json:"hostname,omitempty"`
	FQDN                   string            `json:"fqdn,omitempty"`
	PreferFQDNOverHostname *bool             `json:"prefer_fqdn_over_hostname,omitempty"`
	ManageEtcHosts         ManageEtcHosts    `json:"manage_etc_hosts,omitempty"`
	Users                  []User            `json:"users,omitempty"`
	SSHAuthorizedKeys      []string          `json:"ssh_authorized_keys,omitempty"`
	DisableRoot            *bool             `json:"disable_root,omitempty"`
	SSHPwauth              *bool             `json:"ssh_pwauth,omitempty"` // nil: leave sshd as it is ("unchanged")
	Chpasswd               *Chpasswd         `json:"chpasswd,omitempty"`
	WriteFiles             []WriteFile       `json:"write_files,omitempty"`
	Bootcmd                []Command         `json:"bootcmd,omitempty"`
	Runcmd                 []Command         `json:"runcmd,omitempty"`
	FinalMessage           *string           `json:"final_message,omitempty"`
	Timezone               string            `json:"timezone,omitempty"`
	Packages               []Package         `json:"packages,omitempty"`
	PackageUpdate          bool              `json:"package_update,omitempty"`
	PackageUpgrade         bool              `json:"package_upgrade,omitempty"`
	SSHKeys                map[string]string `json:"ssh_keys,omitempty"`
	SSHDeleteKeys          *bool             `json:"ssh_deletekeys,omitempty"`
	SSHGenKeyTypes         []string          `json:"ssh_genkeytypes,omitempty"`
	// Unknown holds every other top-level key, as parsed.
	Unknown map[string]any `json:"-"`
}

// ManageEtcHosts is cloud-init's manage_etc_hosts: "" (leave alone),
// "template" (true) or "localhost".
type ManageEtcHosts string

// User is one entry of `users`. The literal entry "default" sets Default
// and nothing else.
type User struct {
	Name              string   `json:"name"`
	Default           bool     `json:"default,omitempty"`
	Gecos             string   `json:"gecos,omitempty"`
	HomeDir           string   `json:"homedir,omitempty"`
	PrimaryGroup      string   `json:"primary_group,omitempty"`
	Groups            []string `json:"groups,omitempty"`
	Shell             string   `json:"shell,omitempty"`
	Sudo              []string `json:"sudo,omitempty"` // sudoers rules; empty: none
	LockPasswd        *bool    `json:"lock_passwd,omitempty"`
	Passwd            string   `json:"-"` // hashed password (secret)
	HashedPasswd      string   `json:"-"`
	PlainTextPasswd   string   `json:"-"`
	SSHAuthorizedKeys []string `json:"ssh_authorized_keys,omitempty"`
	SSHImportID       []string `json:"ssh_import_id,omitempty"`
	System            bool     `json:"system,omitempty"`
	NoCreateHome      bool     `json:"no_create_home,omitempty"`
	NoUserGroup       bool     `json:"no_user_group,omitempty"`
	UID               *int64   `json:"uid,omitempty"`
	Expiredate        string   `json:"expiredate,omitempty"`
	Inactive          string   `json:"inactive,omitempty"`
	SELinuxUser       string   `json:"selinux_user,omitempty"`
}

// Chpasswd is cloud-init's chpasswd: Users (the 22.x form) and List (the
// older "name:password" lines) both set passwords.
type Chpasswd struct {
	Expire *bool          `json:"expire,omitempty"`
	Users  []ChpasswdUser `json:"-"`
	List   []ChpasswdUser `json:"-"`
}

// ChpasswdUser is one password assignment; Type is "hash", "text" or
// "RANDOM" (Password empty).
type ChpasswdUser struct {
	Name, Password, Type string
}

// WriteFile is one write_files entry. Content is still encoded; Decoded
// undoes Encoding.
type WriteFile struct {
	Path        string      `json:"path"`
	Content     string      `json:"-"`
	Encoding    string      `json:"encoding,omitempty"`
	Owner       string      `json:"owner"`
	Permissions os.FileMode `json:"permissions"`
	Append      bool        `json:"append,omitempty"`
	// Defer means writing after users and packages (cloud-init's
	// write-files-deferred stage).
	Defer bool `json:"defer,omitempty"`
	// Source is where the content is fetched from (cloud-init's
	// source.uri and source.headers); Content is the fallback when the
	// fetch fails and HasContent says the entry gave one.
	Source     *WriteFileSource `json:"-"`
	HasContent bool             `json:"-"`
}

// WriteFileSource is a write_files entry's source: a URL (which may
// carry credentials: never logged as is) and the headers to send.
type WriteFileSource struct {
	URI     string
	Headers map[string]string
}

// Decoded returns the file content with its encoding undone.
func (w WriteFile) Decoded() ([]byte, error) {
	return DecodeWriteFileContent(w.Encoding, []byte(w.Content))
}

// Command is one bootcmd/runcmd entry: a string runs through `sh -c`,
// a list runs as an argv without a shell.
type Command struct {
	Shell string   `json:"shell,omitempty"`
	Argv  []string `json:"argv,omitempty"`
}

// Package is one `packages` entry; Version is empty unless the entry was a
// [name, version] pair.
type Package struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
}

// Default write_files owner and mode, as cloud-init.
const (
	DefaultOwner       = "root:root"
	DefaultPermissions = os.FileMode(0o644)
)

// handledKeys are the top-level keys CloudConfig decodes.
var handledKeys = map[string]bool{
	"hostname": true, "fqdn": true, "prefer_fqdn_over_hostname": true, "manage_etc_hosts": true,
	"users": true, "ssh_authorized_keys": true, "disable_root": true, "ssh_pwauth": true,
	"chpasswd": true, "write_files": true, "bootcmd": true, "runcmd": true, "final_message": true,
	"timezone": true, "packages": true, "package_update": true, "package_upgrade": true,
	"ssh_keys": true, "ssh_deletekeys": true, "ssh_genkeytypes": true,
	// Read from the merged document by the users handler (the default
	// user: a name or a mapping), not decoded here.
	"user": true,
	// Read from the merged document by the groups handler, which
	// package cloudconfig normalises.
	"groups": true,
	// Read from the merged document by the locale, ca-certs, ntp, apt,
	// phone-home and power-state handlers, which package cloudconfig
	// decides.
	"locale": true, "locale_configfile": true, "ca_certs": true, "ca-certs": true, "ntp": true,
	"apt": true, "phone_home": true, "power_state": true,
	"yum_repos": true, "yum_repo_dir": true, "ssh_import_id": true, // the yum-repos and ssh-import-id handlers
	// Read from the merged document by the disk handlers (growpart,
	// resize-rootfs, mounts, disk-setup), which package disks decodes.
	"growpart": true, "resize_rootfs": true, "mounts": true, "mount_default_fields": true,
	"swap": true, "disk_setup": true, "fs_setup": true, "device_aliases": true,
	// Accepted and used by merging or by other keys.
	"merge_how": true, "merge_type": true, "apt_update": true, "apt_upgrade": true,
}

type ccDecoder struct{ warns []string }

func (d *ccDecoder) warnf(format string, args ...any) {
	d.warns = append(d.warns, fmt.Sprintf(format, args...))
}

// DecodeCloudConfig decodes a merged cloud-config document into the typed
// keys. Values of the wrong type are left zero and reported in the
// returned warnings (cloud-init fails only that module); unknown keys are
// kept in Unknown and reported in one warning.
func DecodeCloudConfig(doc map[string]any) (*CloudConfig, []string) {
	d := &ccDecoder{}
	cc := &CloudConfig{Unknown: map[string]any{}}
	var unknown []string
	for _, k := range sortedKeys(doc) {
		if !handledKeys[k] {
			unknown = append(unknown, k)
			cc.Unknown[k] = doc[k]
		}
	}
	if len(unknown) > 0 {
		d.warnf("cloud-config keys not handled by flint (kept, ignored): %s", strings.Join(unknown, ", "))
	}
	cc.Hostname = d.str(doc, "hostname")
	cc.FQDN = d.str(doc, "fqdn")
	cc.PreferFQDNOverHostname = d.boolp(doc, "prefer_fqdn_over_hostname")
	switch v := doc["manage_etc_hosts"].(type) {
	case nil:
	case bool:
		if v {
			cc.ManageEtcHosts = "template"
		}
	case string:
		switch strings.ToLower(v) {
		case "template", "localhost":
			cc.ManageEtcHosts = ManageEtcHosts(strings.ToLower(v))
		default:
			d.warnf("manage_etc_hosts: the string given is not true, false, template or localhost; ignored")
		}
	default:
		d.warnf("manage_etc_hosts: %s is not a boolean or string; ignored", typeName(v))
	}
	cc.Users = d.users(doc["users"])
	cc.SSHAuthorizedKeys = d.strList(doc, "ssh_authorized_keys")
	cc.DisableRoot = d.boolp(doc, "disable_root")
	switch v := doc["ssh_pwauth"].(type) {
	case nil:
	case bool:
		cc.SSHPwauth = &v
	case string:
		if strings.ToLower(v) != "unchanged" {
			d.warnf("ssh_pwauth: the string given is not a boolean or \"unchanged\"; ignored")
		}
	default:
		d.warnf("ssh_pwauth: %s is not a boolean; ignored", typeName(v))
	}
	cc.Chpasswd = d.chpasswd(doc["chpasswd"])
	cc.WriteFiles = d.writeFiles(doc["write_files"])
	cc.Bootcmd = d.commands("bootcmd", doc["bootcmd"])
	cc.Runcmd = d.commands("runcmd", doc["runcmd"])
	if v, ok := doc["final_message"]; ok && v != nil {
		s := d.scalar("final_message", v)
		cc.FinalMessage = &s
	}
	cc.Timezone = d.str(doc, "timezone")
	cc.Packages = d.packages(doc["packages"])
	cc.PackageUpdate = d.boolv(doc, "package_update") || d.boolv(doc, "apt_update")
	cc.PackageUpgrade = d.boolv(doc, "package_upgrade") || d.boolv(doc, "apt_upgrade")
	if m, ok := doc["ssh_keys"].(map[string]any); ok {
		cc.SSHKeys = map[string]string{}
		for _, k := range sortedKeys(m) {
			if s, ok := m[k].(string); ok {
				cc.SSHKeys[k] = s
			} else {
				d.warnf("ssh_keys.%s: %s is not a string; ignored", k, typeName(m[k]))
			}
		}
	} else if v := doc["ssh_keys"]; v != nil {
		d.warnf("ssh_keys: %s is not a mapping; ignored", typeName(v))
	}
	cc.SSHDeleteKeys = d.boolp(doc, "ssh_deletekeys")
	cc.SSHGenKeyTypes = d.strList(doc, "ssh_genkeytypes")
	return cc, d.warns
}

// scalar renders a scalar as cloud-init's str() would; others are refused.
func (d *ccDecoder) scalar(key string, v any) string {
	switch v.(type) {
	case string, int64, float64, bool:
		return PyStr(v)
	case nil:
		return ""
	}
	d.warnf("%s: %s is not a scalar; ignored", key, typeName(v))
	return ""
}

func (d *ccDecoder) str(doc map[string]any, key string) string {
	v, ok := doc[key]
	if !ok || v == nil {
		return ""
	}
	return d.scalar(key, v)
}

func (d *ccDecoder) boolp(doc map[string]any, key string) *bool {
	v, ok := doc[key]
	if !ok || v == nil {
		return nil
	}
	b, ok := asBool(v)
	if !ok {
		d.warnf("%s: %s is not a boolean; ignored", key, typeName(v))
		return nil
	}
	return &b
}

func (d *ccDecoder) boolv(doc map[string]any, key string) bool {
	b := d.boolp(doc, key)
	return b != nil && *b
}

// asBool accepts booleans and the strings cloud-init's util.is_true /
// translate_bool accept.
func asBool(v any) (bool, bool) {
	switch v := v.(type) {
	case bool:
		return v, true
	case string:
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "true", "1", "on", "yes":
			return true, true
		case "false", "0", "off", "no":
			return false, true
		}
	case int64:
		return v != 0, v == 0 || v == 1
	}
	return false, false
}

// strList accepts a list of scalars or a single string.
func (d *ccDecoder) strList(doc map[string]any, key string) []string {
	return d.strListValue(key, doc[key])
}

func (d *ccDecoder) strListValue(key string, v any) []string {
	switch v := v.(type) {
	case nil:
		return nil
	case string:
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for i, e := range v {
			switch e.(type) {
			case string, int64, float64, bool:
				out = append(out, PyStr(e))
			default:
				d.warnf("%s[%d]: %s is not a string; ignored", key, i, typeName(e))
			}
		}
		return out
	}
	d.warnf("%s: %s is not a list; ignored", key, typeName(v))
	return nil
}

// commaList is cloud-init's treatment of groups and sudo-like fields: a
// comma-separated string or a list.
func (d *ccDecoder) commaList(key string, v any) []string {
	if s, ok := v.(string); ok {
		var out []string
		for _, x := range strings.Split(s, ",") {
			if x = strings.TrimSpace(x); x != "" {
				out = append(out, x)
			}
		}
		return out
	}
	if m, ok := v.(map[string]any); ok {
		// groups may be {group: [members]} in cloud-init; the names matter here.
		return sortedKeys(m)
	}
	return d.strListValue(key, v)
}

func (d *ccDecoder) users(v any) []User {
	var entries []any
	switch v := v.(type) {
	case nil:
		return nil
	case string:
		for _, x := range strings.Split(v, ",") {
			if x = strings.TrimSpace(x); x != "" {
				entries = append(entries, x)
			}
		}
	case []any:
		entries = v
	case map[string]any:
		for _, k := range sortedKeys(v) {
			m, _ := v[k].(map[string]any)
			e := map[string]any{"name": k}
			for kk, vv := range m {
				e[kk] = vv
			}
			entries = append(entries, e)
		}
	default:
		d.warnf("users: %s is not a list; ignored", typeName(v))
		return nil
	}
	var out []User
	for i, e := range entries {
		key := fmt.Sprintf("users[%d]", i)
		switch e := e.(type) {
		case string:
			if e == "default" {
				out = append(out, User{Name: "default", Default: true})
			} else {
				out = append(out, User{Name: e})
			}
		case map[string]any:
			u := User{Name: d.str(e, "name")}
			if u.Name == "" {
				d.warnf("%s: no name; ignored", key)
				continue
			}
			u.Gecos = d.str(e, "gecos")
			u.HomeDir = d.str(e, "homedir")
			u.PrimaryGroup = d.str(e, "primary_group")
			u.Groups = d.commaList(key+".groups", e["groups"])
			u.Shell = d.str(e, "shell")
			switch s := e["sudo"].(type) {
			case nil:
			case bool:
				if s {
					d.warnf("%s.sudo: true is not a sudoers rule; ignored", key)
				}
			default:
				u.Sudo = d.strListValue(key+".sudo", s)
			}
			u.LockPasswd = d.boolp(e, "lock_passwd")
			u.Passwd = d.str(e, "passwd")
			u.HashedPasswd = d.str(e, "hashed_passwd")
			u.PlainTextPasswd = d.str(e, "plain_text_passwd")
			u.SSHAuthorizedKeys = d.strListValue(key+".ssh_authorized_keys", e["ssh_authorized_keys"])
			u.SSHImportID = d.strListValue(key+".ssh_import_id", e["ssh_import_id"])
			u.System = d.boolv(e, "system")
			u.NoCreateHome = d.boolv(e, "no_create_home")
			u.NoUserGroup = d.boolv(e, "no_user_group")
			switch id := e["uid"].(type) {
			case nil:
			case int64:
				u.UID = &id
			case string:
				if n, err := strconv.ParseInt(strings.TrimSpace(id), 10, 64); err == nil {
					u.UID = &n
				} else {
					d.warnf("%s.uid: the string given is not a number; ignored", key)
				}
			default:
				d.warnf("%s.uid: %s is not a number; ignored", key, typeName(id))
			}
			u.Expiredate = d.str(e, "expiredate")
			u.Inactive = d.str(e, "inactive")
			u.SELinuxUser = d.str(e, "selinux_user")
			out = append(out, u)
		default:
			d.warnf("%s: %s is not a name or mapping; ignored", key, typeName(e))
		}
	}
	return out
}

func (d *ccDecoder) chpasswd(v any) *Chpasswd {
	m, ok := v.(map[string]any)
	if !ok {
		if v != nil {
			d.warnf("chpasswd: %s is not a mapping; ignored", typeName(v))
		}
		return nil
	}
	c := &Chpasswd{Expire: d.boolp(m, "expire")}
	if us, ok := m["users"].([]any); ok {
		for i, u := range us {
			um, ok := u.(map[string]any)
			if !ok {
				d.warnf("chpasswd.users[%d]: not a mapping; ignored", i)
				continue
			}
			cu := ChpasswdUser{Name: d.str(um, "name"), Password: d.str(um, "password"), Type: d.str(um, "type")}
			if cu.Type == "" {
				cu.Type = "hash"
			}
			if strings.EqualFold(cu.Password, "random") || strings.EqualFold(cu.Type, "random") {
				cu.Type, cu.Password = "RANDOM", ""
			}
			c.Users = append(c.Users, cu)
		}
	}
	var lines []string
	switch l := m["list"].(type) {
	case string:
		lines = PySplitLines(l)
	case []any:
		lines = d.strListValue("chpasswd.list", l)
	}
	for _, line := range lines {
		name, pw, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		cu := ChpasswdUser{Name: name, Password: pw, Type: "text"}
		if strings.HasPrefix(pw, "$") {
			cu.Type = "hash"
		}
		if strings.EqualFold(pw, "R") || strings.EqualFold(pw, "RANDOM") {
			cu.Type, cu.Password = "RANDOM", ""
		}
		c.List = append(c.List, cu)
	}
	return c
}

func (d *ccDecoder) writeFiles(v any) []WriteFile {
	list, ok := v.([]any)
	if !ok {
		if v != nil {
			d.warnf("write_files: %s is not a list; ignored", typeName(v))
		}
		return nil
	}
	var out []WriteFile
	for i, e := range list {
		key := fmt.Sprintf("write_files[%d]", i)
		m, ok := e.(map[string]any)
		if !ok {
			d.warnf("%s: %s is not a mapping; ignored", key, typeName(e))
			continue
		}
		w := WriteFile{Path: d.str(m, "path"), Owner: DefaultOwner, Permissions: DefaultPermissions}
		if w.Path == "" {
			d.warnf("%s: no path; ignored", key)
			continue
		}
		w.Content = d.str(m, "content")
		_, w.HasContent = m["content"]
		switch src := m["source"].(type) {
		case nil:
		case map[string]any:
			if uri := d.str(src, "uri"); uri != "" {
				w.Source = &WriteFileSource{URI: uri}
				if h, ok := src["headers"].(map[string]any); ok {
					w.Source.Headers = map[string]string{}
					for k, v := range h {
						w.Source.Headers[k] = fmt.Sprint(v)
					}
				}
			}
		default:
			d.warnf("%s.source: %s is not a mapping; ignored", key, typeName(src))
		}
		w.Encoding = strings.ToLower(strings.TrimSpace(d.str(m, "encoding")))
		if o := d.str(m, "owner"); o != "" {
			w.Owner = o
		}
		if p, ok := m["permissions"]; ok && p != nil {
			mode, err := decodePerms(p)
			if err != nil {
				d.warnf("%s.permissions: %v; using %#o", key, err, DefaultPermissions)
			} else {
				w.Permissions = mode
			}
		}
		w.Append = d.boolv(m, "append")
		w.Defer = d.boolv(m, "defer")
		if _, err := canonicalEncoding(w.Encoding); err != nil {
			d.warnf("%s.encoding: %v", key, err)
		}
		out = append(out, w)
	}
	return out
}

// decodePerms is cloud-init's decode_perms: an integer as is (YAML 1.1
// reads 0644 as octal), a string as octal.
func decodePerms(v any) (os.FileMode, error) {
	var n int64
	switch v := v.(type) {
	case int64:
		n = v
	case float64:
		n = int64(v)
	case string:
		x, err := strconv.ParseInt(strings.TrimPrefix(strings.TrimSpace(v), "0o"), 8, 64)
		if err != nil {
			return 0, fmt.Errorf("the string given is not an octal mode")
		}
		n = x
	default:
		return 0, fmt.Errorf("%s is not a mode", typeName(v))
	}
	if n < 0 || n > 0o7777 {
		return 0, fmt.Errorf("mode %#o is out of range", n)
	}
	mode := os.FileMode(n & 0o777)
	if n&0o4000 != 0 {
		mode |= os.ModeSetuid
	}
	if n&0o2000 != 0 {
		mode |= os.ModeSetgid
	}
	if n&0o1000 != 0 {
		mode |= os.ModeSticky
	}
	return mode, nil
}

func (d *ccDecoder) commands(key string, v any) []Command {
	list, ok := v.([]any)
	if !ok {
		if v != nil {
			d.warnf("%s: %s is not a list; ignored", key, typeName(v))
		}
		return nil
	}
	var out []Command
	for i, e := range list {
		switch e := e.(type) {
		case string:
			out = append(out, Command{Shell: e})
		case []any:
			argv := make([]string, 0, len(e))
			for _, a := range e {
				argv = append(argv, PyStr(a))
			}
			out = append(out, Command{Argv: argv})
		case int64, float64, bool:
			out = append(out, Command{Shell: PyStr(e)})
		case nil:
		default:
			d.warnf("%s[%d]: %s is not a command; ignored", key, i, typeName(e))
		}
	}
	return out
}

func (d *ccDecoder) packages(v any) []Package {
	list, ok := v.([]any)
	if !ok {
		if v != nil {
			d.warnf("packages: %s is not a list; ignored", typeName(v))
		}
		return nil
	}
	var out []Package
	for i, e := range list {
		switch e := e.(type) {
		case string:
			out = append(out, Package{Name: e})
		case []any:
			if len(e) == 0 || len(e) > 2 {
				d.warnf("packages[%d]: expected [name] or [name, version]; ignored", i)
				continue
			}
			p := Package{Name: PyStr(e[0])}
			if len(e) == 2 {
				p.Version = PyStr(e[1])
			}
			out = append(out, p)
		default:
			d.warnf("packages[%d]: %s is not a package name; ignored", i, typeName(e))
		}
	}
	return out
}
