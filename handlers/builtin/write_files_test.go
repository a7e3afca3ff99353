package builtin

import (
	"strings"
	"testing"
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
