package accounts

import (
	"context"
	"fmt"

	"github.com/flint-dev/flint/internal/rootfs"
)

// NewGroup is a group addGroups created.
type NewGroup struct {
	Name string
	GID  int
}

// addGroups adds groups to the root's etc/group and etc/gshadow as
// groupadd (shadow 4.x, no options) does, without starting it: the same
// locks, the same GID (above the highest in GID_MIN..GID_MAX of
// login.defs, else the lowest free one there), the same lines
// ("name:x:GID:" and "name:!::") added at the end, the same backups.
//
// Where groupadd would do more than that, addGroups returns errUseTool
// and changes nothing: besides directCheck's and beginTxn's cases, a name
// outside the portable set, an entry of the name already in gshadow, no
// etc/group (groupadd makes one).
func addGroups(ctx context.Context, root *rootfs.Root, names []string) ([]NewGroup, error) {
	for _, n := range names {
		if !portableName(n) {
			return nil, errUseTool{"groupadd", fmt.Sprintf("%q is outside the portable name set", n)}
		}
	}
	if err := directCheck(root, "groupadd", "group"); err != nil {
		return nil, err
	}
	t, err := beginTxn(ctx, root, "groupadd", []string{"group"}, []string{"gshadow"})
	if err != nil {
		return nil, err
	}
	defer t.close()
	used := entryIDs(t.text("group"), 4, 2)
	exists := entryNames(t.text("group"), 4)
	inShadow := entryNames(t.text("gshadow"), 4)
	defs := keyValues(root, "etc/login.defs", "")
	if k := badNums(defs, "GID_MIN", "GID_MAX"); k != "" {
		return nil, errUseTool{"groupadd", "login.defs' " + k + " is not a number"}
	}
	lo, hi := defNum(defs, "GID_MIN", 1000), defNum(defs, "GID_MAX", 60000)
	var made []NewGroup
	for _, n := range names {
		if exists[n] {
			return nil, fmt.Errorf("groupadd %s: group '%s' already exists", n, n)
		}
		if inShadow[n] {
			return nil, errUseTool{"groupadd", "etc/gshadow already has an entry for " + n}
		}
		gid, ok := newID(used, lo, hi)
		if !ok {
			return nil, fmt.Errorf("groupadd %s: can't get unique GID (no more available GIDs in %d-%d)", n, lo, hi)
		}
		used[gid], exists[n] = true, true
		made = append(made, NewGroup{Name: n, GID: gid})
		t.appendLines("group", fmt.Sprintf("%s:x:%d:", n, gid))
		t.appendLines("gshadow", n+":!::")
	}
	if err := t.commit(); err != nil {
		return nil, err
	}
	return made, nil
}
