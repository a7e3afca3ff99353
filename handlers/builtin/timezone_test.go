package builtin

import (
	"testing"
)

func TestValidTimezoneNameRefusesPathsOutOfZoneinfo(t *testing.T) {
	for tz, want := range map[string]bool{
		"Europe/Paris": true, "UTC": true, "America/Argentina/Buenos_Aires": true, "Etc/GMT+5": true,
		"": false, "/etc/passwd": false, "../../etc/passwd": false, "Europe/../UTC": false,
		"Europe/": false, "a b": false, "Europe//Paris": false, "x;rm": false,
	} {
		if got := validTimezoneName(tz); got != want {
			t.Errorf("validTimezoneName(%q) = %v, want %v", tz, got, want)
		}
	}
}
