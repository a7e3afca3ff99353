// Package handlerstest runs the boot chain for tests: flint's IMDS
// emulator serving the fixture on loopback, a temporary root, and the
// chain run in-process or as the flint binary against them.
package handlerstest

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flint-dev/flint/handlers"
	"github.com/flint-dev/flint/imds/imdstest"
	"github.com/flint-dev/flint/internal/testenv"
)

// Instance is an emulator serving the fixture, and a temp root.
type Instance struct {
	Emu  *imdstest.Server
	URL  string
	Root string
	// Catalog is the built-in handlers runs chain.
	Catalog handlers.Catalog
}

// New starts an emulator for the test and makes a root for it.
func New(t testing.TB, c handlers.Catalog) *Instance {
	t.Helper()
	tree, err := imdstest.ParseFixture(imdstest.DefaultFixture)
	if err != nil {
		t.Fatal(err)
	}
	emu := imdstest.New(tree, imdstest.Options{})
	ts := httptest.NewServer(emu)
	t.Cleanup(func() { emu.Close(); ts.Close() })
	// Programs of a run with --root --live run chrooted in the root: it
	// holds busybox as the image's programs.
	return &Instance{Emu: emu, URL: ts.URL, Root: testenv.BusyboxRoot(t, t.TempDir()), Catalog: c}
}

// Plugin installs an exec plug-in script in the instance's root.
func (in *Instance) Plugin(t testing.TB, name, script string) {
	t.Helper()
	dir := filepath.Join(in.Root, "etc/flint/handlers.d")
	os.MkdirAll(dir, 0o755)
	if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
}

// Config writes the root's etc/flint/flint.yaml.
func (in *Instance) Config(t testing.TB, yaml string) {
	t.Helper()
	os.MkdirAll(filepath.Join(in.Root, "etc/flint"), 0o755)
	if err := os.WriteFile(filepath.Join(in.Root, "etc/flint/flint.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Setup is a live run of the instance's chain against its emulator, with
// logs to stderr and the plan of a dry run to stdout, and an empty
// environment for the IMDS client.
func (in *Instance) Setup(stderr, stdout *bytes.Buffer) handlers.Setup {
	return handlers.Setup{Root: in.Root, Live: true, Endpoint: in.URL, Stderr: stderr, Stdout: stdout,
		Catalog: in.Catalog, Getenv: func(string) string { return "" }}
}

// Run runs the chain in-process but for the network handler, which must
// not touch the namespace the test process is in; mod adjusts the Setup.
// It returns the final status and what went to stderr.
func (in *Instance) Run(t testing.TB, mod func(*handlers.Setup)) (*handlers.Status, string) {
	t.Helper()
	var logs bytes.Buffer
	s := in.Setup(&logs, &logs)
	s.Skip = []string{"network"}
	if mod != nil {
		mod(&s)
	}
	st, err := handlers.Execute(context.Background(), s)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, logs.String())
	}
	return st, logs.String()
}

// Flint is the flint binary (FLINT_BIN) with args, its IMDS endpoint set
// to the instance's emulator.
func (in *Instance) Flint(t testing.TB, args ...string) *exec.Cmd {
	cmd := exec.Command(testenv.FlintBinary(t), args...)
	cmd.Env = append(os.Environ(), "AWS_EC2_METADATA_SERVICE_ENDPOINT="+in.URL)
	return cmd
}

// ReadFile returns a file below the root, failing the test without it.
func (in *Instance) ReadFile(t testing.TB, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(in.Root, rel))
	if err != nil {
		t.Fatalf("%v", err)
	}
	return string(b)
}

// CountRuns returns how many lines a file below the root has: how many
// times the plug-in or script appending to it ran.
func (in *Instance) CountRuns(marker string) int {
	b, _ := os.ReadFile(filepath.Join(in.Root, marker))
	return strings.Count(string(b), "\n")
}

// Result is the named handler's result in st (zero when absent).
func Result(st *handlers.Status, name string) handlers.Result {
	for _, r := range st.Handlers {
		if r.Name == name {
			return r
		}
	}
	return handlers.Result{}
}

// Accounts gives the instance's root a throwaway account database
// (passwd, group, shadow, gshadow, login.defs, sudoers) for the image's
// useradd --root, and the directories the users and ssh-keys handlers
// write in.
func (in *Instance) Accounts(t testing.TB) {
	t.Helper()
	files := map[string]string{
		"etc/passwd":     "root:x:0:0:root:/root:/bin/sh\n",
		"etc/group":      "root:x:0:\nadm:x:4:\nsudo:x:27:\nusers:x:100:\n",
		"etc/shadow":     "root:*:19000:0:99999:7:::\n",
		"etc/gshadow":    "root:*::\nadm:*::\nsudo:*::\nusers:*::\n",
		"etc/login.defs": "USERGROUPS_ENAB yes\nUID_MIN 1000\nUID_MAX 60000\nGID_MIN 1000\nGID_MAX 60000\nSYS_UID_MIN 100\nSYS_UID_MAX 999\nSYS_GID_MIN 100\nSYS_GID_MAX 999\nENCRYPT_METHOD SHA512\n",
		"etc/sudoers":    "root ALL=(ALL:ALL) ALL\n@includedir /etc/sudoers.d\n",
	}
	for rel, content := range files {
		p := filepath.Join(in.Root, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(in.Root, "etc/shadow"), 0o640)
	os.MkdirAll(filepath.Join(in.Root, "home"), 0o755)
	os.MkdirAll(filepath.Join(in.Root, "etc/ssh"), 0o755)
	os.MkdirAll(filepath.Join(in.Root, "root"), 0o700)
}
