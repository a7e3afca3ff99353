package disks

import (
	"fmt"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Config holds the cloud-config keys this package acts on, decoded with
// cloud-init 22.4's semantics for odd values. Decode a whole cloud-config
// document into it; other keys are ignored here.
type Config struct {
	Growpart           *Growpart           `yaml:"growpart"`
	ResizeRootfs       *ResizeRootfs       `yaml:"resize_rootfs"`
	Mounts             []MountEntry        `yaml:"mounts"`
	MountDefaultFields []*string           `yaml:"mount_default_fields"`
	Swap               *Swap               `yaml:"swap"`
	DiskSetup          map[string]DiskSpec `yaml:"disk_setup"`
	FsSetup            []FsSpec            `yaml:"fs_setup"`
	DeviceAliases      map[string]string   `yaml:"device_aliases"`
}

// DecodeConfig decodes the keys of Config from a cloud-config document.
func DecodeConfig(doc []byte) (Config, error) {
	var c Config
	if err := yaml.Unmarshal(doc, &c); err != nil {
		return Config{}, fmt.Errorf("cloud-config disks keys: %w", err)
	}
	return c, nil
}

// isFalse is cloud-init's util.is_false: a YAML false, or one of the
// strings off, 0, no, false in any case.
func isFalse(n *yaml.Node) bool {
	if n == nil || n.Kind != yaml.ScalarNode {
		return false
	}
	if n.Tag == "!!bool" {
		b, _ := strconv.ParseBool(strings.ToLower(n.Value))
		return !b
	}
	switch strings.ToLower(strings.TrimSpace(n.Value)) {
	case "off", "0", "no", "false":
		return true
	}
	return false
}

// isTrue is cloud-init's util.translate_bool for a value given: a YAML true
// or one of on, 1, yes, true, y in any case.
func isTrue(n *yaml.Node) bool {
	if n == nil || n.Kind != yaml.ScalarNode {
		return false
	}
	switch strings.ToLower(strings.TrimSpace(n.Value)) {
	case "true", "1", "on", "yes", "y":
		return true
	}
	return false
}

// Growpart is the growpart key. The zero value (no key) is cloud-init's
// default: mode auto, devices ["/"].
type Growpart struct {
	// Mode is "auto" or "growpart" (both grow with this package's own
	// partition editor), "gpart" (FreeBSD's tool, refused here) or "off".
	// Every false-like value (false, "false", "no", "0") becomes "off".
	Mode string
	// Devices are mount points or /dev paths; default ["/"].
	Devices []string
	// IgnoreGrowrootDisabled grows even when /etc/growroot-disabled exists.
	IgnoreGrowrootDisabled bool
}

// DefaultGrowpart is what cloud-init uses when user-data has no growpart key.
func DefaultGrowpart() Growpart {
	return Growpart{Mode: "auto", Devices: []string{"/"}}
}

// UnmarshalYAML decodes growpart with cloud-init's leniency: a string for
// devices is a list of one, false-like modes are "off".
func (g *Growpart) UnmarshalYAML(n *yaml.Node) error {
	*g = DefaultGrowpart()
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: growpart: want a mapping, got %s", n.Line, kindName(n))
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch k.Value {
		case "mode":
			switch {
			case isFalse(v):
				g.Mode = "off"
			case v.Kind == yaml.ScalarNode:
				g.Mode = v.Value
			default:
				return fmt.Errorf("line %d: growpart.mode: want auto, growpart, off or false", v.Line)
			}
		case "devices":
			list, err := stringList(v)
			if err != nil {
				return fmt.Errorf("line %d: growpart.devices: %w", v.Line, err)
			}
			g.Devices = list
		case "ignore_growroot_disabled":
			g.IgnoreGrowrootDisabled = !isFalse(v)
		}
	}
	return nil
}

// ResizeRootfs is the resize_rootfs key: true (the default), false or
// "noblock" (resize in the background).
type ResizeRootfs string

// The values of resize_rootfs.
const (
	ResizeOn      ResizeRootfs = "true"
	ResizeOff     ResizeRootfs = "false"
	ResizeNoblock ResizeRootfs = "noblock"
)

// UnmarshalYAML follows util.translate_bool with the noblock addon:
// anything not true-like and not noblock turns resizing off.
func (r *ResizeRootfs) UnmarshalYAML(n *yaml.Node) error {
	switch {
	case n.Kind == yaml.ScalarNode && strings.ToLower(n.Value) == "noblock":
		*r = ResizeNoblock
	case isTrue(n):
		*r = ResizeOn
	default:
		*r = ResizeOff
	}
	return nil
}

// MountEntry is one item of mounts: up to six fstab fields, each possibly
// null. An item that was not a list is kept with Invalid set, so that it is
// reported and skipped as cloud-init does.
type MountEntry struct {
	Fields  []*string
	Invalid string
}

// UnmarshalYAML keeps scalars as their text, null as nil.
func (m *MountEntry) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.SequenceNode {
		m.Invalid = fmt.Sprintf("line %d: mounts entry is a %s, not a list", n.Line, kindName(n))
		return nil
	}
	for _, c := range n.Content {
		if c.Kind != yaml.ScalarNode {
			m.Invalid = fmt.Sprintf("line %d: mounts entry field is a %s, not a value", c.Line, kindName(c))
			return nil
		}
		if c.Tag == "!!null" {
			m.Fields = append(m.Fields, nil)
			continue
		}
		s := c.Value
		if c.Tag == "!!bool" {
			// Python's str(True).
			if b, err := strconv.ParseBool(strings.ToLower(s)); err == nil {
				s = map[bool]string{true: "True", false: "False"}[b]
			}
		}
		m.Fields = append(m.Fields, &s)
	}
	return nil
}

// Swap is the swap key. Size and MaxSize are bytes; SizeAuto asks for
// cloud-init's suggested size.
type Swap struct {
	Filename string
	Size     int64
	SizeAuto bool
	MaxSize  int64
}

// UnmarshalYAML reads filename (default /swap.img), size (bytes, a human
// size like "2G", or "auto") and maxsize.
func (s *Swap) UnmarshalYAML(n *yaml.Node) error {
	*s = Swap{Filename: "/swap.img"}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: swap: want a mapping, got %s", n.Line, kindName(n))
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch k.Value {
		case "filename":
			s.Filename = v.Value
		case "size":
			if strings.EqualFold(v.Value, "auto") {
				s.SizeAuto = true
				continue
			}
			b, err := HumanBytes(v.Value)
			if err != nil {
				return fmt.Errorf("line %d: swap.size: %w", v.Line, err)
			}
			s.Size = b
		case "maxsize":
			b, err := HumanBytes(v.Value)
			if err != nil {
				return fmt.Errorf("line %d: swap.maxsize: %w", v.Line, err)
			}
			s.MaxSize = b
		}
	}
	return nil
}

// HumanBytes is cloud-init's util.human2bytes: a number with an optional
// B, K, M, G or T suffix (powers of 1024, "KB" style accepted).
func HumanBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "b")
	mult := float64(1)
	if t != "" {
		switch strings.ToUpper(t[len(t)-1:]) {
		case "K":
			mult = 1 << 10
		case "M":
			mult = 1 << 20
		case "G":
			mult = 1 << 30
		case "T":
			mult = 1 << 40
		}
		if mult != 1 {
			t = t[:len(t)-1]
		}
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(t), 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("%q is not a size (want bytes or a number with K, M, G or T)", s)
	}
	return int64(f * mult), nil
}

// DiskSpec is one value of disk_setup, keyed by device.
type DiskSpec struct {
	// TableType is "mbr" (the default) or "gpt".
	TableType string `yaml:"table_type"`
	// Layout: Whole (layout: true) makes one partition of the whole disk;
	// otherwise Parts lists the partitions. No layout means no partitioning.
	Layout Layout `yaml:"layout"`
	// Overwrite partitions a disk that already holds a table or a filesystem.
	Overwrite bool `yaml:"overwrite"`
}

// Layout is disk_setup's layout: true, false, or a list whose items are a
// percentage of the disk or [percentage, partition type].
type Layout struct {
	Whole bool
	Parts []PartSpec
}

// PartSpec is one partition of a layout list.
type PartSpec struct {
	Percent int
	// Type is an MBR type number (83) or GPT type code (8300, 8200) as
	// cloud-init accepts them; empty means Linux filesystem.
	Type string
}

// UnmarshalYAML decodes true/false or the list form.
func (l *Layout) UnmarshalYAML(n *yaml.Node) error {
	*l = Layout{}
	switch n.Kind {
	case yaml.ScalarNode:
		l.Whole = isTrue(n)
		return nil
	case yaml.SequenceNode:
		for _, c := range n.Content {
			var p PartSpec
			item := c
			if c.Kind == yaml.SequenceNode {
				if len(c.Content) != 2 {
					return fmt.Errorf("line %d: disk_setup layout item: want [percent, type]", c.Line)
				}
				item = c.Content[0]
				p.Type = c.Content[1].Value
			}
			v, err := strconv.Atoi(item.Value)
			if err != nil || v <= 0 || v > 100 {
				return fmt.Errorf("line %d: disk_setup layout: %q is not a percentage", item.Line, item.Value)
			}
			p.Percent = v
			l.Parts = append(l.Parts, p)
		}
		return nil
	}
	return fmt.Errorf("line %d: disk_setup layout: want true, false or a list", n.Line)
}

// FsSpec is one item of fs_setup.
type FsSpec struct {
	Label      string `yaml:"label"`
	Filesystem string `yaml:"filesystem"`
	Device     string `yaml:"device"`
	// Partition is "auto", "any" (the default), "none" or a number.
	Partition string  `yaml:"partition"`
	Overwrite bool    `yaml:"overwrite"`
	ReplaceFS string  `yaml:"replace_fs"`
	ExtraOpts StrList `yaml:"extra_opts"`
	Cmd       StrList `yaml:"cmd"`
}

// StrList is a string or a list of strings.
type StrList []string

// UnmarshalYAML accepts one string (split on blanks, as cloud-init does for
// extra_opts) or a list.
func (s *StrList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*s = strings.Fields(n.Value)
		return nil
	}
	list, err := stringList(n)
	*s = list
	return err
}

func stringList(n *yaml.Node) ([]string, error) {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return nil, nil
		}
		return []string{n.Value}, nil
	case yaml.SequenceNode:
		out := make([]string, 0, len(n.Content))
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: want a string, got %s", c.Line, kindName(c))
			}
			out = append(out, c.Value)
		}
		return out, nil
	}
	return nil, fmt.Errorf("want a string or a list, got %s", kindName(n))
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		return "value " + strconv.Quote(n.Value)
	}
	return "node"
}
