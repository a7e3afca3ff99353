package disks

import (
	"encoding/binary"
	"os"
	"strings"
)

// extFillsDevice reports whether the ext2/3/4 filesystem on dev already
// spans the whole device, so that resize2fs would only say "Nothing to
// do!": a boot then skips starting it, which costs more than everything
// else resize_rootfs does. The superblock is read through the device's
// page cache, where a mounted ext filesystem keeps its own. Any doubt
// (another type, a superblock that cannot be read, sizes that differ) is
// false, and the resizer runs as cloud-init runs it.
func extFillsDevice(fstype, dev string) bool {
	if !strings.HasPrefix(fstype, "ext") {
		return false
	}
	f, err := os.Open(dev)
	if err != nil {
		return false
	}
	defer f.Close()
	size, _, err := diskGeometry(f)
	if err != nil {
		return false
	}
	sb := make([]byte, 1024)
	if _, err := f.ReadAt(sb, 1024); err != nil {
		return false
	}
	le := binary.LittleEndian
	const magic, incompat64bit, roCompatBigalloc = 0xEF53, 0x80, 0x200
	logBlock := le.Uint32(sb[24:])
	if le.Uint16(sb[56:]) != magic || logBlock > 6 || le.Uint32(sb[100:])&roCompatBigalloc != 0 {
		return false // bigalloc: resize2fs rounds to clusters; let it
	}
	blockSize := uint64(1024) << logBlock
	blocks := uint64(le.Uint32(sb[4:]))
	if le.Uint32(sb[96:])&incompat64bit != 0 {
		blocks |= uint64(le.Uint32(sb[0x150:])) << 32
	}
	// resize2fs's size with no size given: the device's, rounded down to
	// whole pages where blocks are smaller than a page.
	want := uint64(size) / blockSize
	if page := uint64(os.Getpagesize()); page > blockSize {
		want &^= page/blockSize - 1
	}
	return blocks == want
}
