package builtin

import (
	"testing"
)

func TestBoothookScriptDropsTheMarkerLineAndCRLF(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"#cloud-boothook\n#!/bin/sh\necho hi\n", "#!/bin/sh\necho hi\n"},
		{"#cloud-boothook\r\n#!/bin/sh\r\necho hi\r\n", "#!/bin/sh\necho hi\n"},
		{"  \n#cloud-boothook\n\n  echo hi\n", "echo hi\n"},
		{"#!/bin/sh\necho no marker\n", "#!/bin/sh\necho no marker\n"},
	} {
		if got := string(boothookScript([]byte(tc.in))); got != tc.want {
			t.Errorf("boothookScript(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
