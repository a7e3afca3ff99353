package network

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestGatherReadsEveryENIAndMarksTransientErrors(t *testing.T) {
	f := fixtureMetadata()
	f.fail[macsPath+mac2+"/local-ipv4s"] = errors.New("GET local-ipv4s: IMDS answered HTTP 503")
	in, err := Gather(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	if in.PrimaryMAC != mac0 || len(in.ENIs) != 3 {
		t.Fatalf("got primary %q and %d ENIs, want %s and 3", in.PrimaryMAC, len(in.ENIs), mac0)
	}
	if got := in.ENIs[1].Values["local-ipv4s"]; got != "10.0.2.10\n10.0.2.11\n10.0.2.12" {
		t.Errorf("eth1 local-ipv4s = %q", got)
	}
	if _, ok := in.ENIs[0].Values["ipv6s"]; ok {
		t.Error("a 404 key (eth0 ipv6s) was recorded as present")
	}
	if in.ENIs[0].Err != nil || in.ENIs[1].Err != nil {
		t.Errorf("healthy ENIs got errors: %v, %v", in.ENIs[0].Err, in.ENIs[1].Err)
	}
	if e := in.ENIs[2].Err; e == nil || !strings.Contains(e.Error(), "503") {
		t.Errorf("eth2 error = %v, want the 503", e)
	}
	// A transient error makes the ENI unknown, never "has no addresses".
	d := Plan(in, fixtureLinks, Config{})
	if len(d.Links) != 2 || len(d.Errors) != 1 || !d.Errors[0].Pending {
		t.Errorf("plan after a 503: %v", summary(d))
	}
}

func TestGatherFailsWithoutTheENIList(t *testing.T) {
	f := fixtureMetadata()
	f.fail[macsPath] = errors.New("connection reset")
	if _, err := Gather(context.Background(), f); err == nil || !strings.Contains(err.Error(), "list meta-data/network/interfaces/macs/") {
		t.Errorf("err = %v, want one naming the list", err)
	}
}
