package builtin

import (
	"testing"
)

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
		if got := renderFinalMessage(tc.in, vars); got != tc.want {
			t.Errorf("renderFinalMessage(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
