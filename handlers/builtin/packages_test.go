package builtin

import (
	"reflect"
	"strings"
	"testing"

	"github.com/flint-dev/flint/userdata"
)

func TestPackageCommandsUpdateBeforeInstallingAndPinVersions(t *testing.T) {
	apt := packageManager{Name: "apt-get", Path: "/usr/bin/apt-get"}
	dnf := packageManager{Name: "dnf", Path: "/usr/bin/dnf"}
	pkgs := []userdata.Package{{Name: "htop"}, {Name: "curl", Version: "7.88"}}
	steps := func(cs []packageCommand) string {
		var s []string
		for _, c := range cs {
			s = append(s, c.Step+": "+strings.Join(c.Argv[1:], " "))
		}
		return strings.Join(s, " | ")
	}
	for _, tc := range []struct {
		name            string
		pm              packageManager
		update, upgrade bool
		pkgs            []userdata.Package
		want            string
	}{
		{"nothing asked runs nothing", apt, false, false, nil, ""},
		{"apt update only", apt, true, false, nil, "update: --quiet update"},
		{"apt packages imply an update", apt, false, false, pkgs,
			"update: --quiet update | install: --option=Dpkg::Options::=--force-confold --option=Dpkg::options::=--force-unsafe-io --assume-yes --quiet install htop curl=7.88"},
		{"apt upgrade is a dist-upgrade", apt, false, true, nil,
			"upgrade: --option=Dpkg::Options::=--force-confold --option=Dpkg::options::=--force-unsafe-io --assume-yes --quiet dist-upgrade"},
		{"dnf pins versions with a dash", dnf, true, true, pkgs,
			"update: -y --quiet makecache | upgrade: -y --quiet upgrade | install: -y --quiet install htop curl-7.88"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmds, env := packageCommands(tc.pm, tc.update, tc.upgrade, tc.pkgs)
			if got := steps(cmds); got != tc.want {
				t.Errorf("commands:\n got %s\nwant %s", got, tc.want)
			}
			for _, c := range cmds {
				if c.Argv[0] != tc.pm.Path {
					t.Errorf("argv[0] = %s", c.Argv[0])
				}
			}
			if tc.pm.Name == "apt-get" && len(cmds) > 0 && !reflect.DeepEqual(env, []string{"DEBIAN_FRONTEND=noninteractive", "APT_LISTCHANGES_FRONTEND=none"}) {
				t.Errorf("apt env = %v", env)
			}
		})
	}
}
