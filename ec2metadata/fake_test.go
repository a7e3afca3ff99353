package ec2metadata

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/flint-dev/flint/imds"
)

// fakeIMDS is a Getter over a map keyed by server path ("/latest/..."),
// exact: a path the script would not ask for is simply absent. errs makes
// a path fail; calls counts the requests per path.
type fakeIMDS struct {
	values map[string]string
	errs   map[string]error
	mu     sync.Mutex
	calls  map[string]int
}

func newFake(values map[string]string) *fakeIMDS {
	return &fakeIMDS{values: values, errs: map[string]error{}, calls: map[string]int{}}
}

func serverPath(path string) string {
	if strings.HasPrefix(path, "/") {
		return path
	}
	return "/latest/" + path
}

func (f *fakeIMDS) Get(ctx context.Context, path string) ([]byte, error) {
	if err := imds.CheckPath(path); err != nil {
		return nil, err
	}
	p := serverPath(path)
	f.mu.Lock()
	f.calls[p]++
	f.mu.Unlock()
	if err, ok := f.errs[p]; ok {
		return nil, err
	}
	if v, ok := f.values[p]; ok {
		return []byte(v), nil
	}
	return nil, fmt.Errorf("GET %s: %w", p, imds.ErrNotFound)
}

func (f *fakeIMDS) callCounts() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := map[string]int{}
	for k, v := range f.calls {
		c[k] = v
	}
	return c
}

// noMetadata fails the test if the command reads anything.
type noMetadata struct{ t *testing.T }

func (n noMetadata) Get(ctx context.Context, path string) ([]byte, error) {
	n.t.Errorf("unexpected metadata read of %q", path)
	return nil, imds.ErrNotFound
}

// instance is a small but complete instance: no ancestor-ami-ids and no
// ramdisk-id, like most.
func instance() map[string]string {
	return map[string]string{
		"/latest/meta-data/ami-id":                         "ami-0abc",
		"/latest/meta-data/ami-launch-index":               "0",
		"/latest/meta-data/ami-manifest-path":              "(unknown)",
		"/latest/meta-data/block-device-mapping/":          "ami\nroot",
		"/latest/meta-data/block-device-mapping/ami":       "/dev/xvda",
		"/latest/meta-data/block-device-mapping/root":      "/dev/xvda",
		"/latest/meta-data/instance-id":                    "i-0123",
		"/latest/meta-data/instance-type":                  "m6i.large",
		"/latest/meta-data/local-hostname":                 "ip-10-0-1-23.internal",
		"/latest/meta-data/local-ipv4":                     "10.0.1.23",
		"/latest/meta-data/kernel-id":                      "aki-1",
		"/latest/meta-data/placement/availability-zone":    "eu-west-1a",
		"/latest/meta-data/placement/availability-zone-id": "euw1-az1",
		"/latest/meta-data/placement/region":               "eu-west-1",
		"/latest/meta-data/services/partition":             "aws",
		"/latest/meta-data/services/domain":                "amazonaws.com",
		"/latest/meta-data/product-codes":                  "pc1",
		"/latest/meta-data/public-hostname":                "ec2-1.compute",
		"/latest/meta-data/public-ipv4":                    "203.0.113.25",
		"/latest/meta-data/public-keys/":                   "0=alice\n1=deploy",
		"/latest/meta-data/public-keys/0/":                 "openssh-key",
		"/latest/meta-data/public-keys/0/openssh-key":      "ssh-ed25519 AAAA alice",
		"/latest/meta-data/public-keys/1/":                 "openssh-key",
		"/latest/meta-data/public-keys/1/openssh-key":      "ssh-rsa BBBB deploy\n",
		"/latest/meta-data/reservation-id":                 "r-1",
		"/latest/meta-data/security-groups":                "web\nssh",
		"/latest/user-data":                                "#!/bin/sh\necho hi\n",
		"/latest/meta-data/tags/instance/":                 "Name\nEnv",
		"/latest/meta-data/tags/instance/Name":             "web-1",
		"/latest/meta-data/tags/instance/Env":              "staging",
		"/latest/meta-data/network/interfaces/macs/":       "0e:49:61:0f:c3:11/",
		"/2021-03-23/meta-data/ami-id":                     "ami-dated",
		"/latest/dynamic/instance-identity/document":       "{\"region\":\"eu-west-1\"}",
		"/latest/meta-data/network/interfaces/macs/x/mac":  "x",
		"/latest/meta-data/iam/security-credentials/role":  "{}",
		"/latest/meta-data/metrics/vhostmd":                "<?xml version=\"1.0\"?>",
		"/latest/meta-data/hostname":                       "ip-10-0-1-23.internal",
		"/latest/meta-data/instance-life-cycle":            "on-demand",
	}
}

// allText is what --all prints for instance().
const allText = "ami-id: ami-0abc\n" +
	"ami-launch-index: 0\n" +
	"ami-manifest-path: (unknown)\n" +
	"ancestor-ami-ids: not available\n" +
	"block-device-mapping: \n" +
	"\t ami: /dev/xvda\n" +
	"\t root: /dev/xvda\n" +
	"instance-id: i-0123\n" +
	"instance-type: m6i.large\n" +
	"local-hostname: ip-10-0-1-23.internal\n" +
	"local-ipv4: 10.0.1.23\n" +
	"kernel-id: aki-1\n" +
	"placement: eu-west-1a\n" +
	"product-codes: pc1\n" +
	"public-hostname: ec2-1.compute\n" +
	"public-ipv4: 203.0.113.25\n" +
	"public-keys: \n" +
	"keyname:alice\n" +
	"index:0\n" +
	"format:openssh-key\n" +
	"key:(begins from next line)\n" +
	"ssh-ed25519 AAAA alice\n" +
	"keyname:deploy\n" +
	"index:1\n" +
	"format:openssh-key\n" +
	"key:(begins from next line)\n" +
	"ssh-rsa BBBB deploy\n" +
	"ramdisk-id: not available\n" +
	"reservation-id: r-1\n" +
	"security-groups: web\nssh\n" +
	"user-data: #!/bin/sh\necho hi\n" +
	"tags: \n" +
	"\t Name: web-1\n" +
	"\t Env: staging\n"

// run runs a command line against g and returns stdout, stderr and the
// exit code.
func run(t *testing.T, g Getter, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut strings.Builder
	code := Main(context.Background(), args, &out, &errOut, func(endpoint string) (Getter, error) {
		return g, nil
	})
	return out.String(), errOut.String(), code
}
