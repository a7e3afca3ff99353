package builtin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/flint-dev/flint/cloudconfig"
	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/internal/accounts"
	"github.com/flint-dev/flint/internal/state"
)

// groupsHandler is cloud-config's top-level `groups`, once per instance,
// before the users as in cloud-init's cc_users_groups: each group is
// made as the image's groupadd makes it (accounts.Tools.AddGroups) unless
// it exists, then its members that are users already are added with
// usermod -a -G. A member that is not a
// user is skipped with a note (cloud-init warns and skips it too: users
// made later by `users` are not added). A name groupadd refuses fails the
// handler with one line naming it; the other groups are still made.
var groupsHandler = handlers.Builtin{Name: "groups", Frequency: state.PerInstance, Run: runGroups}

// groupStep is what one group needs: creating, and the members to add.
type groupStep struct {
	name   string
	create bool
	add    []string
}

// planGroups decides the steps for the normalised groups against the
// root's accounts, with a note for each member skipped and an error line
// for each name no tool would accept.
func planGroups(groups []cloudconfig.GroupPlan, db *accounts.DB) (steps []groupStep, notes, refused []string) {
	for _, g := range groups {
		if !accounts.ValidName(g.Name) {
			refused = append(refused, fmt.Sprintf("group %q is not a valid group name; not made", g.Name))
			continue
		}
		s := groupStep{name: g.Name, create: !db.HasGroup(g.Name)}
		for _, m := range g.Members {
			switch _, err := db.User(m); {
			case errors.Is(err, accounts.ErrNoUser):
				notes = append(notes, fmt.Sprintf("group %s: member %q is not a user; skipped", g.Name, m))
			case err != nil:
				refused = append(refused, err.Error())
			case !slices.Contains(db.Members(g.Name), m):
				s.add = append(s.add, m)
			}
		}
		if s.create || len(s.add) > 0 {
			steps = append(steps, s)
		}
	}
	return steps, notes, refused
}

func (s groupStep) String() string {
	var parts []string
	if s.create {
		parts = append(parts, "create group "+s.name)
	}
	if len(s.add) > 0 {
		parts = append(parts, fmt.Sprintf("add %s to group %s", strings.Join(s.add, ", "), s.name))
	}
	return strings.Join(parts, ", ")
}

func runGroups(ctx context.Context, b *handlers.Boot) error {
	ud, err := b.UserData(ctx)
	if err != nil {
		return err
	}
	groups, err := cloudconfig.Groups(ud.Config["groups"])
	if err != nil || len(groups) == 0 {
		return err
	}
	db, err := accounts.Read(b.Root)
	if err != nil {
		return err
	}
	steps, notes, refused := planGroups(groups, db)
	for _, n := range notes {
		b.Note("%s", n)
	}
	would := ""
	if b.DryRun || !b.Live {
		would = "would "
	}
	for _, s := range steps {
		b.Note("%s%s", would, s)
	}
	if !b.DryRun && len(steps) > 0 {
		if !b.Live {
			return fmt.Errorf("%d groups: %w", len(steps), handlers.ErrNotLive)
		}
		t := tools(b)
		for _, s := range steps {
			if s.create {
				made, err := t.AddGroups(ctx, []string{s.name})
				logGroups(b, made)
				if err != nil {
					refused = append(refused, err.Error())
					continue
				}
			}
			for _, m := range s.add {
				if err := t.AppendGroups(ctx, m, []string{s.name}); err != nil {
					refused = append(refused, err.Error())
				}
			}
		}
	}
	if len(refused) > 0 {
		return errors.New(strings.Join(refused, "; "))
	}
	return nil
}
