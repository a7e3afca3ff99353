package handlers

import (
	"context"
	"fmt"
	"reflect"
	"slices"

	"github.com/flint-dev/flint/internal/config"
	"github.com/flint-dev/flint/internal/state"
)

// Builtin describes a handler compiled into flint, once: everything the
// engine, `flint config check` and the documentation need to know about
// it. The engine runs it as a Handler.
type Builtin struct {
	// Name is the handler's name in the chain, the status and --only/--skip.
	Name string
	// Frequency says how often it runs.
	Frequency state.Frequency
	// Needs names handlers whose failure keeps this one from running.
	Needs []string
	// Section is the flint.yaml section the handler owns ("" for none)
	// and Config returns a new value of its type (a pointer), which the
	// section is strictly decoded into.
	Section string
	Config  func() any
	// Ready marks the handler after which systemd is told READY=1,
	// whatever its result: what sshd waits for is in place.
	Ready bool
	// Beside runs the handler beside the chain: started at its turn, the
	// chain goes on to the next handler at once. A handler that Needs it
	// waits for it, READY=1 waits for every handler started beside before
	// it, and the run's end for the rest. For work that the handlers up to
	// READY=1 do not build on (secondary ENIs, a module bundle's
	// download). It runs in line in a dry run and where flint.yaml makes
	// it required (a failure then stops the chain before the next one).
	Beside bool
	// Run does the work; see Handler.Run.
	Run func(ctx context.Context, b *Boot) error
	// Prepare, if set, is called when the chain starts, in a goroutine
	// of its own, for a handler that is going to run (not in a dry run):
	// it may do or start work that changes nothing on the system and
	// takes long (host key generation, reading the metadata the handler
	// needs, a check of what it will install). Run gets what it returned
	// from Boot.Prepared, which waits for it, and joins it there.
	Prepare func(ctx context.Context, b *Boot) any
}

// builtinHandler runs a Builtin as a Handler.
type builtinHandler struct{ d *Builtin }

func (h builtinHandler) Name() string                           { return h.d.Name }
func (h builtinHandler) Frequency() state.Frequency             { return h.d.Frequency }
func (h builtinHandler) Needs() []string                        { return h.d.Needs }
func (h builtinHandler) Run(ctx context.Context, b *Boot) error { return h.d.Run(ctx, b) }

// beside reports whether h runs beside the chain (Builtin.Beside).
func beside(h Handler) bool {
	bh, ok := h.(builtinHandler)
	return ok && bh.d.Beside
}

// Catalog is the ordered list of built-in handlers a run chains before
// the exec plug-ins. cmd/flint hands the engine the one list
// (handlers/builtin.Catalog); the flint.yaml sections, the checks of
// --only and --skip and the names reserved from plug-ins derive from it.
type Catalog []Builtin

// Handlers returns the catalog as the chain's handlers, in order.
func (c Catalog) Handlers() []Handler {
	hs := make([]Handler, len(c))
	for i := range c {
		hs[i] = builtinHandler{&c[i]}
	}
	return hs
}

// Names returns the handlers' names in order.
func (c Catalog) Names() []string {
	var out []string
	for _, d := range c {
		out = append(out, d.Name)
	}
	return out
}

// Has reports whether name is a built-in handler.
func (c Catalog) Has(name string) bool {
	return slices.ContainsFunc(c, func(d Builtin) bool { return d.Name == name })
}

// readyAfter is the handler after which systemd is told READY=1 ("" for
// the end of the chain).
func (c Catalog) readyAfter() string {
	for _, d := range c {
		if d.Ready {
			return d.Name
		}
	}
	return ""
}

// Sections are the flint.yaml sections the handlers own, beside the core
// sections (imds, handlers, log).
func (c Catalog) Sections() map[string]bool {
	m := map[string]bool{}
	for _, d := range c {
		if d.Section != "" {
			m[d.Section] = true
		}
	}
	return m
}

// ValidateSections decodes every handler section of cfg strictly, and
// runs the Validate method of the section types that have one, so
// `flint config check` finds errors before a boot does.
func (c Catalog) ValidateSections(cfg interface {
	Section(name string, v any) (bool, error)
}) error {
	for _, d := range c {
		if d.Section == "" {
			continue
		}
		v := d.Config()
		if _, err := cfg.Section(d.Section, v); err != nil {
			return err
		}
		// A section type may check more than its keys (URL schemes,
		// digests, keys): `config check` finds those before a boot does.
		if c, ok := v.(interface{ Validate() error }); ok {
			if err := c.Validate(); err != nil {
				return fmt.Errorf("%s: %w", d.Section, err)
			}
		}
	}
	return nil
}

// LoadConfig reads the effective configuration for a root (file, if set,
// replaces <root>/etc/flint/flint.yaml and its drop-ins) and validates
// the handlers' sections.
func (c Catalog) LoadConfig(root, file string) (*config.Config, error) {
	var cfg *config.Config
	var err error
	if file != "" {
		// A file a person named must exist: never a run on the defaults.
		cfg, err = config.LoadFile(file, c.Sections())
	} else {
		var paths []string
		if paths, err = config.Paths(root, ConfigPath); err != nil {
			return nil, err
		}
		cfg, err = config.Load(paths, c.Sections())
	}
	if err != nil {
		return nil, err
	}
	return cfg, c.ValidateSections(cfg)
}

// Settings decodes the running built-in handler's own flint.yaml section
// strictly into v, which must have the type its Builtin.Config makes.
func (b *Boot) Settings(v any) error {
	if b.builtin == nil || b.builtin.Section == "" {
		return fmt.Errorf("handler has no flint.yaml section to decode into %T", v)
	}
	if want := reflect.TypeOf(b.builtin.Config()); reflect.TypeOf(v) != want {
		return fmt.Errorf("handler %s decodes its section %s into %T, but declares %v", b.builtin.Name, b.builtin.Section, v, want)
	}
	return b.Section(b.builtin.Section, v)
}
