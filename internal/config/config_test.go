package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var sections = map[string]bool{"network": true, "hostname": true}

func TestBadConfigIsOneLineNamingFileAndLine(t *testing.T) {
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"an unknown top-level key", "imds:\n  mode: v1\nbogus: 1\n", "flint.yaml:3: unknown key \"bogus\""},
		{"an unknown nested key", "imds:\n  mode: v1\n  endpont: http://x\n", "flint.yaml:3: unknown key \"endpont\""},
		{"a wrong type", "handlers:\n  disable: yes-please\n", "flint.yaml:2: cannot unmarshal"},
		{"a bad duration", "imds:\n  deadline: soon\n", "flint.yaml:2: \"soon\" is not a duration"},
		{"invalid YAML", "imds:\n  mode: [v1\n", "flint.yaml:"},
		{"a bad enum", "imds:\n  mode: v3\n", "imds.mode \"v3\""},
		{"a scalar document", "just text\n", "flint.yaml:1: the configuration must be a mapping"},
		{"an unknown events key", "events:\n  periods:\n    spotty: 1s\n", "flint.yaml:3: unknown key \"spotty\""},
		{"an unknown events action", "events:\n  actions: [log, reboot]\n", "unknown action \"reboot\""},
		{"a zero events period", "events:\n  periods:\n    spot: 0s\n", "events.periods.spot 0s: want at least 100ms"},
		{"an empty shutdown command", "events:\n  shutdown_command: []\n", "events.shutdown_command is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("flint.yaml", []byte(tc.doc), sections)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("err = %v, want one line containing %q", err, tc.want)
			}
		})
	}
}

func TestDropInsApplyInOrder(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc/flint/flint.d"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/flint/flint.yaml"), []byte("imds:\n  deadline: 2m\n  mode: v2-only\nhandlers:\n  disable: [packages]\n"), 0o644)
	os.WriteFile(filepath.Join(root, "etc/flint/flint.d/20-b.yaml"), []byte("imds:\n  deadline: 30s\n"), 0o644)
	os.WriteFile(filepath.Join(root, "etc/flint/flint.d/10-a.yaml"), []byte("imds:\n  deadline: 10s\nnetwork:\n  mtu: 1500\n"), 0o644)
	paths, err := Paths(root, "etc/flint/flint.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Load(paths, sections)
	if err != nil {
		t.Fatal(err)
	}
	if time.Duration(c.IMDS.Deadline) != 30*time.Second || c.IMDS.Mode != "v2-only" || len(c.Handlers.Disable) != 1 {
		t.Fatalf("effective config %+v", c)
	}
	var net struct {
		MTU int `yaml:"mtu"`
	}
	if ok, err := c.Section("network", &net); !ok || err != nil || net.MTU != 1500 {
		t.Fatalf("network section: %v %v %+v", ok, err, net)
	}
	var bad struct {
		Other int `yaml:"other"`
	}
	if _, err := c.Section("network", &bad); err == nil || !strings.Contains(err.Error(), "10-a.yaml:4: unknown key \"mtu\"") {
		t.Fatalf("strict section decode: %v", err)
	}
}

func TestMissingFilesGiveDefaults(t *testing.T) {
	c, err := Load([]string{filepath.Join(t.TempDir(), "nope.yaml")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.IMDS.Mode != "v2-preferred" || time.Duration(c.IMDS.Deadline) != 5*time.Minute {
		t.Fatalf("defaults: %+v", c.IMDS)
	}
}

func TestAnEventsSectionReplacesOnlyTheKeysItSets(t *testing.T) {
	c, err := Parse("flint.yaml", []byte("events:\n  periods:\n    spot: 1s\n  actions: [shutdown]\n"), sections)
	if err != nil {
		t.Fatal(err)
	}
	e := c.Events
	if time.Duration(e.Periods.Spot) != time.Second || time.Duration(e.Periods.Scheduled) != 5*time.Minute ||
		len(e.Actions) != 1 || e.Actions[0] != "shutdown" || e.HooksDir != "/etc/flint/events.d" {
		t.Fatalf("events section %+v", e)
	}
}

func TestLoadFileRefusesAMissingFileThatLoadSkips(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	if _, err := Load([]string{missing}, nil); err != nil {
		t.Fatalf("Load of an absent default path: %v", err)
	}
	_, err := LoadFile(missing, nil)
	if err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("LoadFile(%s) = %v, want a one-line error naming the file", missing, err)
	}
	ok := filepath.Join(t.TempDir(), "flint.yaml")
	if err := os.WriteFile(ok, []byte("imds:\n  deadline: 20s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadFile(ok, nil); err != nil {
		t.Fatalf("LoadFile of an existing file: %v", err)
	}
}
