package distro

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/flint-dev/flint/internal/rootfs"
)

func TestParseOSReleaseReadsQuotedAndBareValues(t *testing.T) {
	r := ParseOSRelease([]byte(`# comment
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
ID=debian
ID_LIKE='rhel  fedora'
not a line
`))
	if r.ID != "debian" || r.VersionID != "12" || !slices.Equal(r.IDLike, []string{"rhel", "fedora"}) {
		t.Errorf("got %+v", r)
	}
}

func TestDefaultUserFollowsTheDistributionsCloudImages(t *testing.T) {
	tests := []struct {
		name, osRelease    string
		want, gecos, shell string
		group              string
		ok                 bool
	}{
		{"Debian logs in as admin", "ID=debian\nVERSION_ID=\"12\"\n", "admin", "Debian", "/bin/bash", "sudo", true},
		{"Ubuntu logs in as ubuntu", "ID=ubuntu\nID_LIKE=debian\nVERSION_ID=\"24.04\"\n", "ubuntu", "Ubuntu", "/bin/bash", "sudo", true},
		{"Amazon Linux 2023 logs in as ec2-user", "ID=\"amzn\"\nID_LIKE=\"fedora\"\nVERSION_ID=\"2023\"\n", "ec2-user", "EC2 Default User", "/bin/bash", "wheel", true},
		{"Amazon Linux 2 logs in as ec2-user", "ID=\"amzn\"\nID_LIKE=\"centos rhel fedora\"\nVERSION_ID=\"2\"\n", "ec2-user", "EC2 Default User", "/bin/bash", "wheel", true},
		{"Fedora logs in as ec2-user", "ID=fedora\nVERSION_ID=41\n", "ec2-user", "fedora Cloud User", "/bin/bash", "wheel", true},
		{"RHEL logs in as ec2-user", "ID=\"rhel\"\nID_LIKE=\"fedora\"\nVERSION_ID=\"9.4\"\n", "ec2-user", "Cloud User", "/bin/bash", "adm", true},
		{"Rocky logs in as ec2-user", "ID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\n", "ec2-user", "rocky Cloud User", "/bin/bash", "adm", true},
		{"AlmaLinux logs in as ec2-user", "ID=\"almalinux\"\nID_LIKE=\"rhel centos fedora\"\n", "ec2-user", "almalinux Cloud User", "/bin/bash", "adm", true},
		{"CentOS Stream logs in as ec2-user", "ID=\"centos\"\nID_LIKE=\"rhel fedora\"\n", "ec2-user", "Cloud User", "/bin/bash", "adm", true},
		{"openSUSE Leap is SUSE", "ID=\"opensuse-leap\"\nID_LIKE=\"suse opensuse\"\n", "ec2-user", "suse Cloud User", "/bin/bash", "users", true},
		{"Alpine gets ash", "ID=alpine\n", "alpine", "alpine Cloud User", "/bin/ash", "wheel", true},
		{"a Debian derivative logs in as Debian's images do", "ID=kali\nID_LIKE=debian\n", "admin", "Debian", "/bin/bash", "sudo", true},
		{"an Ubuntu derivative takes its first known parent", "ID=linuxmint\nID_LIKE=\"ubuntu debian\"\n", "ubuntu", "Ubuntu", "/bin/bash", "sudo", true},
		{"an unknown distribution has no default user", "ID=nixos\n", "", "", "", "", false},
		{"an empty os-release has no default user", "", "", "", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, ok := DefaultUser(ParseOSRelease([]byte(tt.osRelease)))
			if ok != tt.ok || u.Name != tt.want {
				t.Fatalf("DefaultUser = %q, %v; want %q, %v", u.Name, ok, tt.want, tt.ok)
			}
			if !ok {
				return
			}
			if u.Gecos != tt.gecos || u.Shell != tt.shell || !slices.Contains(u.Groups, tt.group) {
				t.Errorf("user %+v: want gecos %q, shell %q, a group %q", u, tt.gecos, tt.shell, tt.group)
			}
			if !slices.Equal(u.Sudo, []string{NoPasswdSudo}) || !u.LockPasswd {
				t.Errorf("user %+v: want passwordless sudo and a locked password", u)
			}
		})
	}
}

func TestDefaultUserReturnsACopyOfTheGroups(t *testing.T) {
	u, _ := DefaultUser(OSRelease{ID: "debian"})
	u.Groups[0] = "changed"
	v, _ := DefaultUser(OSRelease{ID: "debian"})
	if v.Groups[0] == "changed" {
		t.Error("a caller's edit changed the table")
	}
}

// Read finds os-release where os-release(5) puts it, etc first; Like
// matches the ID and each ID_LIKE entry, nothing else.
func TestReadFindsOSReleaseAndLikeMatchesTheFamily(t *testing.T) {
	dir := t.TempDir()
	r, err := rootfs.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := Read(r); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("no os-release: %v", err)
	}
	os.MkdirAll(filepath.Join(dir, "usr/lib"), 0o755)
	os.WriteFile(filepath.Join(dir, "usr/lib/os-release"), []byte("ID=ubuntu\nID_LIKE=debian\n"), 0o644)
	rel, err := Read(r)
	if err != nil || rel.ID != "ubuntu" || !rel.Like("debian") || !rel.Like("ubuntu") || rel.Like("deb") || rel.Like("fedora") {
		t.Fatalf("usr/lib/os-release: %+v %v", rel, err)
	}
	os.MkdirAll(filepath.Join(dir, "etc"), 0o755)
	os.WriteFile(filepath.Join(dir, "etc/os-release"), []byte(`ID="rocky"`+"\nID_LIKE=\"rhel centos fedora\"\n"), 0o644)
	if rel, err := Read(r); err != nil || !rel.Like("fedora") || rel.Like("debian") {
		t.Fatalf("etc/os-release first: %+v %v", rel, err)
	}
}
