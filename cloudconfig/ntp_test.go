package cloudconfig

import (
	"errors"
	"strings"
	"testing"
)

func TestNTPWritesWhatCloudInitWrites(t *testing.T) {
	type refCase struct {
		Name     string   `json:"name"`
		Service  string   `json:"service"`
		Template string   `json:"template"`
		Servers  []string `json:"servers"`
		Pools    []string `json:"pools"`
	}
	tests := []struct {
		name      string
		config    map[string]any
		installed string
		timeSync  bool
		want      refCase
	}{
		{name: "chrony installed, no servers: distro pools", config: map[string]any{}, installed: "chronyd",
			want: refCase{Service: "chrony", Template: "chrony.conf.debian"}},
		{name: "chrony with servers and pools", config: map[string]any{"servers": []any{"10.0.0.1", "ntp.example"}, "pools": []any{"pool.example"}}, installed: "chronyd",
			want: refCase{Service: "chrony", Template: "chrony.conf.debian", Servers: []string{"10.0.0.1", "ntp.example"}, Pools: []string{"pool.example"}}},
		{name: "timesyncd when only it is installed", config: map[string]any{"servers": []any{"a.example"}, "pools": []any{"b.example"}}, installed: "/lib/systemd/systemd-timesyncd",
			want: refCase{Service: "systemd-timesyncd", Template: "timesyncd.conf", Servers: []string{"a.example"}, Pools: []string{"b.example"}}},
		{name: "ntp chosen by the user", config: map[string]any{"ntp_client": "ntp", "pools": []any{"p.example"}}, installed: "chronyd",
			want: refCase{Service: "ntp", Template: "ntp.conf.debian", Pools: []string{"p.example"}}},
		{name: "amazon time sync asked for", config: map[string]any{}, installed: "chronyd", timeSync: true,
			want: refCase{Service: "chrony", Template: "chrony.conf.debian", Servers: []string{AmazonTimeSyncIPv4, AmazonTimeSyncIPv6}}},
		{name: "nothing installed: chrony, to be installed", config: nil,
			want: refCase{Service: "chrony", Template: "chrony.conf.debian"}},
	}
	var cases []refCase
	for _, tt := range tests {
		c := tt.want
		c.Name = tt.name
		cases = append(cases, c)
	}
	var ref map[string]string
	runReference(t, "ntp_ref.py", cases, &ref)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cfg any
			if tt.config != nil {
				cfg = tt.config
			}
			p, err := NTP(NTPInput{Config: cfg, Present: true, Distro: "debian", AmazonTimeSync: tt.timeSync,
				Installed: func(exe string) bool { return exe == tt.installed }})
			if err != nil {
				t.Fatal(err)
			}
			if p.Service != tt.want.Service || p.Install != (tt.installed != p.Client.CheckExe && len(p.Client.Packages) > 0) {
				t.Fatalf("client %+v, install %v", p.Client, p.Install)
			}
			if got := string(p.File.Content); got != ref[tt.name] {
				t.Fatalf("flint writes %s:\n%s\ncloud-init writes:\n%s", p.File.Path, got, ref[tt.name])
			}
		})
	}
}

func TestNTPOddValues(t *testing.T) {
	tests := []struct {
		name    string
		in      NTPInput
		nothing bool
		errKey  string
	}{
		{name: "no ntp key does nothing", in: NTPInput{}, nothing: true},
		{name: "enabled false does nothing", in: NTPInput{Present: true, Config: map[string]any{"enabled": "false"}}, nothing: true},
		{name: "ntp that is a list is an error", in: NTPInput{Present: true, Config: []any{"x"}}, errKey: "ntp"},
		{name: "an unknown client is an error", in: NTPInput{Present: true, Config: map[string]any{"ntp_client": "ptpd"}}, errKey: "ntp.ntp_client"},
		{name: "a server that is a number is an error", in: NTPInput{Present: true, Config: map[string]any{"servers": []any{123}}}, errKey: "servers"},
		{name: "an empty confpath override is an error", in: NTPInput{Present: true, Config: map[string]any{"config": map[string]any{"confpath": ""}}}, errKey: "ntp.config.confpath"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NTP(tt.in)
			var ce *ConfigError
			switch {
			case tt.nothing && (p != nil || err != nil):
				t.Fatalf("got %+v, %v; want nothing", p, err)
			case tt.errKey != "" && (!errors.As(err, &ce) || ce.Key != tt.errKey):
				t.Fatalf("got %v; want an error for %s", err, tt.errKey)
			}
		})
	}
	t.Run("an existing config file is kept aside as .dist", func(t *testing.T) {
		p, err := NTP(NTPInput{Present: true, Exists: func(p string) bool { return p == "/etc/chrony/chrony.conf" }})
		if err != nil || p.RenamedConf != "/etc/chrony/chrony.conf.dist" || !strings.Contains(string(p.File.Content), "pool 0.debian.pool.ntp.org iburst") {
			t.Fatalf("%+v %v", p, err)
		}
	})
}
