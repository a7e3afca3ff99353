package disks

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// growFudge is the smallest growth worth a table edit: 1 MiB, as
// cloud-guest-utils' growpart (its FUDGE) uses, so a disk a few sectors
// bigger than the image is left alone.
const growFudge = 1 << 20

// ErrNoChange says the partition already reaches the end of the space it
// may take; nothing was written.
var ErrNoChange = errors.New("no change necessary")

// GrowPlan is what ApplyGrowPart will write: a partition's new end and the
// table blocks that carry it.
type GrowPlan struct {
	Table     string // "gpt" or "mbr"
	Partition int    // 1-based
	// StartSector and the sector counts are in logical sectors of
	// SectorSize bytes.
	StartSector, OldSectors, NewSectors int64
	SectorSize                          int64
	// Writes are the blocks to write, in order (backup GPT first, so a
	// crash midway leaves the primary table as it was).
	Writes []BlockWrite
}

// BlockWrite is data to write at a byte offset of the disk.
type BlockWrite struct {
	Offset int64
	Data   []byte
}

// String says what the plan changes, for the log.
func (p GrowPlan) String() string {
	return fmt.Sprintf("%s partition %d from %d to %d sectors (%d MiB to %d MiB)",
		p.Table, p.Partition, p.OldSectors, p.NewSectors,
		p.OldSectors*p.SectorSize>>20, p.NewSectors*p.SectorSize>>20)
}

// PlanGrowPart decides how partition partnum (1-based) of the disk read
// through r, diskSize bytes long with sectorSize-byte logical sectors, can
// grow into the free space that follows it. It refuses, with an error
// naming the reason, a disk without a GPT or MBR, a partition that does not
// exist, an MBR logical partition, and a partition followed by another. It
// returns ErrNoChange (wrapped) when growth would be under 1 MiB.
func PlanGrowPart(r io.ReaderAt, diskSize, sectorSize int64, partnum int) (GrowPlan, error) {
	if sectorSize < 512 || sectorSize&(sectorSize-1) != 0 {
		return GrowPlan{}, fmt.Errorf("sector size %d is not a power of two of at least 512", sectorSize)
	}
	mbr := make([]byte, 512)
	if _, err := r.ReadAt(mbr, 0); err != nil {
		return GrowPlan{}, fmt.Errorf("read the partition table: %w", err)
	}
	if mbr[510] != 0x55 || mbr[511] != 0xAA {
		return GrowPlan{}, errors.New("no partition table (no MBR signature at sector 0)")
	}
	for i := 0; i < 4; i++ {
		if mbr[446+16*i+4] == 0xEE {
			return planGPT(r, mbr, diskSize, sectorSize, partnum)
		}
	}
	return planMBR(mbr, diskSize, sectorSize, partnum)
}

func planMBR(mbr []byte, diskSize, ss int64, partnum int) (GrowPlan, error) {
	if partnum < 1 || partnum > 4 {
		return GrowPlan{}, fmt.Errorf("mbr partition %d is a logical partition; only primary partitions 1-4 are grown", partnum)
	}
	type ent struct{ start, size int64 }
	var ents [4]ent
	for i := range ents {
		e := mbr[446+16*i:]
		ents[i] = ent{int64(binary.LittleEndian.Uint32(e[8:])), int64(binary.LittleEndian.Uint32(e[12:]))}
	}
	me := ents[partnum-1]
	if me.size == 0 || mbr[446+16*(partnum-1)+4] == 0 {
		return GrowPlan{}, fmt.Errorf("mbr partition %d does not exist", partnum)
	}
	if t := mbr[446+16*(partnum-1)+4]; t == 0x05 || t == 0x0f || t == 0x85 {
		return GrowPlan{}, fmt.Errorf("mbr partition %d is an extended partition", partnum)
	}
	limit := diskSize / ss
	if limit > 1<<32-1 {
		limit = 1<<32 - 1 // an MBR entry cannot address more sectors
	}
	for i, e := range ents {
		if i == partnum-1 || e.size == 0 {
			continue
		}
		if e.start >= me.start && e.start < limit {
			limit = e.start
		}
	}
	newSize := limit - me.start
	if err := checkGrowth(partnum, me.size, newSize, ss); err != nil {
		return GrowPlan{}, err
	}
	out := bytes.Clone(mbr)
	e := out[446+16*(partnum-1):]
	binary.LittleEndian.PutUint32(e[12:], uint32(newSize))
	// CHS of the last sector: past cylinder 1023 every tool writes the
	// "use LBA" marker.
	e[5], e[6], e[7] = 0xFE, 0xFF, 0xFF
	return GrowPlan{Table: "mbr", Partition: partnum, StartSector: me.start, OldSectors: me.size,
		NewSectors: newSize, SectorSize: ss, Writes: []BlockWrite{{0, out}}}, nil
}

func checkGrowth(partnum int, old, new int64, ss int64) error {
	if new < old {
		return fmt.Errorf("partition %d ends past the space it may take (%d > %d sectors); the table is inconsistent", partnum, old, new)
	}
	if (new-old)*ss < growFudge {
		return fmt.Errorf("partition %d could grow by only %d sectors: %w", partnum, new-old, ErrNoChange)
	}
	return nil
}

// gptHeader field offsets (UEFI spec 5.3.2).
const (
	gptHdrCRC      = 16
	gptMyLBA       = 24
	gptAltLBA      = 32
	gptFirstUsable = 40
	gptLastUsable  = 48
	gptEntriesLBA  = 72
	gptNumEntries  = 80
	gptEntrySize   = 84
	gptEntriesCRC  = 88
)

func planGPT(r io.ReaderAt, mbr []byte, diskSize, ss int64, partnum int) (GrowPlan, error) {
	hdr := make([]byte, ss)
	if _, err := r.ReadAt(hdr, ss); err != nil {
		return GrowPlan{}, fmt.Errorf("read the GPT header: %w", err)
	}
	if string(hdr[:8]) != "EFI PART" {
		return GrowPlan{}, errors.New("protective MBR but no GPT header at LBA 1")
	}
	hsize := binary.LittleEndian.Uint32(hdr[12:])
	if hsize < 92 || int64(hsize) > ss {
		return GrowPlan{}, fmt.Errorf("GPT header size %d is invalid", hsize)
	}
	if crcOf(hdr[:hsize], gptHdrCRC) != binary.LittleEndian.Uint32(hdr[gptHdrCRC:]) {
		return GrowPlan{}, errors.New("GPT header checksum does not match; the table is damaged")
	}
	n := int64(binary.LittleEndian.Uint32(hdr[gptNumEntries:]))
	esz := int64(binary.LittleEndian.Uint32(hdr[gptEntrySize:]))
	if esz < 128 || esz%8 != 0 || n < 1 || n*esz > 1<<20 {
		return GrowPlan{}, fmt.Errorf("GPT entry array of %d entries of %d bytes is invalid", n, esz)
	}
	arr := make([]byte, n*esz)
	if _, err := r.ReadAt(arr, int64(binary.LittleEndian.Uint64(hdr[gptEntriesLBA:]))*ss); err != nil {
		return GrowPlan{}, fmt.Errorf("read the GPT entries: %w", err)
	}
	if crc32.ChecksumIEEE(arr) != binary.LittleEndian.Uint32(hdr[gptEntriesCRC:]) {
		return GrowPlan{}, errors.New("GPT entry array checksum does not match; the table is damaged")
	}
	if int64(partnum) < 1 || int64(partnum) > n {
		return GrowPlan{}, fmt.Errorf("gpt partition %d does not exist (the table has %d entries)", partnum, n)
	}
	used := func(i int64) bool { return !allZero(arr[i*esz : i*esz+16]) }
	first := func(i int64) int64 { return int64(binary.LittleEndian.Uint64(arr[i*esz+32:])) }
	last := func(i int64) int64 { return int64(binary.LittleEndian.Uint64(arr[i*esz+40:])) }
	me := int64(partnum - 1)
	if !used(me) {
		return GrowPlan{}, fmt.Errorf("gpt partition %d does not exist", partnum)
	}

	sectors := diskSize / ss
	arrSectors := (n*esz + ss - 1) / ss
	backupLBA := sectors - 1
	backupArrLBA := backupLBA - arrSectors
	lastUsable := backupArrLBA - 1
	limit := lastUsable
	for i := int64(0); i < n; i++ {
		if i == me || !used(i) {
			continue
		}
		if first(i) > first(me) && first(i)-1 < limit {
			limit = first(i) - 1
		}
	}
	oldSize := last(me) - first(me) + 1
	newSize := limit - first(me) + 1
	if err := checkGrowth(partnum, oldSize, newSize, ss); err != nil {
		return GrowPlan{}, err
	}

	arr = bytes.Clone(arr)
	binary.LittleEndian.PutUint64(arr[me*esz+40:], uint64(limit))
	arrCRC := crc32.ChecksumIEEE(arr)

	primary := bytes.Clone(hdr)
	binary.LittleEndian.PutUint64(primary[gptAltLBA:], uint64(backupLBA))
	binary.LittleEndian.PutUint64(primary[gptLastUsable:], uint64(lastUsable))
	binary.LittleEndian.PutUint32(primary[gptEntriesCRC:], arrCRC)
	binary.LittleEndian.PutUint32(primary[gptHdrCRC:], crcOf(primary[:hsize], gptHdrCRC))

	backup := bytes.Clone(primary)
	binary.LittleEndian.PutUint64(backup[gptMyLBA:], uint64(backupLBA))
	binary.LittleEndian.PutUint64(backup[gptAltLBA:], 1)
	binary.LittleEndian.PutUint64(backup[gptEntriesLBA:], uint64(backupArrLBA))
	binary.LittleEndian.PutUint32(backup[gptHdrCRC:], crcOf(backup[:hsize], gptHdrCRC))

	// The protective MBR's 0xEE entry covers the whole disk (or as much
	// as 32 bits can say).
	pm := bytes.Clone(mbr)
	for i := 0; i < 4; i++ {
		e := pm[446+16*i:]
		if e[4] == 0xEE {
			size := sectors - 1
			if size > 1<<32-1 {
				size = 1<<32 - 1
			}
			binary.LittleEndian.PutUint32(e[12:], uint32(size))
		}
	}
	return GrowPlan{Table: "gpt", Partition: partnum, StartSector: first(me), OldSectors: oldSize,
		NewSectors: newSize, SectorSize: ss, Writes: []BlockWrite{
			{backupArrLBA * ss, arr},
			{backupLBA * ss, backup},
			{int64(binary.LittleEndian.Uint64(hdr[gptEntriesLBA:])) * ss, arr},
			{ss, primary},
			{0, pm},
		}}, nil
}

// crcOf is the CRC32 of a header with its own checksum field taken as zero.
func crcOf(h []byte, at int) uint32 {
	c := bytes.Clone(h)
	binary.LittleEndian.PutUint32(c[at:], 0)
	return crc32.ChecksumIEEE(c)
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
