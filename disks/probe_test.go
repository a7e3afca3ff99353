package disks

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flint-dev/flint/internal/testenv"
)

// blkidExport is blkid -p's TYPE, LABEL and PTTYPE for a file.
func blkidExport(t *testing.T, path string) map[string]string {
	t.Helper()
	out, _ := exec.Command(testenv.Tool(t, "blkid"), "-p", "-o", "export", path).Output()
	m := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			m[k] = v
		}
	}
	return m
}

// TestProbeAgreesWithBlkid makes each kind of content with its own tool in
// an image file and asks both blkid and Probe what it holds.
func TestProbeAgreesWithBlkid(t *testing.T) {
	cases := []struct {
		name string
		make []string // {tool, args...}; IMG is replaced by the image path
	}{
		{"ext4 with a label", []string{"mkfs.ext4", "-q", "-L", "data", "IMG"}},
		{"ext3", []string{"mkfs.ext3", "-q", "IMG"}},
		{"ext2", []string{"mkfs.ext2", "-q", "IMG"}},
		{"xfs with a label", []string{"mkfs.xfs", "-q", "-L", "logs", "IMG"}},
		{"btrfs with a label", []string{"mkfs.btrfs", "-q", "-L", "pool", "IMG"}},
		{"swap with a label", []string{"mkswap", "-L", "sw", "IMG"}},
		{"a GPT", []string{"sh", "-c", "echo 'label: gpt' | sfdisk -q IMG"}},
		{"an MBR with a partition", []string{"sh", "-c", "printf 'label: dos\\n,\\n' | sfdisk -q IMG"}},
		{"nothing", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "img")
			if err := os.WriteFile(img, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(img, 320<<20); err != nil {
				t.Fatal(err)
			}
			if c.make != nil {
				testenv.Tool(t, c.make[0])
				args := make([]string, len(c.make)-1)
				for i, a := range c.make[1:] {
					args[i] = strings.ReplaceAll(a, "IMG", img)
				}
				if out, err := exec.Command(c.make[0], args...).CombinedOutput(); err != nil {
					t.Fatalf("%v: %v: %s", c.make, err, out)
				}
			}
			want := blkidExport(t, img)
			got, err := ProbeDevice(img)
			if err != nil {
				t.Fatal(err)
			}
			if got.Type != want["TYPE"] || got.Label != want["LABEL"] || got.PartTable != want["PTTYPE"] {
				t.Errorf("Probe = %+v, blkid says TYPE=%q LABEL=%q PTTYPE=%q", got, want["TYPE"], want["LABEL"], want["PTTYPE"])
			}
		})
	}
}
