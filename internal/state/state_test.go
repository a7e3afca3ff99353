package state

import (
	"strings"
	"testing"
)

func TestValidName(t *testing.T) {
	for _, ok := range []string{"i-0123456789abcdef0", "10-x", "a", "A.b_c-d", strings.Repeat("x", 128)} {
		if !ValidName(ok) {
			t.Errorf("ValidName(%q) = false", ok)
		}
	}
	for _, bad := range []string{"", ".hidden", "-x", "a/b", "..", "a..b", "a b", "ä", strings.Repeat("x", 129), "x\n"} {
		if ValidName(bad) {
			t.Errorf("ValidName(%q) = true", bad)
		}
	}
}
