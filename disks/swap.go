package disks

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

const gib = int64(1) << 30

// SuggestedSwapSize is cloud-init's suggested_swapsize: twice the memory
// at most, capped by maxsize (or, when a filesystem is known, a quarter of
// its free space, and never over 90% of it), and at least the memory up
// to 4 GiB, 4 GiB up to 16 GiB, then the square root of the memory in
// GiB, rounded, in GiB. avail < 0 means no filesystem was looked at.
func SuggestedSwapSize(mem, maxsize, avail int64) int64 {
	suggMax := mem * 2
	switch {
	case avail < 0 && maxsize <= 0:
		maxsize = suggMax
	case avail >= 0:
		if maxsize <= 0 {
			maxsize = min(avail/4, suggMax)
		} else if float64(maxsize) > float64(avail)*0.9 {
			maxsize = int64(float64(avail) * 0.9)
		}
	}
	var minsize int64
	switch {
	case mem < 4*gib:
		minsize = mem
	case mem < 16*gib:
		minsize = 4 * gib
	default:
		minsize = int64(math.RoundToEven(math.Sqrt(float64(mem)/float64(gib)))) * gib
	}
	return min(minsize, maxsize)
}

// SwapPlan says what SetupSwap will do.
type SwapPlan struct {
	// Filename is the swap file for the fstab line ("" for none).
	Filename string
	// Create is false when the file is kept as it is (already in use, or
	// present with no /proc/swaps to tell).
	Create bool
	// MiB is the size to create.
	MiB int64
	// Note says why nothing is created, for the log.
	Note string
}

// SwapFacts are what PlanSwap needs to know about the machine.
type SwapFacts struct {
	MemTotal   int64 // bytes, from /proc/meminfo
	Avail      int64 // free bytes of the filesystem holding the file's directory
	FileExists bool
	// ProcSwaps is /proc/swaps' content; nil when it could not be read.
	ProcSwaps *string
}

// PlanSwap is cc_mounts' handle_swapcfg: no size (or size 0) means no swap;
// an existing file in use, or present with no /proc/swaps, is kept.
func PlanSwap(s *Swap, f SwapFacts) SwapPlan {
	if s == nil || s.Filename == "" || (s.Size == 0 && !s.SizeAuto) {
		return SwapPlan{Note: "no swap configured"}
	}
	if f.FileExists {
		if f.ProcSwaps == nil {
			return SwapPlan{Filename: s.Filename, Note: fmt.Sprintf("swap file %s exists and /proc/swaps is unreadable; kept as it is", s.Filename)}
		}
		for _, line := range strings.Split(*f.ProcSwaps, "\n") {
			if strings.HasPrefix(line, s.Filename+" ") {
				return SwapPlan{Filename: s.Filename, Note: fmt.Sprintf("swap file %s already in use", s.Filename)}
			}
		}
	}
	size := s.Size
	if s.SizeAuto {
		size = SuggestedSwapSize(f.MemTotal, s.MaxSize, f.Avail)
	}
	mib := size >> 20
	if mib == 0 {
		return SwapPlan{Note: "not creating swap: the size comes to less than 1 MiB"}
	}
	return SwapPlan{Filename: s.Filename, Create: true, MiB: mib}
}

// GatherSwapFacts reads meminfo, the free space of the file's directory
// (created if missing, as cloud-init does) and /proc/swaps under root.
func GatherSwapFacts(root string, s *Swap) (SwapFacts, error) {
	var f SwapFacts
	if s == nil {
		return f, nil
	}
	mem, err := memTotal(filepath.Join(root, "proc/meminfo"))
	if err != nil {
		return f, err
	}
	f.MemTotal = mem
	path := filepath.Join(root, s.Filename)
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return f, fmt.Errorf("swap directory %s: %w", dir, err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return f, fmt.Errorf("statfs %s: %w", dir, err)
	}
	f.Avail = int64(st.Frsize) * int64(st.Bfree)
	if _, err := os.Lstat(path); err == nil {
		f.FileExists = true
	}
	if b, err := os.ReadFile(filepath.Join(root, "proc/swaps")); err == nil {
		s := string(b)
		f.ProcSwaps = &s
	}
	return f, nil
}

func memTotal(meminfo string) (int64, error) {
	b, err := os.ReadFile(meminfo)
	if err != nil {
		return 0, fmt.Errorf("read meminfo: %w", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("meminfo MemTotal %q: %w", v, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("meminfo %s has no MemTotal", meminfo)
}

// fsNoCOW is FS_NOCOW_FL: btrfs refuses swap on a copy-on-write file.
const fsNoCOW = 0x00800000

// CreateSwapFile makes path a swap file of mib MiB: allocated with
// fallocate, or written with zeros (dd's way) on btrfs and where fallocate
// fails, mode 0600, then mkswap. On btrfs the file is made no-copy-on-write
// first, which swapon there requires. A failure removes the file.
func CreateSwapFile(ctx context.Context, runner Runner, path string, mib int64) (err error) {
	var sfs unix.Statfs_t
	if err := unix.Statfs(filepath.Dir(path), &sfs); err != nil {
		return fmt.Errorf("swap file %s: %w", path, err)
	}
	btrfs := sfs.Type == unix.BTRFS_SUPER_MAGIC
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("swap file %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			os.Remove(path)
		}
	}()
	size := mib << 20
	if btrfs {
		if e := unix.IoctlSetPointerInt(int(f.Fd()), unix.FS_IOC_SETFLAGS, fsNoCOW); e != nil {
			f.Close()
			return fmt.Errorf("swap file %s: set no-copy-on-write: %w", path, e)
		}
	}
	if btrfs || unix.Fallocate(int(f.Fd()), 0, 0, size) != nil {
		if err := writeZeros(f, size); err != nil {
			f.Close()
			return fmt.Errorf("swap file %s: write %d MiB: %w", path, mib, err)
		}
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("swap file %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("swap file %s: %w", path, err)
	}
	if _, err := runner.Run(ctx, "mkswap", path); err != nil {
		return fmt.Errorf("swap file %s: %w", path, err)
	}
	return nil
}

func writeZeros(f *os.File, size int64) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	for off := int64(0); off < size; off += int64(len(buf)) {
		n := min(int64(len(buf)), size-off)
		if _, err := f.WriteAt(buf[:n], off); err != nil {
			return err
		}
	}
	return f.Sync()
}

// SetupSwap does the swap part of cc_mounts on the system under root ("/"
// on an instance): it plans, creates the file when needed and returns the
// file name for MountsInput.SwapFile ("" when there is none) and a note
// for the log. A failure returns "" and the error: no fstab line is then
// written for a file that is not a swap file.
func SetupSwap(ctx context.Context, runner Runner, root string, s *Swap) (file, note string, err error) {
	if s == nil {
		return "", "no swap configured", nil
	}
	facts, err := GatherSwapFacts(root, s)
	if err != nil {
		return "", "", fmt.Errorf("swap: %w; no swap file made", err)
	}
	p := PlanSwap(s, facts)
	if !p.Create {
		return p.Filename, p.Note, nil
	}
	if err := CreateSwapFile(ctx, runner, filepath.Join(root, p.Filename), p.MiB); err != nil {
		return "", "", fmt.Errorf("swap: %w", err)
	}
	return p.Filename, fmt.Sprintf("swap file %s of %d MiB created", p.Filename, p.MiB), nil
}
