package handlers_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/internal/rootfs"
	"github.com/flint-dev/flint/userdata"
)

func TestShellifyWritesStringsAsIsAndQuotesListWords(t *testing.T) {
	got := string(handlers.Shellify([]userdata.Command{
		{Shell: "echo $HOME > /tmp/x"},
		{Argv: []string{"sh", "-c", "echo it's $HOME"}},
		{Argv: []string{}},
	}))
	want := "#!/bin/sh\necho $HOME > /tmp/x\n'sh' '-c' 'echo it'\\''s $HOME'\n\n"
	if got != want {
		t.Errorf("Shellify = %q, want %q", got, want)
	}
}

func TestCleanFilenameKeepsOnlyCloudInitsSafeCharacters(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"part-001", "part-001"},
		{"hello.sh", "hello.sh"},
		{"../../etc/passwd", ".._.._etc_passwd"},
		{"/abs/path", "_abs_path"},
		{"sp ace;rm -rf", "spacerm-rf"},
		{"..", "_"},
		{".", "_"},
		{"", "_"},
		{"ünï(1).sh", "n(1).sh"},
	} {
		if got := handlers.CleanFilename(tc.in); got != tc.want {
			t.Errorf("CleanFilename(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestWriteFilePathStaysBelowTheRoot(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"/etc/motd", "etc/motd", ""},
		{"etc/motd", "etc/motd", ""},
		{"//etc//./motd", "etc/motd", ""},
		{"/etc/../../x", "", `".." element`},
		{"..", "", `".." element`},
		{"/etc/", "", "names a directory"},
		{"/", "", "names a directory"},
		{"  ", "", "empty path"},
		{"/etc/a\x00b", "", "NUL"},
	} {
		got, err := handlers.WriteFilePath(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("WriteFilePath(%q) = %q, %v; want an error with %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("WriteFilePath(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestResolveOwnerUsesTheRootsAccountFiles(t *testing.T) {
	passwd := []byte("root:x:0:0:root:/root:/bin/sh\napp:x:1234:1235::/home/app:/bin/sh\n#bad\nbroken\n")
	group := []byte("root:x:0:\napp:x:1235:\nwww:x:33:app\n")
	for _, tc := range []struct {
		owner string
		want  rootfs.Owner
		err   string
	}{
		{"root:root", rootfs.Owner{UID: 0, GID: 0}, ""},
		{"app:www", rootfs.Owner{UID: 1234, GID: 33}, ""},
		{"app", rootfs.Owner{UID: 1234, GID: -1}, ""},
		{":www", rootfs.Owner{UID: -1, GID: 33}, ""},
		{"1000:1000", rootfs.Owner{UID: 1000, GID: 1000}, ""},
		{"nobody:root", rootfs.NoOwner, `no user "nobody" in the root's etc/passwd`},
		{"app:nogroup", rootfs.NoOwner, `no group "nogroup" in the root's etc/group`},
	} {
		got, err := handlers.ResolveOwner(tc.owner, passwd, group)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ResolveOwner(%q) = %v, %v; want error %q", tc.owner, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ResolveOwner(%q) = %v, %v; want %v", tc.owner, got, err, tc.want)
		}
	}
	// root resolves even in a root without account files (a bare image tree).
	if got, err := handlers.ResolveOwner("root:root", nil, nil); err != nil || got != (rootfs.Owner{}) {
		t.Errorf("root:root without etc/passwd = %v, %v", got, err)
	}
}

func TestRenderFinalMessageSubstitutesLikeCloudInit(t *testing.T) {
	vars := map[string]string{"uptime": "12.34", "timestamp": "Wed, 25 Nov 2026 14:00:00 +0000", "version": "1.0", "datasource": "DS"}
	for _, tc := range []struct{ in, want string }{
		{"", "Cloud-init v. 1.0 finished at Wed, 25 Nov 2026 14:00:00 +0000. Datasource DS.  Up 12.34 seconds"},
		{"  \n ", "Cloud-init v. 1.0 finished at Wed, 25 Nov 2026 14:00:00 +0000. Datasource DS.  Up 12.34 seconds"},
		{"up $UPTIME s, v$VERSION", "up 12.34 s, v1.0"},
		{"up ${uptime}s at $timestamp.", "up 12.34s at Wed, 25 Nov 2026 14:00:00 +0000."},
		{"done in $UPTIME.", "done in 12.34."},
		{"$UNKNOWN and $Uptime stay", "$UNKNOWN and $Uptime stay"},
		{"## template: jinja\nv{{ version }} on {{DATASOURCE}} {{ nope }}", "v1.0 on DS {{ nope }}"},
		{"## template: basic\n$VERSION", "1.0"},
		{"flint: boot finished\n", "flint: boot finished"},
	} {
		if got := handlers.RenderFinalMessage(tc.in, vars); got != tc.want {
			t.Errorf("RenderFinalMessage(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestPackageCommandsUpdateBeforeInstallingAndPinVersions(t *testing.T) {
	apt := handlers.PackageManager{Name: "apt-get", Path: "/usr/bin/apt-get"}
	dnf := handlers.PackageManager{Name: "dnf", Path: "/usr/bin/dnf"}
	pkgs := []userdata.Package{{Name: "htop"}, {Name: "curl", Version: "7.88"}}
	steps := func(cs []handlers.PackageCommand) string {
		var s []string
		for _, c := range cs {
			s = append(s, c.Step+": "+strings.Join(c.Argv[1:], " "))
		}
		return strings.Join(s, " | ")
	}
	for _, tc := range []struct {
		name            string
		pm              handlers.PackageManager
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
			cmds, env := handlers.PackageCommands(tc.pm, tc.update, tc.upgrade, tc.pkgs)
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

func TestBoothookScriptDropsTheMarkerLineAndCRLF(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"#cloud-boothook\n#!/bin/sh\necho hi\n", "#!/bin/sh\necho hi\n"},
		{"#cloud-boothook\r\n#!/bin/sh\r\necho hi\r\n", "#!/bin/sh\necho hi\n"},
		{"  \n#cloud-boothook\n\n  echo hi\n", "echo hi\n"},
		{"#!/bin/sh\necho no marker\n", "#!/bin/sh\necho no marker\n"},
	} {
		if got := string(handlers.BoothookScript([]byte(tc.in))); got != tc.want {
			t.Errorf("BoothookScript(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestValidTimezoneNameRefusesPathsOutOfZoneinfo(t *testing.T) {
	for tz, want := range map[string]bool{
		"Europe/Paris": true, "UTC": true, "America/Argentina/Buenos_Aires": true, "Etc/GMT+5": true,
		"": false, "/etc/passwd": false, "../../etc/passwd": false, "Europe/../UTC": false,
		"Europe/": false, "a b": false, "Europe//Paris": false, "x;rm": false,
	} {
		if got := handlers.ValidTimezoneName(tz); got != want {
			t.Errorf("ValidTimezoneName(%q) = %v, want %v", tz, got, want)
		}
	}
}
