package ec2metadata

import (
	"errors"
	"testing"
)

var errTest = errors.New("connect: connection refused")

func TestShellValue(t *testing.T) {
	tests := []struct{ in, want string }{
		{"abc", "abc"},
		{"abc\n", "abc"},
		{"a\x00\nb\n\x00\n", "a\nb"},
		{"-n", ""},
		{"-nnE", ""},
		{"-", "-"},
		{"--", "--"},
		{"-n ", "-n "},
		{"-N", "-N"},
		{"\n-n\n", "\n-n"},
	}
	for _, tt := range tests {
		if got := shellValue([]byte(tt.in)); got != tt.want {
			t.Errorf("shellValue(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestIFSFieldsSplitsOnlyOnSpaceTabNewline(t *testing.T) {
	got := ifsFields(" a\tb\n\nc\rd\ve ")
	want := []string{"a", "b", "c\rd\ve"}
	if len(got) != len(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
}

func TestEchoEscapesMatchesBash(t *testing.T) {
	// Expected values were taken from bash 5.2's `echo -e "\t" "k:" "$v"`.
	tests := []struct{ in, want string }{
		{`\101`, "\t k: \\101\n"},
		{`\0101`, "\t k: A\n"},
		{`\01011`, "\t k: A1\n"},
		{`\x41\x4`, "\t k: A\x04\n"},
		{`\x`, "\t k: \\x\n"},
		{`\xg`, "\t k: \\xg\n"},
		{`\u00e9`, "\t k: \u00e9\n"},
		{`\u`, "\t k: \\u\n"},
		{`\q`, "\t k: \\q\n"},
		{`a\`, "\t k: a\\\n"},
		{`\e`, "\t k: \x1b\n"},
		{`ab\cde`, "\t k: ab"},
		{`\08`, "\t k: \x008\n"},
		{`\400`, "\t k: \\400\n"},
		{`\0400`, "\t k: \x00\n"},
		{`\9`, "\t k: \\9\n"},
		{`\\n`, "\t k: \\n\n"},
		{`\a\b\f\n\r\t\v`, "\t k: \a\b\f\n\r\t\v\n"},
	}
	for _, tt := range tests {
		if got := echoEscapes(`\t`, "k:", tt.in); got != tt.want {
			t.Errorf("echo -e %q = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestEchoWordsAndCut(t *testing.T) {
	tests := []struct {
		word, echo, f1, f2 string
	}{
		{"0=alice", "0=alice\n", "0", "alice"},
		{"0=a=b", "0=a=b\n", "0", "a"},
		{"noequals", "noequals\n", "noequals", "noequals"},
		{"=x", "=x\n", "", "x"},
		{"x=", "x=\n", "x", ""},
		{"-n", "", "", ""},
		{"-e", "\n", "", ""},
		{"-x=y", "-x=y\n", "-x", "y"},
	}
	for _, tt := range tests {
		if got := echoWords(tt.word); got != tt.echo {
			t.Errorf("echo %s = %q, want %q", tt.word, got, tt.echo)
		}
		if got := cutField(tt.word, 1); got != tt.f1 {
			t.Errorf("cut -f 1 of %q = %q, want %q", tt.word, got, tt.f1)
		}
		if got := cutField(tt.word, 2); got != tt.f2 {
			t.Errorf("cut -f 2 of %q = %q, want %q", tt.word, got, tt.f2)
		}
	}
}
