package disks

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/flint-dev/flint/internal/testenv"
)

// resize_rootfs starts resize2fs only where the ext filesystem does not
// fill its device yet: real images made by mkfs.ext4, with and without
// the 64bit feature, before and after their "device" grows.
func TestAnExtFilesystemThatFillsItsDeviceNeedsNoResizer(t *testing.T) {
	extFillsDevice := func(fstype, dev string) bool {
		blocks, want, ok := extSizes(fstype, dev)
		return ok && blocks == want
	}
	mkfs := testenv.Tool(t, "mkfs.ext4")
	resize2fs := testenv.Tool(t, "resize2fs")
	for _, opts := range [][]string{{"-O", "64bit"}, {"-O", "^64bit"}, {"-b", "1024"}} {
		img := filepath.Join(t.TempDir(), "fs.img")
		args := append(append([]string{"-q", "-F"}, opts...), img, "16M")
		if out, err := exec.Command(mkfs, args...).CombinedOutput(); err != nil {
			t.Fatalf("mkfs.ext4 %v: %v\n%s", args, err, out)
		}
		if !extFillsDevice("ext4", img) {
			t.Errorf("%v: a fresh filesystem does not fill its image", opts)
		}
		if extFillsDevice("xfs", img) || extFillsDevice("btrfs", img) {
			t.Errorf("%v: only ext superblocks are read", opts)
		}
		// Grown by a size that is no whole number of pages: resize2fs
		// fills it to the last whole page.
		if err := os.Truncate(img, 32<<20+3*512); err != nil {
			t.Fatal(err)
		}
		if extFillsDevice("ext4", img) {
			t.Errorf("%v: a grown image is still filled", opts)
		}
		if out, err := exec.Command(resize2fs, "-f", img).CombinedOutput(); err != nil {
			t.Fatalf("resize2fs: %v\n%s", err, out)
		}
		if !extFillsDevice("ext4", img) {
			t.Errorf("%v: resize2fs left room it would fill", opts)
		}
	}
	junk := filepath.Join(t.TempDir(), "junk")
	os.WriteFile(junk, make([]byte, 8192), 0o644)
	for _, dev := range []string{junk, filepath.Join(t.TempDir(), "missing")} {
		if extFillsDevice("ext4", dev) {
			t.Errorf("%s is taken for a filled ext filesystem", dev)
		}
	}
}
