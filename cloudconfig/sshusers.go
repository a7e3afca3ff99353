package cloudconfig

import (
	"strings"

	"github.com/flint-dev/flint/userdata"
)

// sshRedirectExit is the status the forced command exits with
// (cloud-init's _DISABLE_USER_SSH_EXIT).
const sshRedirectExit = "142"

// SSHRedirectOptions are the authorized_keys options cloud-init writes for
// ssh_redirect_user (ssh_util.DISABLE_USER_OPTS): a login as disabledUser
// prints a message naming defaultUser and exits 142.
func SSHRedirectOptions(defaultUser, disabledUser string) string {
	return `no-port-forwarding,no-agent-forwarding,no-X11-forwarding,command="echo 'Please login as the user \"` +
		defaultUser + `\" rather than the user \"` + disabledUser + `\".';echo;sleep 10;exit ` + sshRedirectExit + `"`
}

// SSHRedirect plans users[].ssh_redirect_user for user name (cc_users_groups,
// once per instance): true or "default" redirect to the default user, so
// each of the instance's public keys (v1.public_ssh_keys) goes into
// name's authorized_keys behind SSHRedirectOptions. It returns the lines
// to add; none when false/absent. It is an error alongside
// ssh_authorized_keys or ssh_import_id, or with another value (cloud-init
// then does not create the user). Without a default user, or without
// instance keys, cloud-init only warns: Note says so and no lines come.
func SSHRedirect(name string, user map[string]any, defaultUser string, cloudKeys []string) (lines []string, note string, err error) {
	v, ok := user["ssh_redirect_user"]
	if !ok || !userdata.Truthy(v) {
		return nil, "", nil
	}
	key := "users." + name + ".ssh_redirect_user"
	if _, a := user["ssh_authorized_keys"]; a {
		return nil, "", configErrorf(key, "cannot be given with ssh_import_id or ssh_authorized_keys; user not created")
	}
	if _, a := user["ssh_import_id"]; a {
		return nil, "", configErrorf(key, "cannot be given with ssh_import_id or ssh_authorized_keys; user not created")
	}
	if b, isBool := v.(bool); !(isBool && b) && v != "default" {
		return nil, "", configErrorf(key, "%q is not true, \"default\" or false; user not created", userdata.PyStr(v))
	}
	if defaultUser == "" {
		return nil, "ignoring ssh_redirect_user for " + name + ": no default user", nil
	}
	if len(cloudKeys) == 0 {
		return nil, "unable to disable SSH logins for " + name + " given ssh_redirect_user: no instance public keys", nil
	}
	opts := SSHRedirectOptions(defaultUser, name)
	seen := map[string]bool{}
	for _, k := range cloudKeys {
		k = strings.TrimSpace(k)
		if k == "" || seen[k] {
			continue
		}
		seen[k] = true
		lines = append(lines, opts+" "+stripKeyOptions(k))
	}
	return lines, "", nil
}

// stripKeyOptions drops options a key line already carries: cloud-init's
// parser replaces them with the given ones.
func stripKeyOptions(k string) string {
	f := strings.Fields(k)
	for i, tok := range f {
		if strings.HasPrefix(tok, "ssh-") || strings.HasPrefix(tok, "ecdsa-") || strings.HasPrefix(tok, "sk-") {
			return strings.Join(f[i:], " ")
		}
	}
	return k
}

func uniqStrings(l []any) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range l {
		s := userdata.PyStr(x)
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
