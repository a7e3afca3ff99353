package ec2metadata

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/flint-dev/flint/imds"
)

func TestEachFlagPrintsTheScriptsLines(t *testing.T) {
	keys := "public-keys: \n" +
		"keyname:alice\nindex:0\nformat:openssh-key\nkey:(begins from next line)\nssh-ed25519 AAAA alice\n" +
		"keyname:deploy\nindex:1\nformat:openssh-key\nkey:(begins from next line)\nssh-rsa BBBB deploy\n"
	tests := []struct {
		short, long, want string
	}{
		{"-a", "--ami-id", "ami-id: ami-0abc\n"},
		{"-l", "--ami-launch-index", "ami-launch-index: 0\n"},
		{"-m", "--ami-manifest-path", "ami-manifest-path: (unknown)\n"},
		{"-n", "--ancestor-ami-ids", "ancestor-ami-ids: not available\n"},
		{"-b", "--block-device-mapping", "block-device-mapping: \n\t ami: /dev/xvda\n\t root: /dev/xvda\n"},
		{"-i", "--instance-id", "instance-id: i-0123\n"},
		{"-t", "--instance-type", "instance-type: m6i.large\n"},
		{"-h", "--local-hostname", "local-hostname: ip-10-0-1-23.internal\n"},
		{"-o", "--local-ipv4", "local-ipv4: 10.0.1.23\n"},
		{"-k", "--kernel-id", "kernel-id: aki-1\n"},
		{"-z", "--availability-zone", "placement: eu-west-1a\n"},
		{"-c", "--product-codes", "product-codes: pc1\n"},
		{"-p", "--public-hostname", "public-hostname: ec2-1.compute\n"},
		{"-v", "--public-ipv4", "public-ipv4: 203.0.113.25\n"},
		{"-u", "--public-keys", keys},
		{"-r", "--ramdisk-id", "ramdisk-id: not available\n"},
		{"-e", "--reservation-id", "reservation-id: r-1\n"},
		{"-s", "--security-groups", "security-groups: web\nssh\n"},
		{"-d", "--user-data", "user-data: #!/bin/sh\necho hi\n"},
		{"-g", "--tags", "tags: \n\t Name: web-1\n\t Env: staging\n"},
		{"-D", "--aws-domain", "aws-domain: amazonaws.com\n"},
		{"-Z", "--availability-zone-id", "availability-zone-id: euw1-az1\n"},
		{"-R", "--region", "region: eu-west-1\n"},
		{"-P", "--partition", "partition: aws\n"},
	}
	for _, tt := range tests {
		for _, flag := range []string{tt.short, tt.long} {
			t.Run(flag, func(t *testing.T) {
				out, errOut, code := run(t, newFake(instance()), flag)
				if out != tt.want || code != 0 || errOut != "" {
					t.Errorf("%s: got %q, exit %d, stderr %q; want %q, exit 0", flag, out, code, errOut, tt.want)
				}
			})
		}
	}
}

func TestEveryFlagIsTested(t *testing.T) {
	if len(flags) != 24 {
		t.Errorf("%d flags; update TestEachFlagPrintsTheScriptsLines and the compatibility test", len(flags))
	}
}

func TestAllAndNoArgumentsPrintTheWholeListInTheScriptsOrder(t *testing.T) {
	for _, args := range [][]string{nil, {"--all"}, {"--all", "-i"}, {"--all", "--bogus"}} {
		out, _, code := run(t, newFake(instance()), args...)
		if out != allText || code != 0 {
			t.Errorf("%q: exit %d, output:\n%s\nwant:\n%s", args, code, out, allText)
		}
	}
}

func TestSeveralFlagsPrintInCommandLineOrder(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"two flags", []string{"-i", "-a"}, "instance-id: i-0123\nami-id: ami-0abc\n"},
		{"short and long forms mixed", []string{"--region", "-z", "--instance-type"}, "region: eu-west-1\nplacement: eu-west-1a\ninstance-type: m6i.large\n"},
		{"a flag repeated", []string{"-i", "-i"}, "instance-id: i-0123\ninstance-id: i-0123\n"},
		{"a flag before --all", []string{"-k", "--all"}, "kernel-id: aki-1\n" + allText},
		{"listings between values", []string{"-g", "-i", "-b"}, "tags: \n\t Name: web-1\n\t Env: staging\ninstance-id: i-0123\nblock-device-mapping: \n\t ami: /dev/xvda\n\t root: /dev/xvda\n"},
		{"an empty argument ends processing", []string{"-i", "", "-a"}, "instance-id: i-0123\n"},
		{"an empty argument alone prints nothing", []string{""}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _, code := run(t, newFake(instance()), tt.args...)
			if out != tt.want || code != 0 {
				t.Errorf("got %q exit %d, want %q exit 0", out, code, tt.want)
			}
		})
	}
}

func TestAbsentKeysPrintNotAvailable(t *testing.T) {
	empty := newFake(map[string]string{"/latest/meta-data/instance-id": "i-1"})
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-a"}, "ami-id: not available\n"},
		{[]string{"-b"}, "block-device-mapping: \nnot available\n"},
		{[]string{"-u"}, "public-keys: \nnot available\n"},
		{[]string{"-g"}, "tags: \nnot available\n"},
		{[]string{"-d"}, "user-data: not available\n"},
		{[]string{"--quiet", "-a"}, "not available\n"},
		{[]string{"--quiet", "-b"}, "not available\n"},
	}
	for _, tt := range tests {
		out, _, code := run(t, empty, tt.args...)
		if out != tt.want || code != 0 {
			t.Errorf("%q: got %q exit %d, want %q exit 0", tt.args, out, code, tt.want)
		}
	}
}

func TestValuesAreShownAsTheShellHoldsThem(t *testing.T) {
	tests := []struct {
		name, value, want string
	}{
		{"trailing newlines are stripped", "v\n\n\n", "ami-id: v\n"},
		{"inner newlines stay", "a\n\nb\n", "ami-id: a\n\nb\n"},
		{"NUL bytes are dropped", "a\x00b\x00", "ami-id: ab\n"},
		{"an empty value is not available", "", "ami-id: not available\n"},
		{"only newlines is not available", "\n\n", "ami-id: not available\n"},
		{"a value echo takes as an option is not available", "-n", "ami-id: not available\n"},
		{"combined echo options too", "-eEn", "ami-id: not available\n"},
		{"other dash values print", "-x", "ami-id: -x\n"},
		{"backslashes print as is", `a\tb`, "ami-id: a\\tb\n"},
		{"leading and trailing spaces stay", "  v  ", "ami-id:   v  \n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _, _ := run(t, newFake(map[string]string{"/latest/meta-data/ami-id": tt.value}), "-a")
			if out != tt.want {
				t.Errorf("got %q, want %q", out, tt.want)
			}
		})
	}
}

func TestListingsFollowTheShellsSplittingAndEcho(t *testing.T) {
	tests := []struct {
		name   string
		values map[string]string
		args   []string
		want   string
	}{
		{
			name: "tag values have echo -e escapes interpreted",
			values: map[string]string{
				"/latest/meta-data/tags/instance/":  "a\nb\nc",
				"/latest/meta-data/tags/instance/a": `x\ty\x41\0101`,
				"/latest/meta-data/tags/instance/b": `cut\chere`,
				"/latest/meta-data/tags/instance/c": "",
			},
			args: []string{"-g"},
			want: "tags: \n\t a: x\tyAA\n\t b: cut\t c: \n",
		},
		{
			name: "listing words split on any blank",
			values: map[string]string{
				"/latest/meta-data/block-device-mapping/":     " ami \t root\n\n",
				"/latest/meta-data/block-device-mapping/ami":  "sda",
				"/latest/meta-data/block-device-mapping/root": "-n",
			},
			args: []string{"-b"},
			want: "block-device-mapping: \n\t ami: sda\n\t root: \n",
		},
		{
			name: "a key name with a space splits into two words",
			values: map[string]string{
				"/latest/meta-data/public-keys/":              "0=my key",
				"/latest/meta-data/public-keys/0/":            "openssh-key",
				"/latest/meta-data/public-keys/0/openssh-key": "ssh-ed25519 K",
			},
			args: []string{"-u"},
			want: "public-keys: \n" +
				"keyname:my\nindex:0\nformat:openssh-key\nkey:(begins from next line)\nssh-ed25519 K\n" +
				"keyname:key\nindex:key\nformat:\nkey:(begins from next line)\n\n",
		},
		{
			name: "several formats: the first is read, all are shown",
			values: map[string]string{
				"/latest/meta-data/public-keys/":              "0=a=b",
				"/latest/meta-data/public-keys/0/":            "openssh-key\nother",
				"/latest/meta-data/public-keys/0/openssh-key": "K",
			},
			args: []string{"-u"},
			want: "public-keys: \nkeyname:a\nindex:0\nformat:openssh-key other\nkey:(begins from next line)\nK\n",
		},
		{
			name: "quiet prints only values, and tag keys as upstream does",
			values: map[string]string{
				"/latest/meta-data/tags/instance/":            "Name",
				"/latest/meta-data/tags/instance/Name":        `w\t1`,
				"/latest/meta-data/block-device-mapping/":     "ami",
				"/latest/meta-data/block-device-mapping/ami":  `s\tda`,
				"/latest/meta-data/public-keys/":              "0=a",
				"/latest/meta-data/public-keys/0/":            "openssh-key",
				"/latest/meta-data/public-keys/0/openssh-key": "K",
			},
			args: []string{"--quiet", "-g", "-b", "-u"},
			want: "\t Name: w\\t1\ns\\tda\nK\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _, code := run(t, newFake(tt.values), tt.args...)
			if out != tt.want || code != 0 {
				t.Errorf("got %q exit %d\nwant %q", out, code, tt.want)
			}
		})
	}
}

func TestQuietDropsLabelsWhereverItIsGiven(t *testing.T) {
	for _, args := range [][]string{{"--quiet", "-i", "-R"}, {"-i", "--quiet", "-R"}, {"-i", "-R", "--quiet"}} {
		out, _, code := run(t, newFake(instance()), args...)
		if want := "i-0123\neu-west-1\n"; out != want || code != 0 {
			t.Errorf("%q: got %q exit %d, want %q", args, out, code, want)
		}
	}
	out, _, _ := run(t, newFake(instance()), "--quiet")
	if !strings.HasPrefix(out, "ami-0abc\n0\n(unknown)\nnot available\n/dev/xvda\n") {
		t.Errorf("--quiet alone should print --all without labels, got:\n%s", out)
	}
}

func TestHelpPrintsTheScriptsTextWithoutReadingMetadata(t *testing.T) {
	out, errOut, code := run(t, noMetadata{t}, "--help")
	if out != helpText || code != 0 || errOut != "" {
		t.Errorf("got exit %d stderr %q output:\n%s", code, errOut, out)
	}
	if !strings.Contains(helpText, "-h/--local-hostname       The local hostname of the instance.\n") ||
		!strings.HasPrefix(helpText, "ec2-metadata v0.1.2\nUse to retrieve EC2 instance metadata from within a running EC2 instance. \n") {
		t.Error("help text differs from amazon-ec2-utils 2.0.1's")
	}
	out, _, code = run(t, newFake(instance()), "-i", "--help", "-a")
	if out != "instance-id: i-0123\n"+helpText || code != 0 {
		t.Errorf("-i --help -a: exit %d, output:\n%s", code, out)
	}
}

func TestBadArgumentsPrintHelpAndExitOne(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantOut    string
		wantStderr string
	}{
		{"an unknown short flag", []string{"-x"}, helpText, "unknown option -x"},
		{"an unknown long flag", []string{"--bogus"}, helpText, "unknown option --bogus"},
		{"bundled short flags, which the script does not take", []string{"-ia"}, helpText, "unknown option -ia"},
		{"-H, whose meaning would be ambiguous", []string{"-H"}, helpText, "unknown option -H"},
		{"a bare word", []string{"instance-id"}, helpText, "unknown option instance-id"},
		{"output before the bad flag is kept", []string{"-i", "-x", "-a"}, "instance-id: i-0123\n" + helpText, "unknown option -x"},
		{"--path without its value", []string{"-i", "--path"}, "instance-id: i-0123\n" + helpText, "--path needs a metadata path"},
		{"--endpoint without its value", []string{"--endpoint"}, helpText, "--endpoint needs a URL"},
		{"an argument with a space", []string{"-i x"}, helpText, "unknown option '-i x'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := run(t, newFake(instance()), tt.args...)
			if out != tt.wantOut || code != 1 || !strings.Contains(errOut, tt.wantStderr) {
				t.Errorf("got exit %d, stderr %q, output:\n%s", code, errOut, out)
			}
		})
	}
}

func TestPathNormalisation(t *testing.T) {
	tests := []struct{ in, want string }{
		{"instance-id", "latest/meta-data/instance-id"},
		{"placement//region", "latest/meta-data/placement/region"},
		{"meta-data/ami-id", "latest/meta-data/ami-id"},
		{"/meta-data/ami-id", "latest/meta-data/ami-id"},
		{"dynamic/instance-identity/document", "latest/dynamic/instance-identity/document"},
		{"user-data", "latest/user-data"},
		{"latest/meta-data/ami-id", "latest/meta-data/ami-id"},
		{"//latest///meta-data//ami-id", "/latest/meta-data/ami-id"},
		{"2021-03-23/meta-data/ami-id", "2021-03-23/meta-data/ami-id"},
		{"1.0/meta-data/ami-id", "1.0/meta-data/ami-id"},
		{"/", "/"},
		{"", "latest/meta-data/"},
		{"network/interfaces/macs/", "latest/meta-data/network/interfaces/macs/"},
		{"2021-3-23/x", "latest/meta-data/2021-3-23/x"},
	}
	for _, tt := range tests {
		if got := NormalizePath(tt.in); got != tt.want {
			t.Errorf("NormalizePath(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestPathPrintsTheNormalisedPathAsLabel(t *testing.T) {
	f := newFake(instance())
	out, _, code := run(t, f, "--path", "placement//region", "-i", "--path=/2021-03-23/meta-data/ami-id", "--path", "nothing/here", "--path", "dynamic/instance-identity/document")
	want := "latest/meta-data/placement/region: eu-west-1\n" +
		"instance-id: i-0123\n" +
		"/2021-03-23/meta-data/ami-id: ami-dated\n" +
		"latest/meta-data/nothing/here: not available\n" +
		"latest/dynamic/instance-identity/document: {\"region\":\"eu-west-1\"}\n"
	if out != want || code != 0 {
		t.Errorf("got exit %d output:\n%s\nwant:\n%s", code, out, want)
	}
	out, _, _ = run(t, f, "--quiet", "--path", "placement/region")
	if out != "eu-west-1\n" {
		t.Errorf("--quiet --path: got %q", out)
	}
}

func TestEachPathIsFetchedOnce(t *testing.T) {
	f := newFake(instance())
	run(t, f, "-i", "--path", "instance-id", "-i", "-u", "--all")
	for p, n := range f.callCounts() {
		if n != 1 {
			t.Errorf("%s fetched %d times", p, n)
		}
	}
	if n := f.callCounts()["/latest/meta-data/public-keys/1/openssh-key"]; n != 1 {
		t.Errorf("public key 1 fetched %d times, want 1", n)
	}
}

// barrier is a Getter that holds every request until n are in flight, so
// a command that fetched one path after another would never finish.
type barrier struct {
	*fakeIMDS
	arrived chan struct{}
	open    chan struct{}
}

func (b *barrier) Get(ctx context.Context, path string) ([]byte, error) {
	select {
	case b.arrived <- struct{}{}:
	default:
	}
	select {
	case <-b.open:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return b.fakeIMDS.Get(ctx, path)
}

func TestTopLevelPathsAreFetchedConcurrently(t *testing.T) {
	const n = 20 // --all: 17 values and 3 listings
	b := &barrier{fakeIMDS: newFake(instance()), arrived: make(chan struct{}, n), open: make(chan struct{})}
	go func() {
		for i := 0; i < n; i++ {
			<-b.arrived
		}
		close(b.open)
	}()
	out, errOut, code := run(t, b, "--all")
	if out != allText || code != 0 {
		t.Errorf("exit %d, stderr %q, output:\n%s", code, errOut, out)
	}
}

func TestAnUnusableServicePrintsTheScriptsTokenError(t *testing.T) {
	tests := []struct {
		name string
		err  error
		args []string
	}{
		{"connection refused everywhere", errors.New("dial tcp 169.254.169.254:80: connect: connection refused"), []string{"-i", "-a"}},
		{"disabled", fmt.Errorf("PUT /latest/api/token: %w", imds.ErrDisabled), []string{"-i"}},
		{"the whole list fails", errors.New("context deadline exceeded"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(instance())
			failAll := failing{f, tt.err}
			out, errOut, code := run(t, failAll, tt.args...)
			if out != tokenError || code != 1 || !strings.Contains(errOut, tt.err.Error()) {
				t.Errorf("got exit %d, stderr %q, output %q", code, errOut, out)
			}
		})
	}
}

// failing answers every request with err.
type failing struct {
	*fakeIMDS
	err error
}

func (f failing) Get(ctx context.Context, path string) ([]byte, error) { return nil, f.err }

func TestAFailedPathPrintsNotAvailableAndExitsOne(t *testing.T) {
	f := newFake(instance())
	f.errs["/latest/meta-data/instance-type"] = &imds.StatusError{Method: "GET", Path: "/latest/meta-data/instance-type", Code: 500}
	out, errOut, code := run(t, f, "-i", "-t")
	if out != "instance-id: i-0123\ninstance-type: not available\n" || code != 1 ||
		!strings.Contains(errOut, "meta-data/instance-type") || !strings.Contains(errOut, "HTTP 500") {
		t.Errorf("got exit %d, stderr %q, output %q", code, errOut, out)
	}
}

func TestABadEndpointIsReportedBeforeAnythingElse(t *testing.T) {
	var out, errOut strings.Builder
	code := Main(context.Background(), []string{"--endpoint", "::bad", "-i"}, &out, &errOut, func(endpoint string) (Getter, error) {
		if endpoint != "::bad" {
			t.Errorf("connect got endpoint %q", endpoint)
		}
		return nil, fmt.Errorf("bad endpoint %q: missing scheme", endpoint)
	})
	if code != 1 || out.String() != "" || !strings.Contains(errOut.String(), `bad endpoint "::bad"`) {
		t.Errorf("got exit %d, stderr %q, output %q", code, errOut.String(), out.String())
	}
}

func TestHelpDoesNotConnect(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-x"}, {""}} {
		var out, errOut strings.Builder
		Main(context.Background(), args, &out, &errOut, func(string) (Getter, error) {
			t.Errorf("%q connected", args)
			return nil, errors.New("no")
		})
	}
}

func TestEndpointIsPassedToConnectFromAnywhere(t *testing.T) {
	for _, args := range [][]string{
		{"--endpoint", "http://127.0.0.1:9", "-i"},
		{"-i", "--endpoint=http://127.0.0.1:9"},
		{"--all", "--endpoint", "http://127.0.0.1:9"},
	} {
		got := ""
		var out, errOut strings.Builder
		Main(context.Background(), args, &out, &errOut, func(e string) (Getter, error) {
			got = e
			return newFake(instance()), nil
		})
		if got != "http://127.0.0.1:9" {
			t.Errorf("%q: connect got %q", args, got)
		}
	}
}

func TestMainBoundsTheQueryWithADeadline(t *testing.T) {
	var sawDeadline bool
	g := getterFunc(func(ctx context.Context, path string) ([]byte, error) {
		_, sawDeadline = ctx.Deadline()
		return []byte("i-1"), nil
	})
	run(t, g, "-i")
	if !sawDeadline {
		t.Error("the query ran without a deadline")
	}
}

type getterFunc func(ctx context.Context, path string) ([]byte, error)

func (f getterFunc) Get(ctx context.Context, path string) ([]byte, error) { return f(ctx, path) }

func TestDotSegmentsInAPathAreResolvedAsCurlDoes(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/latest/meta-data/../user-data", "/latest/user-data"},
		{"/latest/meta-data/./ami-id", "/latest/meta-data/ami-id"},
		{"/latest/meta-data/..", "/latest/"},
		{"/latest/meta-data/.", "/latest/meta-data/"},
		{"/../../x", "/x"},
		{"/latest/meta-data/", "/latest/meta-data/"},
		{"/", "/"},
	}
	for _, tt := range tests {
		if got := removeDotSegments(tt.in); got != tt.want {
			t.Errorf("removeDotSegments(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	out, _, _ := run(t, newFake(instance()), "--path", "meta-data/../user-data")
	if want := "latest/meta-data/../user-data: #!/bin/sh\necho hi\n"; out != want {
		t.Errorf("got %q, want %q", out, want)
	}
}

func TestAPathIMDSRefusesIsNotMistakenForAnUnreachableService(t *testing.T) {
	f := newFake(instance())
	f.errs["/latest/meta-data/instance-id"] = &imds.StatusError{Method: "GET", Path: "meta-data/instance-id", Code: 403}
	out, _, code := run(t, f, "-i")
	if out != "instance-id: not available\n" || code != 1 {
		t.Errorf("got exit %d output %q", code, out)
	}
}

func TestVersionPrefixFollowsUpstreamsPattern(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"/", true}, {"latest", true}, {"/latest/x", true}, {"latestfoo", true}, {"1.0", true}, {"/1.0/x", true},
		{"2021-03-23", true}, {"/2021-03-23/meta-data", true}, {"2021-03-2", false}, {"2021-3-23/", false},
		{"202a-03-23", false}, {"", false}, {"//", false}, {"meta-data", false}, {"1.1", false},
	}
	for _, tt := range tests {
		if got := versionPrefix(tt.in); got != tt.want {
			t.Errorf("versionPrefix(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestAPathARequestCannotCarryFailsAlone(t *testing.T) {
	out, errOut, code := run(t, newFake(instance()), "-i", "--path", "a?b", "--path", "x\ty")
	want := "instance-id: i-0123\nlatest/meta-data/a?b: not available\nlatest/meta-data/x\ty: not available\n"
	if out != want || code != 1 || !strings.Contains(errOut, `"/latest/meta-data/a?b" holds '?' or '#'`) {
		t.Errorf("got exit %d, stderr %q, output %q", code, errOut, out)
	}
}

func TestAServiceFailureStopsTheOtherFetches(t *testing.T) {
	// Every path but one waits for its context: only the cancellation
	// that the transport failure triggers lets the command finish.
	g := getterFunc(func(ctx context.Context, path string) ([]byte, error) {
		if path == "meta-data/kernel-id" {
			return nil, errors.New("GET meta-data/kernel-id: connection reset by peer")
		}
		<-ctx.Done()
		return nil, ctx.Err()
	})
	var out, errOut strings.Builder
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := Parse([]string{"--all"})
	code := c.Run(ctx, g, &out, &errOut)
	if out.String() != tokenError || code != 1 || !strings.Contains(errOut.String(), "connection reset by peer") {
		t.Errorf("got exit %d, stderr %q, output %q", code, errOut.String(), out.String())
	}
}

func TestADotSegmentInAListingFailsAloneNotTheWholeCommand(t *testing.T) {
	md := instance()
	md["/latest/meta-data/block-device-mapping/"] = "ami\n..\n"
	out, errOut, code := run(t, newFake(md), "-b", "-i")
	if strings.Contains(out, tokenError) || !strings.Contains(out, "instance-id: i-0123\n") || !strings.Contains(out, "\t ami: ") {
		t.Errorf("a '..' listing word failed the command: output %q", out)
	}
	if code != 1 || !strings.Contains(errOut, "holds a '.' or '..' segment") {
		t.Errorf("got exit %d, stderr %q; want exit 1 and the path named", code, errOut)
	}
}

func TestPathRedactsRoleCredentialsUnlessShowSecrets(t *testing.T) {
	doc := `{"Code":"Success","AccessKeyId":"ASIAVISIBLE","SecretAccessKey":"hidden-secret","Token":"hidden-token"}`
	values := instance()
	values["/latest/meta-data/iam/security-credentials/web-role"] = doc
	f := newFake(values)
	for _, args := range [][]string{
		{"--path", "meta-data/iam/security-credentials/web-role"},
		{"--json", "--path", "/latest/meta-data/iam/security-credentials/web-role"},
	} {
		out, _, code := run(t, f, args...)
		if code != 0 || strings.Contains(out, "hidden-") || !strings.Contains(out, "ASIAVISIBLE") || !strings.Contains(out, imds.Redacted) {
			t.Errorf("%v: exit %d, output %q: want the key id shown and the secret and token redacted", args, code, out)
		}
	}
	out, _, _ := run(t, f, "--path", "meta-data/iam/security-credentials/web-role", "--show-secrets")
	if !strings.Contains(out, "hidden-secret") || !strings.Contains(out, "hidden-token") {
		t.Errorf("--show-secrets: got %q", out)
	}
}
