package builtin

import (
	"strings"
	"testing"

	"github.com/flint-dev/flint/internal/rootfs"
)

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
		got, err := writeFilePath(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("writeFilePath(%q) = %q, %v; want an error with %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("writeFilePath(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
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
		got, err := resolveOwner(tc.owner, passwd, group)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("resolveOwner(%q) = %v, %v; want error %q", tc.owner, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("resolveOwner(%q) = %v, %v; want %v", tc.owner, got, err, tc.want)
		}
	}
	// root resolves even in a root without account files (a bare image tree).
	if got, err := resolveOwner("root:root", nil, nil); err != nil || got != (rootfs.Owner{}) {
		t.Errorf("root:root without etc/passwd = %v, %v", got, err)
	}
}
