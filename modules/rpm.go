package modules

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"crypto"
	"crypto/sha1"
	"crypto/sha256"
	_ "crypto/sha512" // rpm's SHA-384 and SHA-512 payload digests
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// An rpm package is a 96-byte lead, a signature header padded to a
// multiple of 8 bytes, the main header, then the payload: a cpio archive
// in the "newc" format, compressed as the main header's
// PAYLOADCOMPRESSOR says. Pack reads it without rpm or cpio: the files
// under (usr/)lib/modules/<release>/ of the payload, and the header's
// architecture. Fedora, RHEL and Amazon Linux ship their kernel modules
// this way (kernel-core, kernel-modules*), compressed as .ko.xz; they are
// kept as they are.

// Header tags pack reads.
const (
	rpmTagArch              = 1022
	rpmTagPayloadFormat     = 1124
	rpmTagPayloadCompressor = 1125
	rpmTagPayloadDigest     = 5092
	rpmTagPayloadDigestAlgo = 5093
	rpmSigSHA1              = 269
	rpmSigSHA256            = 273
)

// rpm's own bounds on a header: fewer than 65536 entries; its data is
// capped here at 64 MiB (a kernel-modules header is a few MiB).
const (
	rpmMaxTags      = 0xffff
	rpmMaxStore     = 64 << 20
	cpioMaxName     = 4096 // PATH_MAX, with the NUL
	cpioMaxLinkSize = 4096
)

var rpmHeaderMagic = []byte{0x8e, 0xad, 0xe8, 0x01}

// rpmDigestAlgos maps rpm's PGPHASHALGO numbers to hashes.
var rpmDigestAlgos = map[uint32]crypto.Hash{2: crypto.SHA1, 8: crypto.SHA256, 9: crypto.SHA384, 10: crypto.SHA512}

// rpmHeader is one header structure as it stands in the file.
type rpmHeader struct {
	raw   []byte // intro, index and data: what the header digests cover
	index []byte // 16 bytes an entry: tag, type, offset, count
	store []byte
}

func readRPMHeader(r io.Reader, what string) (*rpmHeader, error) {
	intro := make([]byte, 16)
	if _, err := io.ReadFull(r, intro); err != nil {
		return nil, fmt.Errorf("truncated %s header", what)
	}
	if !bytes.Equal(intro[:4], rpmHeaderMagic) {
		return nil, fmt.Errorf("bad %s header magic", what)
	}
	n, size := binary.BigEndian.Uint32(intro[8:]), binary.BigEndian.Uint32(intro[12:])
	if n > rpmMaxTags || size > rpmMaxStore {
		return nil, fmt.Errorf("%s header of %d entries and %d bytes is larger than rpm allows", what, n, size)
	}
	// Read as it comes: a short file claiming a large header allocates
	// only what it holds.
	buf := bytes.NewBuffer(intro)
	want := int64(16*n) + int64(size)
	if m, err := buf.ReadFrom(io.LimitReader(r, want)); err != nil || m != want {
		return nil, fmt.Errorf("truncated %s header", what)
	}
	raw := buf.Bytes()
	return &rpmHeader{raw: raw, index: raw[16 : 16+16*n], store: raw[16+16*n:]}, nil
}

// entry finds a tag: its type, the offset of its data and its count.
func (h *rpmHeader) entry(tag uint32) (typ, off, count uint32, ok bool) {
	for i := 0; i+16 <= len(h.index); i += 16 {
		e := h.index[i : i+16]
		if binary.BigEndian.Uint32(e) == tag {
			off = binary.BigEndian.Uint32(e[8:])
			return binary.BigEndian.Uint32(e[4:]), off, binary.BigEndian.Uint32(e[12:]), off < uint32(len(h.store))
		}
	}
	return 0, 0, 0, false
}

// strings returns a STRING, STRING_ARRAY or I18NSTRING tag's values.
func (h *rpmHeader) strings(tag uint32) []string {
	typ, off, count, ok := h.entry(tag)
	if !ok || (typ != 6 && typ != 8 && typ != 9) {
		return nil
	}
	if typ == 6 {
		count = 1
	}
	var out []string
	b := h.store[off:]
	for ; count > 0; count-- {
		end := bytes.IndexByte(b, 0)
		if end < 0 {
			break
		}
		out = append(out, string(b[:end]))
		b = b[end+1:]
	}
	return out
}

func (h *rpmHeader) str(tag uint32) string {
	if s := h.strings(tag); len(s) > 0 {
		return s[0]
	}
	return ""
}

// int32 returns the first value of an INT32 tag.
func (h *rpmHeader) int32(tag uint32) (uint32, bool) {
	typ, off, count, ok := h.entry(tag)
	if !ok || typ != 4 || count == 0 || int(off)+4 > len(h.store) {
		return 0, false
	}
	return binary.BigEndian.Uint32(h.store[off:]), true
}

// rpmPayload is an opened package: its decompressed cpio stream, and
// what the main header says.
type rpmPayload struct {
	cpio io.Reader
	arch string
	// finish reads the rest of the compressed payload and checks the
	// header's payload digest, when it has one.
	finish func() error
	close  func()
}

// openRPM reads the lead and the headers, checks the main header's
// digest, and opens the payload.
func openRPM(r io.Reader) (*rpmPayload, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	lead := make([]byte, 96)
	if _, err := io.ReadFull(br, lead); err != nil || !bytes.HasPrefix(lead, rpmMagic) {
		return nil, errors.New("not an rpm package")
	}
	if lead[4] < 3 || lead[4] > 4 {
		return nil, fmt.Errorf("rpm format version %d.%d is not read (3 or 4)", lead[4], lead[5])
	}
	if binary.BigEndian.Uint16(lead[6:]) == 1 {
		return nil, errors.New("a source package (.src.rpm) holds no module tree; pack the kernel's binary package")
	}
	sig, err := readRPMHeader(br, "signature")
	if err != nil {
		return nil, err
	}
	if _, err := br.Discard((8 - len(sig.raw)%8) % 8); err != nil {
		return nil, errors.New("truncated signature header")
	}
	h, err := readRPMHeader(br, "main")
	if err != nil {
		return nil, err
	}
	for _, d := range []struct {
		tag uint32
		sum func([]byte) []byte
	}{
		{rpmSigSHA256, func(b []byte) []byte { s := sha256.Sum256(b); return s[:] }},
		{rpmSigSHA1, func(b []byte) []byte { s := sha1.Sum(b); return s[:] }},
	} {
		if want := sig.str(d.tag); want != "" {
			if got := hex.EncodeToString(d.sum(h.raw)); !strings.EqualFold(got, want) {
				return nil, errors.New("the main header does not match its digest in the signature header: the package is damaged")
			}
			break
		}
	}
	if f := h.str(rpmTagPayloadFormat); f != "" && f != "cpio" {
		return nil, fmt.Errorf("payload format %q is not read (a delta rpm?); only cpio", f)
	}
	var payload io.Reader = br
	var sum hash.Hash
	want := h.strings(rpmTagPayloadDigest)
	if algo, ok := h.int32(rpmTagPayloadDigestAlgo); ok && len(want) > 0 && rpmDigestAlgos[algo].Available() {
		sum = rpmDigestAlgos[algo].New()
		payload = io.TeeReader(br, sum)
	}
	comp := h.str(rpmTagPayloadCompressor)
	if comp == "" {
		comp = "gzip" // rpm's default when the header does not say
	}
	zr, done, err := rpmDecompressor(comp, payload)
	if err != nil {
		return nil, err
	}
	p := &rpmPayload{cpio: zr, arch: rpmArchName(h.str(rpmTagArch)), close: done}
	p.finish = func() error {
		if sum == nil {
			return nil
		}
		if _, err := io.Copy(io.Discard, payload); err != nil {
			return fmt.Errorf("read payload: %w", err)
		}
		if !strings.EqualFold(hex.EncodeToString(sum.Sum(nil)), want[0]) {
			return errors.New("the payload does not match the header's payload digest: the package is damaged")
		}
		return nil
	}
	return p, nil
}

// rpmDecompressor opens the payload as the header says it is compressed.
func rpmDecompressor(comp string, r io.Reader) (io.Reader, func(), error) {
	formats := map[string]Format{"gzip": FormatTarGz, "xz": FormatTarXz, "zstd": FormatTarZst}
	switch comp {
	case "bzip2":
		return bzip2.NewReader(r), func() {}, nil
	case "gzip", "xz", "zstd":
	default:
		return nil, nil, fmt.Errorf("payload compressed with %s, which pack does not read (gzip, bzip2, xz, zstd)", comp)
	}
	br := bufio.NewReaderSize(r, 64<<10)
	head, _ := br.Peek(512)
	if got := sniff(head); got != formats[comp] {
		return nil, nil, fmt.Errorf("the header says the payload is %s compressed, but it is not", comp)
	}
	zr, _, done, err := Decompress(br, "")
	if err != nil {
		var re *RefusedError
		if errors.As(err, &re) {
			err = errors.New(re.Reason)
		}
		return nil, nil, fmt.Errorf("payload: %w", err)
	}
	return zr, done, nil
}

// rpmArchName turns rpm's architecture into the manifest's (Debian's)
// names; "noarch" says nothing.
func rpmArchName(a string) string {
	switch a {
	case "x86_64":
		return "amd64"
	case "aarch64":
		return "arm64"
	case "noarch":
		return ""
	}
	return a
}

// readRPM reads the module tree out of an rpm package.
func readRPM(r io.Reader, src, release string) (packTree, error) {
	p, err := openRPM(r)
	if err != nil {
		return packTree{}, fmt.Errorf("pack %s: %w", src, err)
	}
	defer p.close()
	tmp, err := os.MkdirTemp("", "flint-pack-")
	if err != nil {
		return packTree{}, err
	}
	t := packTree{arch: p.arch, cleanup: func() { os.RemoveAll(tmp) }}
	trees := map[string]*pkgRelease{}
	if err := readCPIOTrees(p.cpio, tmp, trees, &t.notes); err != nil {
		t.cleanup()
		switch {
		case errors.Is(err, io.ErrUnexpectedEOF):
			return packTree{}, fmt.Errorf("pack %s: payload: the compressed data ends early: the package is truncated", src)
		case errors.Is(err, zstd.ErrWindowSizeExceeded):
			return packTree{}, fmt.Errorf("pack %s: payload: zstd asks for a window over %d MiB (--ultra or --long), more than pack reads", src, maxWindow>>20)
		}
		return packTree{}, fmt.Errorf("pack %s: payload: %w", src, err)
	}
	if err := p.finish(); err != nil {
		t.cleanup()
		return packTree{}, fmt.Errorf("pack %s: %w", src, err)
	}
	if err := t.choose(src, release, trees); err != nil {
		t.cleanup()
		return packTree{}, err
	}
	return t, nil
}

// cpioEntry is one header of a newc archive.
type cpioEntry struct {
	name  string
	mode  uint32 // type and permission bits, as st_mode
	nlink uint32
	ino   [3]uint32 // device major, minor and inode: names a hard-link set
	size  int64
}

// The file types of st_mode.
const (
	sIFMT   = 0o170000
	sIFREG  = 0o100000
	sIFDIR  = 0o040000
	sIFLNK  = 0o120000
	sIFCHR  = 0o020000
	sIFBLK  = 0o060000
	sIFIFO  = 0o010000
	sIFSOCK = 0o140000
)

// cpioReader reads a newc ("070701") archive, as rpm writes it.
type cpioReader struct {
	r    io.Reader
	body *io.LimitedReader // the current entry's data
	pad  int64
}

func (c *cpioReader) skip(n int64) error {
	if m, err := io.CopyN(io.Discard, c.r, n); err != nil {
		if err == io.EOF {
			return fmt.Errorf("truncated cpio archive (%d bytes short)", n-m)
		}
		return err
	}
	return nil
}

// next returns the next entry; io.EOF at the trailer.
func (c *cpioReader) next() (cpioEntry, error) {
	if c.body != nil {
		if err := c.skip(c.body.N + c.pad); err != nil {
			return cpioEntry{}, err
		}
		c.body = nil
	}
	var h [110]byte
	if _, err := io.ReadFull(c.r, h[:]); err != nil {
		if err == io.EOF {
			return cpioEntry{}, errors.New("truncated cpio archive (no trailer)")
		}
		return cpioEntry{}, err
	}
	switch magic := string(h[:6]); magic {
	case "070701", "070702": // newc, and newc with a checksum rpm does not check either
	case "07070X":
		return cpioEntry{}, errors.New("rpm's stripped cpio payload (a package with files over 4 GiB) is not read")
	default:
		return cpioEntry{}, fmt.Errorf("not a newc cpio archive (magic %q)", magic)
	}
	var f [13]uint32
	for i := range f {
		v, err := strconv.ParseUint(string(h[6+8*i:14+8*i]), 16, 32)
		if err != nil {
			return cpioEntry{}, errors.New("bad cpio header field")
		}
		f[i] = uint32(v)
	}
	// ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check
	e := cpioEntry{mode: f[1], nlink: f[4], size: int64(f[6]), ino: [3]uint32{f[7], f[8], f[0]}}
	namesize := int(f[11])
	if namesize < 1 || namesize > cpioMaxName {
		return cpioEntry{}, fmt.Errorf("cpio entry name of %d bytes", namesize)
	}
	name := make([]byte, namesize)
	if _, err := io.ReadFull(c.r, name); err != nil {
		return cpioEntry{}, errors.New("truncated cpio archive")
	}
	if name[namesize-1] != 0 {
		return cpioEntry{}, errors.New("cpio entry name is not NUL-terminated")
	}
	e.name = string(name[:namesize-1])
	if err := c.skip(int64((4 - (110+namesize)%4) % 4)); err != nil {
		return cpioEntry{}, err
	}
	if e.name == "TRAILER!!!" {
		return cpioEntry{}, io.EOF
	}
	c.body, c.pad = &io.LimitedReader{R: c.r, N: e.size}, (4-e.size%4)%4
	return e, nil
}

// hardLinkData is the content of a hard-link set: newc writes it with one
// member (the last), the others have no data.
type hardLinkData struct {
	path string
	size int64
}

// readCPIOTrees keeps the entries under (usr/)lib/modules/<release>/ of
// the payload, as readDebData does for data.tar: contents go to numbered
// files in tmp, and what is dropped is said in notes.
func readCPIOTrees(r io.Reader, tmp string, trees map[string]*pkgRelease, notes *[]string) error {
	c := &cpioReader{r: r}
	links := map[[3]uint32]hardLinkData{}
	waiting := map[*pkgRelease]map[int][3]uint32{} // data-less members of hard-link sets, by index
	save := func(n int) (string, error) {
		p := filepath.Join(tmp, strconv.Itoa(n))
		return p, copyToFile(p, c.body)
	}
	for n := 0; ; n++ {
		e, err := c.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		typ := e.mode & sIFMT
		linked := typ == sIFREG && e.nlink > 1
		if linked && e.size > 0 {
			// The set's data, kept even when this name is not in the tree:
			// a member in it may come later.
			p, err := save(n)
			if err != nil {
				return err
			}
			links[e.ino] = hardLinkData{p, e.size}
		}
		// "./lib/…" from rpmbuild, "/lib/…" from some writers: cpio -i
		// strips the leading slashes.
		name := strings.TrimLeft(e.name, "/")
		release, rel, ok, err := debModulePath(name)
		if err != nil && strings.Trim(name, "./") != "" {
			*notes = append(*notes, fmt.Sprintf("dropped %s: %v", e.name, err))
			continue
		}
		if err != nil || !ok {
			continue
		}
		t := releaseOf(trees, release)
		it := packItem{rel: rel, mode: int64(e.mode & 0o7777)}
		switch typ {
		case sIFDIR:
			it.typ = tar.TypeDir
		case sIFLNK:
			if e.size > cpioMaxLinkSize {
				*notes = append(*notes, fmt.Sprintf("dropped %s: link target of %d bytes", rel, e.size))
				continue
			}
			target, err := io.ReadAll(c.body)
			if err != nil {
				return err
			}
			it.typ, it.link = tar.TypeSymlink, string(target)
		case sIFREG:
			it.typ, it.size = tar.TypeReg, e.size
			p := ""
			switch {
			case linked && e.size > 0:
				p = links[e.ino].path
			case !linked:
				if p, err = save(n); err != nil {
					return err
				}
			}
			it.open = func() (io.ReadCloser, error) { return os.Open(p) }
		default:
			*notes = append(*notes, fmt.Sprintf("dropped %s: %s is not a file, directory or link", rel, fileKind(cpioKind(typ))))
			continue
		}
		i := t.add(it)
		delete(waiting[t], i) // an earlier member of this name is replaced
		if linked && e.size == 0 {
			if waiting[t] == nil {
				waiting[t] = map[int][3]uint32{}
			}
			waiting[t][i] = e.ino
		}
	}
	// Members without data take their set's; a set with no data at all is
	// empty files, as cpio -i makes them.
	for t, members := range waiting {
		for i, ino := range members {
			it := &t.items[i]
			d, ok := links[ino]
			if !ok {
				it.size, it.open = 0, func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("")), nil }
				continue
			}
			it.size, it.open = d.size, func() (io.ReadCloser, error) { return os.Open(d.path) }
		}
	}
	return nil
}

// cpioKind names a special file's type for fileKind.
func cpioKind(typ uint32) fs.FileMode {
	switch typ {
	case sIFCHR:
		return fs.ModeDevice | fs.ModeCharDevice
	case sIFBLK:
		return fs.ModeDevice
	case sIFIFO:
		return fs.ModeNamedPipe
	case sIFSOCK:
		return fs.ModeSocket
	}
	return fs.ModeIrregular
}
