package modules

import (
	"archive/tar"
	"errors"
	"fmt"
	"strings"
)

// ErrRefused is wrapped by every error that rejects a bundle for what it
// contains (as opposed to an I/O failure): test with errors.Is.
var ErrRefused = errors.New("bundle refused")

// RefusedError says which bundle entry was refused and why.
type RefusedError struct {
	Entry  string // the name as it stood in the archive; empty for the bundle as a whole
	Reason string
}

func (e *RefusedError) Error() string {
	if e.Entry == "" {
		return "bundle refused: " + e.Reason
	}
	return fmt.Sprintf("bundle entry %q refused: %s", e.Entry, e.Reason)
}

// Is makes errors.Is(err, ErrRefused) true for every refusal.
func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

func refuse(entry, format string, args ...any) error {
	return &RefusedError{Entry: entry, Reason: fmt.Sprintf(format, args...)}
}

// Entry is the decision on one archive entry: where it lands inside the
// release tree (Rel, "" for the tree itself, slash-separated, clean) or that
// it is one of the parent directories of the tree (Parent) and is skipped.
type Entry struct {
	Rel    string
	Parent bool
	// Link is, for hard links, the tree-relative path of the link target.
	Link string
}

// CheckEntry decides, from the header alone, whether an archive entry may be
// extracted into the tree of release and where. Both bundle layouts are
// accepted: lib/modules/<release>/… (a package's file layout) and
// <release>/… (the historical ec2-modules-*.tgz). Everything else is refused
// with the reason: absolute or ".." paths, entries outside the tree or of
// another release, devices, FIFOs, setuid/setgid bits, symbolic links whose
// target leaves the tree, hard links to anything outside it. Limits, duplicate
// paths and links through other links are checked by the extractor, which
// knows what came before.
func CheckEntry(h *tar.Header, release string) (Entry, error) {
	name := h.Name
	if err := validRelease(release); err != nil {
		return Entry{}, refuse("", "%v", err)
	}
	switch h.Typeflag {
	case tar.TypeReg, tar.TypeDir, tar.TypeSymlink, tar.TypeLink:
	case tar.TypeChar, tar.TypeBlock:
		return Entry{}, refuse(name, "device nodes are not allowed")
	case tar.TypeFifo:
		return Entry{}, refuse(name, "FIFOs are not allowed")
	default:
		return Entry{}, refuse(name, "entry type %q is not allowed", string(rune(h.Typeflag)))
	}
	if h.Mode&(0o4000|0o2000) != 0 {
		return Entry{}, refuse(name, "setuid/setgid mode %#o is not allowed", h.Mode&0o7777)
	}
	if h.Size < 0 {
		return Entry{}, refuse(name, "negative size")
	}
	comps, err := splitName(name)
	if err != nil {
		return Entry{}, err
	}
	rest, parent, err := underRelease(name, comps, release, h.Typeflag == tar.TypeDir)
	if err != nil {
		return Entry{}, err
	}
	if parent {
		return Entry{Parent: true}, nil
	}
	e := Entry{Rel: strings.Join(rest, "/")}
	if e.Rel == "" && h.Typeflag != tar.TypeDir {
		return Entry{}, refuse(name, "the release directory itself must be a directory")
	}
	switch h.Typeflag {
	case tar.TypeSymlink:
		if err := checkSymlink(name, rest, h.Linkname); err != nil {
			return Entry{}, err
		}
	case tar.TypeLink:
		lcomps, err := splitName(h.Linkname)
		if err != nil {
			return Entry{}, refuse(name, "hard link target %q: %s", h.Linkname, err.(*RefusedError).Reason)
		}
		lrest, lparent, err := underRelease(h.Linkname, lcomps, release, false)
		if err != nil || lparent || len(lrest) == 0 {
			return Entry{}, refuse(name, "hard link target %q is outside lib/modules/%s", h.Linkname, release)
		}
		e.Link = strings.Join(lrest, "/")
	}
	return e, nil
}

// splitName turns an archive name into clean components, refusing absolute
// paths and "..": a bundle that needs either is not a module tree.
func splitName(name string) ([]string, error) {
	if name == "" {
		return nil, refuse(name, "empty name")
	}
	if strings.ContainsRune(name, 0) {
		return nil, refuse(name, "name contains a NUL byte")
	}
	if strings.HasPrefix(name, "/") {
		return nil, refuse(name, "absolute path")
	}
	var comps []string
	for _, c := range strings.Split(name, "/") {
		switch c {
		case "", ".":
			continue
		case "..":
			return nil, refuse(name, `path contains ".."`)
		}
		comps = append(comps, c)
	}
	if len(comps) == 0 {
		return nil, refuse(name, "empty path")
	}
	return comps, nil
}

// underRelease strips the bundle layout prefix. parent reports lib/ and
// lib/modules/ themselves, which only directories may be.
func underRelease(name string, comps []string, release string, isDir bool) (rest []string, parent bool, err error) {
	outside := func() error { return refuse(name, "outside lib/modules/%s", release) }
	if comps[0] == "lib" {
		switch {
		case len(comps) == 1 || (len(comps) == 2 && comps[1] == "modules"):
			if !isDir {
				return nil, false, outside()
			}
			return nil, true, nil
		case comps[1] != "modules":
			return nil, false, outside()
		case comps[2] != release:
			return nil, false, refuse(name, "belongs to release %q, not %q", comps[2], release)
		}
		return comps[3:], false, nil
	}
	if comps[0] != release {
		if looksLikeRelease(comps[0]) {
			return nil, false, refuse(name, "belongs to release %q, not %q", comps[0], release)
		}
		return nil, false, outside()
	}
	return comps[1:], false, nil
}

// looksLikeRelease tells a foreign release directory ("5.10.0-9-amd64") from
// any other top-level name, only to give the clearer of two refusals.
func looksLikeRelease(s string) bool {
	return len(s) > 2 && s[0] >= '0' && s[0] <= '9' && strings.ContainsRune(s, '.')
}

// checkSymlink refuses targets that leave the tree when resolved lexically
// from the link's directory. Chains through other links are checked after
// extraction, by resolving each link beneath the tree.
func checkSymlink(name string, rest []string, target string) error {
	if target == "" {
		return refuse(name, "symbolic link with an empty target")
	}
	if strings.ContainsRune(target, 0) {
		return refuse(name, "symbolic link target contains a NUL byte")
	}
	if strings.HasPrefix(target, "/") {
		return refuse(name, "symbolic link to absolute path %q", target)
	}
	depth := len(rest) - 1 // the link's directory, relative to the tree
	for _, c := range strings.Split(target, "/") {
		switch c {
		case "", ".":
		case "..":
			depth--
			if depth < 0 {
				return refuse(name, "symbolic link target %q leaves the release tree", target)
			}
		default:
			depth++
		}
	}
	return nil
}
