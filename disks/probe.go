package disks

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"strings"
)

// Content is what a device holds, read from superblock magic numbers the
// way blkid -p does for the types fs_setup and disk_setup meet.
type Content struct {
	// Type is blkid's TYPE (ext4, xfs, btrfs, swap, vfat, ntfs,
	// LVM2_member, crypto_LUKS), or "" when no filesystem was recognised.
	Type  string
	Label string
	// PartTable is "gpt" or "dos" when the device starts with a partition
	// table and no filesystem.
	PartTable string
}

// Empty reports whether nothing was recognised on the device.
func (c Content) Empty() bool { return c.Type == "" && c.PartTable == "" }

func (c Content) String() string {
	switch {
	case c.Type != "" && c.Label != "":
		return fmt.Sprintf("a %s filesystem labelled %q", c.Type, c.Label)
	case c.Type != "":
		return "a " + c.Type + " filesystem"
	case c.PartTable != "":
		return "a " + c.PartTable + " partition table"
	}
	return "nothing recognised"
}

// ProbeDevice opens path read-only and probes it.
func ProbeDevice(path string) (Content, error) {
	f, err := os.Open(path)
	if err != nil {
		return Content{}, fmt.Errorf("probe %s: %w", path, err)
	}
	defer f.Close()
	c, err := Probe(f)
	if err != nil {
		return Content{}, fmt.Errorf("probe %s: %w", path, err)
	}
	return c, nil
}

// Probe recognises filesystems and partition tables by their magic.
func Probe(r io.ReaderAt) (Content, error) {
	// The first 68 KiB hold every magic looked at below.
	buf := make([]byte, 0x10000+4096)
	n, err := r.ReadAt(buf, 0)
	if err != nil && err != io.EOF {
		return Content{}, err
	}
	b := buf[:n]
	at := func(off int, magic string) bool {
		return off+len(magic) <= len(b) && string(b[off:off+len(magic)]) == magic
	}
	cstr := func(off, max int) string {
		if off+max > len(b) {
			return ""
		}
		s := b[off : off+max]
		if i := bytes.IndexByte(s, 0); i >= 0 {
			s = s[:i]
		}
		return strings.TrimRight(string(s), " ")
	}
	switch {
	case at(0x438, "\x53\xef"):
		return Content{Type: extType(b[0x400:]), Label: cstr(0x478, 16)}, nil
	case at(0, "XFSB"):
		return Content{Type: "xfs", Label: cstr(108, 12)}, nil
	case at(0x10040, "_BHRfS_M"):
		return Content{Type: "btrfs", Label: cstr(0x1012b, 256)}, nil
	case at(0, "LUKS\xba\xbe"):
		return Content{Type: "crypto_LUKS"}, nil
	case at(512+24, "LVM2 001") && at(512, "LABELONE"):
		return Content{Type: "LVM2_member"}, nil
	case at(3, "NTFS    "):
		return Content{Type: "ntfs"}, nil
	}
	for _, page := range []int{4096, 8192, 16384, 65536} {
		if at(page-10, "SWAPSPACE2") || at(page-10, "SWAP-SPACE") {
			return Content{Type: "swap", Label: cstr(1024+28, 16)}, nil
		}
	}
	if at(510, "\x55\xaa") {
		switch {
		case at(0x52, "FAT32   "):
			return Content{Type: "vfat", Label: fatLabel(cstr(0x47, 11))}, nil
		case at(0x36, "FAT12   "), at(0x36, "FAT16   "):
			return Content{Type: "vfat", Label: fatLabel(cstr(0x2b, 11))}, nil
		case at(512, "EFI PART"):
			return Content{PartTable: "gpt"}, nil
		}
		for i := 0; i < 4; i++ {
			if b[446+16*i+4] != 0 {
				return Content{PartTable: "dos"}, nil
			}
		}
	}
	return Content{}, nil
}

func fatLabel(s string) string {
	if s == "NO NAME" {
		return ""
	}
	return s
}

// extType tells ext2, ext3 and ext4 apart by feature flags as blkid does:
// any feature ext3 lacks makes it ext4, a journal alone ext3.
func extType(sb []byte) string {
	compat := binary.LittleEndian.Uint32(sb[0x5c:])
	incompat := binary.LittleEndian.Uint32(sb[0x60:])
	roCompat := binary.LittleEndian.Uint32(sb[0x64:])
	const (
		hasJournal   = 0x4
		incompatExt3 = 0x2 | 0x4 | 0x10 // filetype, recover, meta_bg
		roCompatExt3 = 0x1 | 0x2 | 0x4  // sparse_super, large_file, btree_dir
	)
	if incompat&^incompatExt3 != 0 || roCompat&^roCompatExt3 != 0 {
		return "ext4"
	}
	if compat&hasJournal != 0 {
		return "ext3"
	}
	return "ext2"
}
