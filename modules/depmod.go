package modules

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"strings"
)

// ErrNoDepmod means kmod's depmod is not installed.
var ErrNoDepmod = errors.New("depmod not found (install kmod)")

// RunDepmod runs "depmod -b base release", building modules.dep and the
// other indexes in base/lib/modules/<release>.
func RunDepmod(ctx context.Context, base, release string) error {
	bin, err := lookDepmod()
	if err != nil {
		return err
	}
	_, err = runDepmod(ctx, bin, base, release, "")
	return err
}

// runDepmod runs bin -b base [-C config] release and returns the lines it
// wrote to stderr; a failure is one line with the first of them. depmod
// follows symbolic links to directories, so a tree holding a link to one
// of its own parents makes it walk and complain without end (gigabytes a
// second): past depmodSayLimit bytes of complaints it is stopped, and only
// the first depmodKeep bytes are kept.
func runDepmod(ctx context.Context, bin, base, release, config string) ([]string, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stderr := &boundedOutput{keep: depmodKeep, limit: depmodSayLimit, over: cancel}
	args := []string{"-b", base}
	if config != "" {
		args = append(args, "-C", config)
	}
	cmd := exec.CommandContext(ctx, bin, append(args, release)...)
	cmd.Stderr = stderr
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	err := cmd.Run()
	said := strings.Split(strings.TrimSpace(stderr.buf.String()), "\n")
	if len(said) == 1 && said[0] == "" {
		said = nil
	}
	if stderr.total > stderr.limit {
		err = fmt.Errorf("stopped after %d bytes of errors (does a directory link to one of its parents?)", stderr.total)
	}
	if err != nil {
		msg := ""
		if len(said) > 0 {
			msg = said[0]
		}
		return said, fmt.Errorf("depmod -b %s %s: %w: %s", base, release, err, msg)
	}
	return said, nil
}

// depmodKeep and depmodSayLimit bound what is kept of depmod's stderr and
// how much it may write before it is stopped.
const (
	depmodKeep     = 64 << 10
	depmodSayLimit = 4 << 20
)

// boundedOutput keeps the first keep bytes written to it and calls over
// once more than limit bytes were written.
type boundedOutput struct {
	buf         bytes.Buffer
	keep, limit int64
	total       int64
	over        func()
}

func (w *boundedOutput) Write(p []byte) (int, error) {
	if room := w.keep - int64(w.buf.Len()); room > 0 {
		w.buf.Write(p[:min(int64(len(p)), room)])
	}
	w.total += int64(len(p))
	if w.total > w.limit {
		w.over()
	}
	return len(p), nil
}

// depmodVersion names the depmod at bin ("kmod version 30").
func depmodVersion(bin string) string {
	out, err := exec.Command(bin, "--version").Output()
	if v, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n"); err == nil && v != "" {
		return v
	}
	return "depmod"
}

func lookDepmod() (string, error) {
	if p, err := exec.LookPath("depmod"); err == nil {
		return p, nil
	}
	// Boot environments often have no sbin on PATH.
	for _, p := range []string{"/usr/sbin/depmod", "/sbin/depmod", "/usr/bin/depmod", "/bin/depmod"} {
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", ErrNoDepmod
}

// DepGraph is modules.dep parsed: each module's file (relative to the
// release tree) and the files it depends on, in the order depmod lists them.
type DepGraph struct {
	byName map[string]string   // module name → file
	deps   map[string][]string // file → dependency files
}

// ModuleName turns a file name or a user-given name into the kernel's
// module name: base name without .ko(.xz|.zst|.gz), dashes as underscores.
func ModuleName(s string) string {
	s = path.Base(s)
	for _, ext := range []string{".xz", ".zst", ".gz"} {
		s = strings.TrimSuffix(s, ext)
	}
	s = strings.TrimSuffix(s, ".ko")
	return strings.ReplaceAll(s, "-", "_")
}

// ParseDep reads modules.dep ("file: dep dep …" per line).
func ParseDep(r io.Reader) (*DepGraph, error) {
	g := &DepGraph{byName: map[string]string{}, deps: map[string][]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		file, rest, ok := strings.Cut(line, ":")
		if !ok || file == "" {
			return nil, fmt.Errorf("modules.dep line %d: want \"module: deps\"", n)
		}
		g.byName[ModuleName(file)] = file
		g.deps[file] = strings.Fields(rest)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read modules.dep: %w", err)
	}
	return g, nil
}

// File returns the file of the named module.
func (g *DepGraph) File(name string) (string, bool) {
	f, ok := g.byName[ModuleName(name)]
	return f, ok
}

// LoadOrder returns the files to load so that every requested module comes
// after its dependencies, each file once, skipping modules already loaded or
// built in (skip, by module name). A requested name missing from the graph
// is an error unless it is in skip (a built-in module needs no file).
// modules.dep lists a module's dependencies transitively, last to load
// first; the order is still derived by a depth-first walk so that a
// non-transitive or hand-written file works too.
func (g *DepGraph) LoadOrder(names []string, skip map[string]bool) ([]string, error) {
	var order []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(file string, chain []string) error
	visit = func(file string, chain []string) error {
		switch state[file] {
		case 2:
			return nil
		case 1:
			return fmt.Errorf("module dependency cycle: %s", strings.Join(append(chain, ModuleName(file)), " -> "))
		}
		state[file] = 1
		deps := g.deps[file]
		// Reverse: depmod lists the deepest dependency last.
		for i := len(deps) - 1; i >= 0; i-- {
			if err := visit(deps[i], append(chain, ModuleName(file))); err != nil {
				return err
			}
		}
		state[file] = 2
		if !skip[ModuleName(file)] {
			order = append(order, file)
		}
		return nil
	}
	for _, n := range names {
		if skip[ModuleName(n)] {
			continue
		}
		f, ok := g.File(n)
		if !ok {
			return nil, fmt.Errorf("module %s is not in modules.dep", n)
		}
		if err := visit(f, nil); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// ParseProcModules returns the names in /proc/modules.
func ParseProcModules(r io.Reader) (map[string]bool, error) {
	m := map[string]bool{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) > 0 {
			m[f[0]] = true
		}
	}
	return m, sc.Err()
}

// ParseBuiltin returns the module names in modules.builtin.
func ParseBuiltin(r io.Reader) (map[string]bool, error) {
	m := map[string]bool{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			m[ModuleName(l)] = true
		}
	}
	return m, sc.Err()
}
