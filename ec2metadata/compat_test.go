package ec2metadata

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flint-dev/flint/imds"
	"github.com/flint-dev/flint/internal/testenv"
)

// The compatibility test runs Debian's amazon-ec2-utils 2.0.1 ec2-metadata
// and `flint query` with the same arguments against the same emulator and
// compares stdout byte for byte, and the exit codes.
//
// The script hard-codes http://169.254.169.254 and sends its token PUT
// before it reads its arguments, even for --help, so it is only ever run
// with `ip netns exec` inside a namespace this test created, where
// 169.254.169.254/32 sits on that namespace's lo and the emulator listens.
// `make test` runs the suite inside `unshare -n` (loopback only); the
// namespaces made here are created from within that one, which works.
//
// Deliberate differences are listed in `deliberate` below (flags the
// script lacks) and in the package documentation.

const scriptPath = "/usr/bin/ec2-metadata"

// oddFixture holds values that exercise the script's shell quirks: echo
// options, escapes under echo -e, NUL bytes, trailing newlines, listing
// words split on blanks, a key with two formats.
const oddFixture = `
meta-data:
  instance-id: "-n"
  ami-id: "-e"
  ami-launch-index: ""
  instance-type: "m6i\n\n\n"
  local-hostname: "  spaced  out  "
  kernel-id: 'a\tb\\c'
  local-ipv4: "\n\n"
  security-groups: [web, ssh, "db admin"]
  product-codes: !!binary AGEAYgA=
  block-device-mapping:
    ami: 'x\ty\x41\0101'
    root: 'cut\chere'
    swap: ""
    "-n": odd
  public-keys:
    "0=my key":
      openssh-key: ssh-ed25519 K1
    "1=a=b":
      openssh-key: "K2\n"
      other-format: X
    "2=-n":
      openssh-key: "-n"
  tags:
    instance:
      Name: 'tab\there'
      Empty: ""
      "-e": dash
user-data: "#!/bin/sh\necho hi\n\n\n"
`

// sparseFixture lacks most keys, so most lines read "not available".
const sparseFixture = `
meta-data:
  instance-id: i-sparse
  ami-id: ""
  block-device-mapping: {}
`

// scriptFlags are the flags amazon-ec2-utils 2.0.1 has.
var scriptFlags = [][2]string{
	{"-a", "--ami-id"}, {"-l", "--ami-launch-index"}, {"-m", "--ami-manifest-path"},
	{"-n", "--ancestor-ami-ids"}, {"-b", "--block-device-mapping"}, {"-i", "--instance-id"},
	{"-t", "--instance-type"}, {"-h", "--local-hostname"}, {"-o", "--local-ipv4"},
	{"-k", "--kernel-id"}, {"-z", "--availability-zone"}, {"-c", "--product-codes"},
	{"-p", "--public-hostname"}, {"-v", "--public-ipv4"}, {"-u", "--public-keys"},
	{"-r", "--ramdisk-id"}, {"-e", "--reservation-id"}, {"-s", "--security-groups"},
	{"-d", "--user-data"}, {"-g", "--tags"},
}

// commonCases are command lines beyond single flags that must match.
var commonCases = [][]string{
	{},
	{"--all"},
	{"--help"},
	{"-i", "-a", "-t"},
	{"--instance-id", "-z", "--tags", "-u"},
	{"-u", "-b", "-g", "-d", "-s"},
	{"-i", "-i"},
	{"-k", "--all"},
	{"--all", "-x"},
	{"-i", "--help", "-a"},
	{"-x"},
	{"--bogus"},
	{"-ia"},
	{"-i", "-x", "-a"},
	{"-i", "", "-a"},
	{""},
	{"instance-id"},
}

// deliberate lists what flint accepts and the script does not, with why:
// the script prints its help and exits 1 for each.
var deliberate = []struct {
	args []string
	why  string
	want string
}{
	{[]string{"-R"}, "upstream's later -R/--region", "region: eu-west-1\n"},
	{[]string{"--region"}, "upstream's later -R/--region", "region: eu-west-1\n"},
	{[]string{"-P"}, "upstream's later -P/--partition", "partition: aws\n"},
	{[]string{"--partition"}, "upstream's later -P/--partition", "partition: aws\n"},
	{[]string{"-D"}, "upstream's later -D/--aws-domain", "aws-domain: amazonaws.com\n"},
	{[]string{"-Z"}, "upstream's later -Z/--availability-zone-id", "availability-zone-id: euw1-az1\n"},
	{[]string{"--quiet", "-i", "-z"}, "upstream's later --quiet", "i-0123456789abcdef0\neu-west-1a\n"},
	{[]string{"--path", "placement//region", "--path", "/2021-03-23/meta-data/ami-id"}, "upstream's later --path",
		"latest/meta-data/placement/region: eu-west-1\n/2021-03-23/meta-data/ami-id: ami-0c55b159cbfafe1f0\n"},
	{[]string{"--json", "-i"}, "flint's --json", "{\n  \"instance-id\": \"i-0123456789abcdef0\"\n}\n"},
	{[]string{"--endpoint", imds.DefaultEndpoint, "-i"}, "flint's --endpoint", "instance-id: i-0123456789abcdef0\n"},
}

func TestCompatibilityWithAmazonEC2UtilsScript(t *testing.T) {
	testenv.Root(t)
	testenv.Tool(t, "ip")
	testenv.Tool(t, scriptPath)
	testenv.Tool(t, "curl") // the script's HTTP client
	testenv.Short(t)
	flint := buildFlint(t)
	env := cleanEnv(t)

	var all [][]string
	for _, f := range scriptFlags {
		all = append(all, []string{f[0]}, []string{f[1]})
	}
	all = append(all, commonCases...)
	var shorts [][]string
	for _, f := range scriptFlags {
		shorts = append(shorts, []string{f[0]})
	}
	shorts = append(shorts, []string{}, []string{"-u", "-b", "-g", "-d", "-s"})

	dir := t.TempDir()
	fixture := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	shipped, err := filepath.Abs("../imds/imdstest/testdata/instance.yaml")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("shipped instance", func(t *testing.T) {
		ns := serveInNetns(t, flint, env, shipped)
		compare(t, ns, flint, env, all)
		// Installed as ec2-metadata (a symlink), flint is the script.
		link := filepath.Join(t.TempDir(), "ec2-metadata")
		if err := os.Symlink(flint, link); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{{"-i", "-u"}, {"--all"}, {"--help"}, {"-x"}} {
			sOut, sCode := runIn(t, ns, env, scriptPath, args...)
			lOut, lCode := runIn(t, ns, env, link, args...)
			if sOut != lOut || sCode != lCode {
				t.Errorf("as ec2-metadata %q: script exit %d, flint exit %d\n%s", args, sCode, lCode, firstDifference(sOut, lOut))
			}
		}
		for _, d := range deliberate {
			sOut, sCode := runIn(t, ns, env, scriptPath, d.args...)
			fOut, fCode := runIn(t, ns, env, flint, append([]string{"query"}, d.args...)...)
			if sOut != helpText || sCode != 1 {
				t.Errorf("%q (%s): the script now accepts it (exit %d); move it to the compared cases", d.args, d.why, sCode)
			}
			if fOut != d.want || fCode != 0 {
				t.Errorf("%q (%s): flint exit %d, output %q, want %q", d.args, d.why, fCode, fOut, d.want)
			}
		}
	})
	t.Run("IMDSv2 required", func(t *testing.T) {
		ns := serveInNetns(t, flint, env, shipped, "--v2-only")
		compare(t, ns, flint, env, [][]string{{}, {"-i"}, {"-u", "-g"}})
	})
	t.Run("odd values", func(t *testing.T) {
		ns := serveInNetns(t, flint, env, fixture("odd.yaml", oddFixture))
		compare(t, ns, flint, env, shorts)
	})
	t.Run("missing keys", func(t *testing.T) {
		ns := serveInNetns(t, flint, env, fixture("sparse.yaml", sparseFixture))
		compare(t, ns, flint, env, shorts)
	})
	t.Run("no metadata service", func(t *testing.T) {
		ns := testenv.Netns(t)
		addIMDSAddress(t, ns)
		// Both print the script's token error line on stdout and exit 1.
		compare(t, ns, flint, env, [][]string{{"-i"}, {}})
	})
}

// compare runs each command line under the script and flint and reports
// any difference in stdout or exit code.
func compare(t *testing.T, ns, flint string, env []string, cases [][]string) {
	t.Helper()
	for _, args := range cases {
		sOut, sCode := runIn(t, ns, env, scriptPath, args...)
		fOut, fCode := runIn(t, ns, env, flint, append([]string{"query"}, args...)...)
		if sOut != fOut || sCode != fCode {
			t.Errorf("ec2-metadata %q: script exit %d, flint exit %d\n%s", args, sCode, fCode, firstDifference(sOut, fOut))
		}
	}
}

// firstDifference shows where two outputs part, Go-quoted so that tabs,
// backslashes, trailing spaces and NULs are told apart.
func firstDifference(a, b string) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	from := max(0, i-60)
	return "script: " + quoteTail(a, from, i) + "\nflint:  " + quoteTail(b, from, i)
}

func quoteTail(s string, from, at int) string {
	to := min(len(s), at+60)
	if from > len(s) {
		from = len(s)
	}
	return strconv.Quote(s[from:to])
}

// runIn runs a command inside the namespace and returns its stdout and
// exit code; stderr is not compared (the script's bash warns about NULs).
func runIn(t *testing.T, ns string, env []string, name string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, name}, args...)...)
	cmd.Env = env
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out.String(), 0
	case errors.As(err, &ee):
		return out.String(), ee.ExitCode()
	}
	t.Fatalf("%s %q in %s: %v: %s", name, args, ns, err, errOut.String())
	return "", 0
}

// buildFlint returns the flint binary of testenv.FlintBinary (the
// Makefile's build, or one built from this checkout).
func buildFlint(t *testing.T) string {
	t.Helper()
	return checkQuery(t, testenv.FlintBinary(t))
}

func checkQuery(t *testing.T, bin string) string {
	t.Helper()
	out, err := exec.Command(bin, "query", "--help").Output()
	testenv.Need(t, err == nil && string(out) == helpText, bin+" dispatches 'flint query' to ec2metadata")
	return bin
}

// cleanEnv is the environment for both tools: no proxy (curl would use
// it), no inherited token (the script would skip its PUT), no curl or
// metadata configuration from the user running the test.
func cleanEnv(t *testing.T) []string {
	env := []string{"HOME=" + t.TempDir(), "LC_ALL=C.UTF-8"}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasSuffix(strings.ToLower(k), "_proxy"), strings.HasPrefix(k, "AWS_"),
			k == "IMDS_TOKEN", k == "HOME", k == "CURL_HOME", k == "XDG_CONFIG_HOME", k == "LC_ALL":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// addIMDSAddress puts 169.254.169.254/32 on the namespace's lo.
func addIMDSAddress(t *testing.T, ns string) {
	t.Helper()
	if out, err := exec.Command("ip", "-n", ns, "addr", "add", "169.254.169.254/32", "dev", "lo").CombinedOutput(); err != nil {
		t.Fatalf("ip -n %s addr add 169.254.169.254/32 dev lo: %v: %s", ns, err, out)
	}
}

// serveInNetns creates a namespace, runs `flint emulate` on
// 169.254.169.254:80 inside it, waits until it accepts connections, and
// returns the namespace's name.
func serveInNetns(t *testing.T, flint string, env []string, fixture string, extra ...string) string {
	t.Helper()
	ns := testenv.Netns(t)
	addIMDSAddress(t, ns)
	args := append([]string{"netns", "exec", ns, flint, "emulate", "--quiet", "--fixture", fixture,
		"--listen", "169.254.169.254:80"}, extra...)
	emu := exec.Command("ip", args...)
	emu.Env = env
	logs, err := os.Create(filepath.Join(t.TempDir(), "emulate.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	emu.Stdout, emu.Stderr = logs, logs
	if err := emu.Start(); err != nil {
		t.Fatalf("start emulator: %v", err)
	}
	exited := make(chan struct{})
	go func() { emu.Wait(); close(exited) }()
	t.Cleanup(func() {
		emu.Process.Kill()
		<-exited
	})
	var up bool
	for deadline := time.Now().Add(15 * time.Second); !up && time.Now().Before(deadline); {
		select {
		case <-exited:
			t.Fatalf("emulator exited: %s", readLog(logs))
		default:
		}
		testenv.Do(t, ns, func() {
			if c, err := net.DialTimeout("tcp", "169.254.169.254:80", time.Second); err == nil {
				c.Close()
				up = true
			}
		})
		if !up {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if !up {
		t.Fatalf("emulator in %s did not accept connections: %s", ns, readLog(logs))
	}
	return ns
}

func readLog(f *os.File) string {
	b, _ := os.ReadFile(f.Name())
	return string(b)
}
