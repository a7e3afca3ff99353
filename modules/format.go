package modules

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Format is a bundle's container: a tar archive, maybe compressed.
type Format string

// The bundle formats flint reads.
const (
	FormatTar    Format = "tar"
	FormatTarGz  Format = "tar.gz"
	FormatTarXz  Format = "tar.xz"
	FormatTarZst Format = "tar.zst"
)

// ParseFormat accepts a manifest's format field or a file name's extension
// (".tgz", ".tar.gz", "gz", "zstd", …). It returns "" when the name says
// nothing, in which case the stream's magic bytes decide.
func ParseFormat(s string) (Format, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return "", nil
	}
	for _, c := range []struct {
		f        Format
		suffixes []string
	}{
		{FormatTarGz, []string{"tar.gz", "tgz", "gz", "gzip", "tar.gzip"}},
		{FormatTarXz, []string{"tar.xz", "txz", "xz"}},
		{FormatTarZst, []string{"tar.zst", "tzst", "zst", "zstd", "tar.zstd"}},
		{FormatTar, []string{"tar"}},
	} {
		for _, suf := range c.suffixes {
			if s == suf || strings.HasSuffix(s, "."+suf) {
				return c.f, nil
			}
		}
	}
	return "", fmt.Errorf("unknown bundle format %q (want tar, tar.gz, tar.xz or tar.zst)", s)
}

// FormatFromURL guesses the format from the last path element of a URL,
// ignoring a query string (presigned URLs carry one).
func FormatFromURL(u string) Format {
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		u = u[:i]
	}
	f, _ := ParseFormat(u[strings.LastIndexByte(u, '/')+1:])
	return f
}

var (
	magicGzip = []byte{0x1f, 0x8b}
	magicXz   = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
	magicZstd = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// sniff names the format from the first bytes of a stream: a tar archive
// has "ustar" at offset 257.
func sniff(head []byte) Format {
	switch {
	case bytes.HasPrefix(head, magicGzip):
		return FormatTarGz
	case bytes.HasPrefix(head, magicXz):
		return FormatTarXz
	case bytes.HasPrefix(head, magicZstd):
		return FormatTarZst
	case len(head) >= 262 && bytes.Equal(head[257:262], []byte("ustar")):
		return FormatTar
	}
	return ""
}

// maxWindow bounds the decompressor's memory: zstd and xz let the stream
// ask for a window of up to gigabytes, which a hostile bundle would.
const maxWindow = 8 << 20

// maxXzDict admits every xz preset up to -9 (64 MiB); the xz reader
// allocates the dictionary the stream declares.
const maxXzDict = 64 << 20

// xzDictSize reads the LZMA2 dictionary size from the first block header of
// an xz stream (the stream header is 12 bytes, the block header follows).
func xzDictSize(head []byte) (uint64, bool) {
	if len(head) < 14 {
		return 0, false
	}
	b := head[12:]
	size := (int(b[0]) + 1) * 4
	if b[0] == 0 || len(b) < size {
		return 0, false
	}
	flags := b[1]
	i := 2
	varint := func() (uint64, bool) {
		var v uint64
		for shift := 0; i < size && shift < 63; shift += 7 {
			c := b[i]
			i++
			v |= uint64(c&0x7f) << shift
			if c&0x80 == 0 {
				return v, true
			}
		}
		return 0, false
	}
	for _, present := range []bool{flags&0x40 != 0, flags&0x80 != 0} {
		if present {
			if _, ok := varint(); !ok {
				return 0, false
			}
		}
	}
	for range int(flags&3) + 1 {
		id, ok1 := varint()
		n, ok2 := varint()
		if !ok1 || !ok2 || i+int(n) > size {
			return 0, false
		}
		if id == 0x21 && n == 1 {
			p := b[i] & 0x3f
			if p > 40 {
				return 0, false
			}
			if p == 40 {
				return 1<<32 - 1, true
			}
			return uint64(2|(p&1)) << (p/2 + 11), true
		}
		i += int(n)
	}
	return 0, false
}

// Decompress wraps r (the bundle bytes) with the decompressor for the
// stream's format. The magic bytes are authoritative; declared (from the
// manifest or the URL, may be "") must agree with them when given, so a
// mislabelled bundle is reported rather than misread. The returned closer
// releases the decompressor.
func Decompress(r io.Reader, declared Format) (io.Reader, Format, func(), error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(512)
	if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
		return nil, "", nil, fmt.Errorf("read bundle: %w", err)
	}
	got := sniff(head)
	if got == "" {
		if len(head) == 0 {
			return nil, "", nil, refuse("", "empty bundle")
		}
		return nil, "", nil, refuse("", "unrecognised bundle format (not tar, gzip, xz or zstd)")
	}
	if declared != "" && declared != got {
		return nil, "", nil, refuse("", "declared format %s but the content is %s", declared, got)
	}
	switch got {
	case FormatTarGz:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, got, nil, refuse("", "bad gzip stream: %v", err)
		}
		return zr, got, func() { zr.Close() }, nil
	case FormatTarXz:
		if d, ok := xzDictSize(head); ok && d > maxXzDict {
			return nil, got, nil, refuse("", "xz dictionary of %d bytes exceeds the %d-byte cap", d, maxXzDict)
		}
		zr, err := xz.ReaderConfig{DictCap: maxWindow}.NewReader(br)
		if err != nil {
			return nil, got, nil, refuse("", "bad xz stream: %v", err)
		}
		return zr, got, func() {}, nil
	case FormatTarZst:
		zr, err := zstd.NewReader(br,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(maxWindow),
			zstd.WithDecoderMaxMemory(64<<20))
		if err != nil {
			return nil, got, nil, refuse("", "bad zstd stream: %v", err)
		}
		return zr, got, zr.Close, nil
	}
	return br, got, func() {}, nil
}
