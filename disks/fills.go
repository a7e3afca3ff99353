package disks

import (
	"encoding/binary"
	"os"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// extSizes reads the size in blocks of the ext2/3/4 filesystem on dev and
// the size resize2fs would grow it to with no size given: the device's,
// rounded down to whole pages where blocks are smaller than a page. The
// superblock is read through the device's page cache, where a mounted ext
// filesystem keeps its own. Equal sizes: the filesystem fills its device
// and resize_rootfs starts no resizer (cloud-init runs resize2fs every
// boot to hear "Nothing to do!"). ok is false where there is any doubt:
// another type, a superblock that cannot be read, bigalloc (resize2fs
// rounds to clusters), a size a filesystem without 64-bit block numbers
// cannot take; then the resizer runs as cloud-init runs it.
func extSizes(fstype, dev string) (blocks, want uint64, ok bool) {
	if !strings.HasPrefix(fstype, "ext") {
		return 0, 0, false
	}
	f, err := os.Open(dev)
	if err != nil {
		return 0, 0, false
	}
	defer f.Close()
	size, _, err := diskGeometry(f)
	if err != nil {
		return 0, 0, false
	}
	sb := make([]byte, 1024)
	if _, err := f.ReadAt(sb, 1024); err != nil {
		return 0, 0, false
	}
	le := binary.LittleEndian
	const magic, incompat64bit, roCompatBigalloc = 0xEF53, 0x80, 0x200
	logBlock := le.Uint32(sb[24:])
	if le.Uint16(sb[56:]) != magic || logBlock > 6 || le.Uint32(sb[100:])&roCompatBigalloc != 0 {
		return 0, 0, false
	}
	blockSize := uint64(1024) << logBlock
	blocks = uint64(le.Uint32(sb[4:]))
	is64 := le.Uint32(sb[96:])&incompat64bit != 0
	if is64 {
		blocks |= uint64(le.Uint32(sb[0x150:])) << 32
	}
	want = uint64(size) / blockSize
	if page := uint64(os.Getpagesize()); page > blockSize {
		want &^= page/blockSize - 1
	}
	if !is64 && want > 1<<32-1 {
		return 0, 0, false
	}
	return blocks, want, true
}

// ext4IocResizeFS is EXT4_IOC_RESIZE_FS, _IOW('f', 16, __u64).
const ext4IocResizeFS = 0x40086610

// growExtOnline grows the mounted ext filesystem at mountpoint to blocks
// with the kernel's online resize, the ioctl resize2fs itself makes for a
// mounted filesystem, without starting resize2fs (which reads every
// group descriptor first, and on a slow machine costs ten times the
// resize). The kernel checks what resize2fs would check; on any error
// the caller runs resize2fs, which explains it.
func growExtOnline(mountpoint string, blocks uint64) error {
	f, err := os.Open(mountpoint)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, f.Fd(), ext4IocResizeFS, uintptr(unsafe.Pointer(&blocks))); e != 0 {
		return e
	}
	return nil
}
