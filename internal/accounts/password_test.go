package accounts

import (
	"strings"
	"testing"
)

func TestLockingAPasswordNeverLocksKeyLoginsOut(t *testing.T) {
	tests := []struct {
		name    string
		lock    bool
		current string
		set     bool
		want    string
	}{
		{"a new locked account gets * instead of useradd's !", true, "!", false, "*"},
		{"a hash is replaced when locking", true, "$6$x$y", false, "*"},
		{"an already locked account is left alone", true, "*", false, ""},
		{"an unlocked account without a password loses the ! too", false, "!", false, "*"},
		{"an unlocked account with a password keeps it", false, "$6$x$y", false, ""},
		{"a password being set is not overridden", false, "!", true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := PasswordField(tt.lock, tt.current, tt.set)
			if got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
			if strings.HasPrefix(got, "!") {
				t.Fatal("a ! field blocks key logins when sshd runs without PAM")
			}
		})
	}
}
