// Package config loads flint's configuration: /etc/flint/flint.yaml and
// the drop-ins in /etc/flint/flint.d/*.yaml, applied in that order (a later
// file replaces the keys it sets). Decoding is strict: an unknown key, a
// wrong type or invalid YAML is one error naming the file and the line.
// Handler sections (network:, modules:, users: …) are kept as YAML and
// decoded, just as strictly, by the handler that owns them.
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/flint-dev/flint/imds"
	"github.com/flint-dev/flint/internal/state"
)

// Config is the effective configuration.
type Config struct {
	IMDS     IMDS     `yaml:"imds"`
	Handlers Handlers `yaml:"handlers"`
	Log      Log      `yaml:"log"`
	Events   Events   `yaml:"events"`

	// files holds every file's document, for Section.
	files []file
}

// IMDS configures the metadata client.
type IMDS struct {
	// Endpoint overrides the endpoint ("" = environment, then the default).
	Endpoint string `yaml:"endpoint"`
	// Mode is v2-preferred, v2-only or v1.
	Mode string `yaml:"mode"`
	// Deadline bounds how long a boot waits for IMDS to answer.
	Deadline Duration `yaml:"deadline"`
	// TokenTTL is the lifetime asked for the token.
	TokenTTL Duration `yaml:"token_ttl"`
}

// Handlers configures the chain.
type Handlers struct {
	// Disable names built-in or exec handlers not to run.
	Disable []string `yaml:"disable"`
	// Required names handlers whose failure stops the chain.
	Required []string `yaml:"required"`
	// ExecDir holds exec plug-ins (relative to the root).
	ExecDir string `yaml:"exec_dir"`
	// ExecTimeout bounds one exec plug-in.
	ExecTimeout Duration `yaml:"exec_timeout"`
	// ExecFrequency is the frequency of exec plug-ins: per-instance, per-boot or once.
	ExecFrequency string `yaml:"exec_frequency"`
	// OutputLogMax caps /var/log/flint-output.log before it is rotated.
	OutputLogMax ByteSize `yaml:"output_log_max"`
}

// Log configures logging.
type Log struct {
	// Level is debug, info, warn or error.
	Level string `yaml:"level"`
	// Target is auto (journald when its socket exists, else stderr), journal or stderr.
	Target string `yaml:"target"`
}

// Default returns the built-in configuration, the same as
// packaging/flint.yaml documents.
func Default() *Config {
	return &Config{
		IMDS: IMDS{Mode: "v2-preferred", Deadline: Duration(5 * time.Minute), TokenTTL: Duration(6 * time.Hour)},
		Handlers: Handlers{
			ExecDir:       "/etc/flint/handlers.d",
			ExecTimeout:   Duration(5 * time.Minute),
			ExecFrequency: "per-instance",
			OutputLogMax:  ByteSize(16 << 20),
		},
		Log:    Log{Level: "info", Target: "auto"},
		Events: defaultEvents(),
	}
}

type file struct {
	path string
	doc  *yaml.Node // the top-level mapping, nil for an empty file
}

// Paths returns the main file and its drop-ins (sorted), below root.
func Paths(root, main string) ([]string, error) {
	paths := []string{filepath.Join(root, main)}
	dropins, err := filepath.Glob(filepath.Join(root, strings.TrimSuffix(main, ".yaml")+".d", "*.yaml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(dropins)
	return append(paths, dropins...), nil
}

// Load reads the files in order; a missing file is skipped. sections lists
// the top-level keys handlers own (anything else unknown is an error).
func Load(paths []string, sections map[string]bool) (*Config, error) {
	c := Default()
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if err := c.add(p, data, sections); err != nil {
			return nil, err
		}
	}
	return c, c.validate()
}

// Parse is Load for one document held in memory (tests, `config check -`).
func Parse(name string, data []byte, sections map[string]bool) (*Config, error) {
	c := Default()
	if err := c.add(name, data, sections); err != nil {
		return nil, err
	}
	return c, c.validate()
}

var core = map[string]bool{"imds": true, "handlers": true, "log": true, "events": true}

func (c *Config) add(path string, data []byte, sections map[string]bool) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("%s: %s", path, yamlMsg(err))
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		c.files = append(c.files, file{path: path})
		return nil
	}
	top := doc.Content[0]
	if top.Kind == yaml.ScalarNode && top.Tag == "!!null" {
		c.files = append(c.files, file{path: path})
		return nil
	}
	if top.Kind != yaml.MappingNode {
		return fmt.Errorf("%s:%d: the configuration must be a mapping of sections", path, top.Line)
	}
	coreDoc := &yaml.Node{Kind: yaml.MappingNode}
	for i := 0; i+1 < len(top.Content); i += 2 {
		k := top.Content[i]
		switch {
		case core[k.Value]:
			coreDoc.Content = append(coreDoc.Content, k, top.Content[i+1])
		case sections[k.Value]:
		default:
			return fmt.Errorf("%s:%d: unknown key %q (known: %s)", path, k.Line, k.Value, known(sections))
		}
	}
	if err := decodeStrict(path, coreDoc, c); err != nil {
		return err
	}
	c.files = append(c.files, file{path: path, doc: top})
	return nil
}

func known(sections map[string]bool) string {
	var ks []string
	for k := range core {
		ks = append(ks, k)
	}
	for k := range sections {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, ", ")
}

// Section decodes the top-level key name of every file, in order, into v
// with the same strictness as the core sections. It reports whether any
// file set it.
func (c *Config) Section(name string, v any) (bool, error) {
	found := false
	for _, f := range c.files {
		if f.doc == nil {
			continue
		}
		for i := 0; i+1 < len(f.doc.Content); i += 2 {
			if f.doc.Content[i].Value != name {
				continue
			}
			if err := decodeStrict(f.path, f.doc.Content[i+1], v); err != nil {
				return found, err
			}
			found = true
		}
	}
	return found, nil
}

// Files returns the files that were read, in order.
func (c *Config) Files() []string {
	var out []string
	for _, f := range c.files {
		out = append(out, f.path)
	}
	return out
}

var lineRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`) })

// decodeStrict decodes n into v, first rejecting keys that v's type does
// not have, and turns yaml's "line N: ..." messages into "FILE:N: ...".
func decodeStrict(path string, n *yaml.Node, v any) error {
	if err := checkKnown(n, reflect.TypeOf(v)); err != nil {
		return fmt.Errorf("%s:%s", path, lineMsg(err.Error()))
	}
	if err := n.Decode(v); err != nil {
		return fmt.Errorf("%s:%s", path, yamlMsg(err))
	}
	return nil
}

var unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()

// checkKnown walks n alongside t and reports the first mapping key that
// names no field: yaml.v3 offers that check only for whole documents read
// through a Decoder, and sections arrive here as nodes.
func checkKnown(n *yaml.Node, t reflect.Type) error {
	if n == nil || t == nil {
		return nil
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if t.Implements(unmarshalerType) || reflect.PointerTo(t).Implements(unmarshalerType) {
		return nil
	}
	switch t.Kind() {
	case reflect.Pointer:
		return checkKnown(n, t.Elem())
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			return nil
		}
		for _, c := range n.Content {
			if err := checkKnown(c, t.Elem()); err != nil {
				return err
			}
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return nil
		}
		for i := 1; i < len(n.Content); i += 2 {
			if err := checkKnown(n.Content[i], t.Elem()); err != nil {
				return err
			}
		}
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return nil
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			ft, ok := fields[k.Value]
			if !ok {
				var names []string
				for name := range fields {
					names = append(names, name)
				}
				sort.Strings(names)
				return fmt.Errorf("line %d: unknown key %q (known: %s)", k.Line, k.Value, strings.Join(names, ", "))
			}
			if err := checkKnown(n.Content[i+1], ft); err != nil {
				return err
			}
		}
	}
	return nil
}

// yamlFields maps a struct's YAML keys to field types, following ",inline".
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") && f.Type.Kind() == reflect.Struct {
			for k, v := range yamlFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

func yamlMsg(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		var parts []string
		for _, e := range te.Errors {
			parts = append(parts, lineMsg(e))
		}
		return strings.Join(parts, "; ")
	}
	return lineMsg(err.Error())
}

func lineMsg(s string) string {
	if m := lineRE().FindStringSubmatch(s); m != nil {
		return m[1] + ": " + m[2]
	}
	return " " + strings.TrimPrefix(s, "yaml: ")
}

func (c *Config) validate() error {
	// The names are the ones imds and state parse; execute.go relies on
	// that and parses them without checking again.
	if _, err := imds.ParseMode(c.IMDS.Mode); err != nil || c.IMDS.Mode == "" {
		return fmt.Errorf("imds.mode %q: want v2-preferred, v2-only or v1", c.IMDS.Mode)
	}
	if _, err := state.ParseFrequency(c.Handlers.ExecFrequency); err != nil {
		return fmt.Errorf("handlers.exec_frequency %q: want per-instance, per-boot or once", c.Handlers.ExecFrequency)
	}
	switch c.Log.Target {
	case "auto", "journal", "stderr":
	default:
		return fmt.Errorf("log.target %q: want auto, journal or stderr", c.Log.Target)
	}
	if time.Duration(c.IMDS.Deadline) <= 0 {
		return fmt.Errorf("imds.deadline %v: must be positive", time.Duration(c.IMDS.Deadline))
	}
	if time.Duration(c.IMDS.TokenTTL) < time.Second || time.Duration(c.IMDS.TokenTTL) > 6*time.Hour {
		return fmt.Errorf("imds.token_ttl %v: want 1s to 6h", time.Duration(c.IMDS.TokenTTL))
	}
	return c.Events.validate()
}

// LoadFile reads one file that a person named (--config, `config check
// FILE`): unlike the default paths, which may be absent on an image that
// needs no configuration, a named file that does not exist is an error,
// never a silent run on the defaults.
func LoadFile(path string, sections map[string]bool) (*Config, error) {
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("config file %s does not exist", path)
		}
		return nil, fmt.Errorf("config file: %w", err)
	}
	return Load([]string{path}, sections)
}
