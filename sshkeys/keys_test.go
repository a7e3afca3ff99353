package sshkeys_test

import (
	"strings"
	"testing"

	"github.com/flint-dev/flint/sshkeys"
)

const (
	alice  = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO+kE/+KKx4mb6XO165mscrkRWw77I8p+O3ETxZJtQag alice@laptop"
	bob    = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBC9ogjwA1jEmTBUpbEG1s8l5RE2eD9sSIfZTFIzGV/SGgySrzuMXkbqB9gCMUakpSDscePraNnPKr9CUBwJygW8= bob"
	aliceB = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO+kE/+KKx4mb6XO165mscrkRWw77I8p+O3ETxZJtQag the same key, another comment"
)

func TestBadLinesAreReportedAndGoodOnesKept(t *testing.T) {
	long := "ssh-ed25519 " + strings.Repeat("A", 20<<10)
	tests := []struct {
		name   string
		line   string
		reason string
	}{
		{"truncated base64", alice[:60], "truncated or corrupt"},
		{"an unknown key type", "ssh-foo AAAAB3NzaC1yc2EAAAADAQABAAABAQC2 x", "unknown key type ssh-foo"},
		{"a 20 KB line", long, "longer than"},
		{"a NUL byte", "ssh-ed25519 AAAAC3Nza\x00C1lZDI1NTE5 x", "NUL"},
		{"invalid UTF-8", "ssh-ed25519 \xff\xfe", "UTF-8"},
		{"bad options", `command="unterminated ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO+kE/+KKx4mb6XO165mscrkRWw77I8p+O3ETxZJtQag`, ""},
		{"a pasted private key", "-----BEGIN OPENSSH PRIVATE KEY-----", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is reported", func(t *testing.T) {
			keys, probs := sshkeys.Parse("test", alice+"\n"+tt.line+"\n"+bob+"\n")
			if len(keys) != 2 || keys[0].Line != alice || keys[1].Line != bob {
				t.Fatalf("valid keys not kept: %+v", keys)
			}
			if len(probs) != 1 || probs[0].Line != 2 || !strings.Contains(probs[0].Reason, tt.reason) {
				t.Fatalf("problems = %v, want one on line 2 about %q", probs, tt.reason)
			}
			if len(probs[0].String()) > 200 || strings.ContainsRune(probs[0].String(), 0) {
				t.Errorf("problem line not short and printable: %q", probs[0].String())
			}
		})
	}
}

func TestOptionsCommentsAndCertificatesAreKept(t *testing.T) {
	cert := "ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29tAAAAIKGTgXB0OqBQo1HrJvnufBLKVYjAzjf9fpwYr3XaDcGbAAAAIFW3wdOp4mFMwKJbLfPCMgdU3fmOOjdVVh76m8XM1L0MAAAAAAAAAAAAAAABAAAABGhvc3QAAAAIAAAABGhvc3QAAAAAAAAAAP//////////AAAAAAAAAAAAAAAAAAAAMwAAAAtzc2gtZWQyNTUxOQAAACBH3HrjXkPbEV61AK+kyCGTUqpnHE7LvW+DQSeHr+74YwAAAFMAAAALc3NoLWVkMjU1MTkAAABAxQcQtJ1/WAOIAI9RbaGaxiwc8LNMYOW8OPhf33b+r8ElcDSaiKGGHGqM/P3MPKyz7gGRsyJF2WfzvlUbm2GTAA== host"
	text := `# a comment
from="10.0.0.0/8",no-pty ` + alice + `

` + cert + "\n"
	keys, probs := sshkeys.Parse("test", text)
	if len(probs) != 0 {
		t.Fatalf("problems: %v", probs)
	}
	if len(keys) != 2 {
		t.Fatalf("got %d keys", len(keys))
	}
	if got := keys[0].Options; len(got) != 2 || got[0] != `from="10.0.0.0/8"` || keys[0].Comment != "alice@laptop" {
		t.Errorf("options %q comment %q", got, keys[0].Comment)
	}
	if !strings.HasPrefix(keys[0].Line, `from="10.0.0.0/8",no-pty ssh-ed25519`) {
		t.Errorf("line not kept as given: %q", keys[0].Line)
	}
	if !keys[1].Cert || keys[1].Line != cert {
		t.Errorf("certificate not kept: %+v", keys[1])
	}
}

func TestMergeKeepsEveryExistingLineAndAddsOnlyNewKeys(t *testing.T) {
	// aliceB is alice's key under another comment: not a new key.
	add, _ := sshkeys.Parse("t", bob+"\n"+aliceB)
	tests := []struct {
		name     string
		existing string
		want     string
		added    int
	}{
		{"into nothing", "", bob + "\n" + aliceB + "\n", 2},
		{"beside a hand-added key and a comment", "# mine\n" + alice + "\n", "# mine\n" + alice + "\n" + bob + "\n", 1},
		{"with both already there (other comment, with options)", "no-pty " + bob + "\n" + alice + "\n", "no-pty " + bob + "\n" + alice + "\n", 0},
		{"after a last line without a newline", alice, alice + "\n" + bob + "\n", 1},
		{"keeping a junk line a person wrote", "not a key\n", "not a key\n" + bob + "\n" + aliceB + "\n", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, n := sshkeys.Merge([]byte(tt.existing), add)
			if string(got) != tt.want || n != tt.added {
				t.Errorf("Merge = %q (%d added), want %q (%d)", got, n, tt.want, tt.added)
			}
			again, n2 := sshkeys.Merge(got, add)
			if string(again) != string(got) || n2 != 0 {
				t.Errorf("merging twice changed the file: %q", again)
			}
		})
	}
}

func TestWithOptionsForcesACommandOnTheSameKey(t *testing.T) {
	keys, _ := sshkeys.Parse("t", alice)
	k, err := sshkeys.WithOptions(keys[0], `no-pty,command="echo hi"`)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{`restrict, command="echo hi"`, `command="echo hi" restrict`} {
		if _, err := sshkeys.WithOptions(keys[0], bad); err == nil {
			t.Errorf("options %q accepted", bad)
		}
	}
	if !strings.HasPrefix(k.Line, `no-pty,command="echo hi" ssh-ed25519 `) || k.ID() != keys[0].ID() || k.Comment != "alice@laptop" {
		t.Fatalf("WithOptions = %q", k.Line)
	}
}
