package modules

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
	"golang.org/x/sys/unix"
)

// maxModuleSize bounds a decompressed module held in memory for
// init_module; the largest in-tree modules are a few tens of MB.
const maxModuleSize = 256 << 20

// LoadPlan is the decision of what to load: files relative to the release
// tree, in order, and what was skipped as already present.
type LoadPlan struct {
	Files   []string
	Skipped []string // requested names already loaded or built in
}

// PlanLoad reads modules.dep, modules.builtin of <root>/lib/modules/<release>
// and the loaded set (procModules, normally /proc/modules) and returns the
// load order for names.
func PlanLoad(root, release string, names []string, procModules io.Reader) (LoadPlan, error) {
	dir, err := resolveModulesDir(root, false)
	if err != nil {
		return LoadPlan{}, fmt.Errorf("plan module loading: %w", err)
	}
	tree := filepath.Join(dir, release)
	f, err := os.Open(filepath.Join(tree, "modules.dep"))
	if err != nil {
		return LoadPlan{}, fmt.Errorf("plan module loading: %w", err)
	}
	g, err := ParseDep(f)
	f.Close()
	if err != nil {
		return LoadPlan{}, err
	}
	skip := map[string]bool{}
	if bf, err := os.Open(filepath.Join(tree, "modules.builtin")); err == nil {
		skip, err = ParseBuiltin(bf)
		bf.Close()
		if err != nil {
			return LoadPlan{}, fmt.Errorf("read modules.builtin: %w", err)
		}
	}
	if procModules != nil {
		loaded, err := ParseProcModules(procModules)
		if err != nil {
			return LoadPlan{}, fmt.Errorf("read loaded modules: %w", err)
		}
		for k := range loaded {
			skip[k] = true
		}
	}
	var plan LoadPlan
	for _, n := range names {
		if skip[ModuleName(n)] {
			plan.Skipped = append(plan.Skipped, ModuleName(n))
		}
	}
	plan.Files, err = g.LoadOrder(names, skip)
	return plan, err
}

// Load loads names (and their dependencies) for the running kernel from
// <root>/lib/modules/<release>. With root "/" and modprobe installed it
// defers to modprobe, which also honours modprobe.d options and blacklists;
// otherwise it calls finit_module(2) itself in dependency order. Modules
// already loaded are skipped.
func Load(ctx context.Context, root, release string, names []string) (LoadPlan, error) {
	if len(names) == 0 {
		return LoadPlan{}, nil
	}
	proc, err := os.Open("/proc/modules")
	if err != nil {
		return LoadPlan{}, fmt.Errorf("read loaded modules: %w", err)
	}
	plan, err := PlanLoad(root, release, names, proc)
	proc.Close()
	if err != nil {
		return plan, err
	}
	if mp, err := exec.LookPath("modprobe"); err == nil && (root == "" || root == "/") {
		for _, f := range plan.Files {
			out, err := exec.CommandContext(ctx, mp, "-S", release, ModuleName(f)).CombinedOutput()
			if err != nil {
				return plan, fmt.Errorf("modprobe %s: %w: %s", ModuleName(f), err, firstLine(out))
			}
		}
		return plan, nil
	}
	dir, err := resolveModulesDir(root, false)
	if err != nil {
		return plan, err
	}
	tree := filepath.Join(dir, release)
	for _, f := range plan.Files {
		if err := loadFile(filepath.Join(tree, f)); err != nil {
			return plan, err
		}
	}
	return plan, nil
}

func firstLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// loadFile inserts one module. Compressed modules go to the kernel as they
// are (MODULE_INIT_COMPRESSED_FILE, Linux 6.1+ with in-kernel decompression);
// older kernels get them decompressed in memory through init_module(2).
func loadFile(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("load module: %w", err)
	}
	defer f.Close()
	compressed := strings.HasSuffix(p, ".xz") || strings.HasSuffix(p, ".zst") || strings.HasSuffix(p, ".gz")
	flags := 0
	if compressed {
		flags = unix.MODULE_INIT_COMPRESSED_FILE
	}
	err = unix.FinitModule(int(f.Fd()), "", flags)
	switch {
	case err == nil, errors.Is(err, unix.EEXIST):
		return nil
	case compressed && (errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP)):
		img, derr := decompressModule(f, p)
		if derr != nil {
			return derr
		}
		if err := unix.InitModule(img, ""); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("load module %s: %w", p, err)
		}
		return nil
	}
	return fmt.Errorf("load module %s: %w", p, err)
}

func decompressModule(f *os.File, p string) ([]byte, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	var r io.Reader
	switch {
	case strings.HasSuffix(p, ".xz"):
		xr, err := xz.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("decompress module %s: %w", p, err)
		}
		r = xr
	case strings.HasSuffix(p, ".zst"):
		zr, err := zstd.NewReader(f, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("decompress module %s: %w", p, err)
		}
		defer zr.Close()
		r = zr
	default:
		return nil, fmt.Errorf("load module %s: this kernel cannot take it compressed", p)
	}
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(r, maxModuleSize+1))
	if err != nil {
		return nil, fmt.Errorf("decompress module %s: %w", p, err)
	}
	if n > maxModuleSize {
		return nil, fmt.Errorf("decompress module %s: larger than %d bytes", p, maxModuleSize)
	}
	return buf.Bytes(), nil
}
