package cloudconfig

import (
	"strings"

	"github.com/flint-dev/flint/userdata"
)

// SSHImportUser is one user cc_ssh_import_id goes through, as cloud-init's
// normalize_users_groups leaves it.
type SSHImportUser struct {
	Name string
	// Default marks the distribution's default user the way cloud-init
	// does: only when users names "default" (or there is no users key).
	Default bool
	// Entry is the user's users entry as written (nil: none).
	Entry map[string]any
}

// SSHImport is one ssh-import-id run: the ids to import for a user.
type SSHImport struct {
	User string
	IDs  []string
}

// SSHImportIDs plans cc_ssh_import_id (once per instance): the
// ssh-import-id runs, one per user with ids, in cloud-init's order (the
// users in order, the default user last, where normalize_users_groups
// puts it). The default user gets the top-level ssh_import_id (a list as
// it is, null none, anything else str()-ed as one id), every other user
// its own entry's (a list, or a string split on commas); ids are made
// unique, keeping the first, and str()-ed.
//
// Problems are one line each for what cloud-init drops without a word
// (a user's ssh_import_id that is a number, a boolean or null) or would
// pass on as Python's repr (a list or mapping as an id, a mapping of
// ids), and for an id starting with "-", which ssh-import-id would read
// as an option: that user's ids are not imported.
func SSHImportIDs(topLevel any, users []SSHImportUser) (runs []SSHImport, problems []string) {
	var def *SSHImport
	for _, u := range users {
		var ids []any
		key := "users." + u.Name + ".ssh_import_id"
		if u.Default {
			key = "ssh_import_id"
			switch v := topLevel.(type) {
			case nil:
			case []any:
				ids = v
			case map[string]any:
				problems = append(problems, key+": is a mapping, not a list of ids; nothing imported for "+u.Name)
				continue
			default:
				ids = []any{userdata.PyStr(v)}
			}
		} else {
			v, ok := u.Entry["ssh_import_id"]
			if !ok {
				continue
			}
			switch v := v.(type) {
			case []any:
				ids = v
			case string:
				for _, id := range strings.Split(strings.TrimFunc(v, isPyUnicodeSpace), ",") {
					if id != "" {
						ids = append(ids, id)
					}
				}
			default:
				problems = append(problems, key+": is "+typeName(v)+", not a list or a comma-separated string; nothing imported for "+u.Name)
				continue
			}
		}
		if why := sshImportProblem(ids); why != "" {
			problems = append(problems, key+": "+why+"; nothing imported for "+u.Name)
			continue
		}
		if l := uniqStrings(ids); len(l) > 0 {
			if u.Default {
				def = &SSHImport{User: u.Name, IDs: l}
				continue
			}
			runs = append(runs, SSHImport{User: u.Name, IDs: l})
		}
	}
	if def != nil {
		runs = append(runs, *def)
	}
	return runs, problems
}

// sshImportProblem says why ids cannot be passed to ssh-import-id, or "".
func sshImportProblem(ids []any) string {
	for _, id := range ids {
		switch id := id.(type) {
		case []any, map[string]any:
			return "an id is " + typeName(id) + ", not a name"
		case string:
			if strings.HasPrefix(id, "-") {
				return "the id " + strings.ReplaceAll(id, "\n", `\n`) + " starts with -, which ssh-import-id reads as an option"
			}
		}
	}
	return ""
}
