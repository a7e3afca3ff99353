package builtin

import (
	"testing"

	"github.com/flint-dev/flint/userdata"
)

func TestShellifyWritesStringsAsIsAndQuotesListWords(t *testing.T) {
	got := string(shellify([]userdata.Command{
		{Shell: "echo $HOME > /tmp/x"},
		{Argv: []string{"sh", "-c", "echo it's $HOME"}},
		{Argv: []string{}},
	}))
	want := "#!/bin/sh\necho $HOME > /tmp/x\n'sh' '-c' 'echo it'\\''s $HOME'\n\n"
	if got != want {
		t.Errorf("shellify = %q, want %q", got, want)
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
		if got := cleanFilename(tc.in); got != tc.want {
			t.Errorf("cleanFilename(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
