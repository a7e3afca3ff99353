package modules

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// UpdateManifestFile adds e to the manifest file at path, or replaces the
// entry that selects the same kernels (same release, kernel_id and arch),
// and writes the file back atomically. A missing file starts a new
// manifest. It returns true when an entry was replaced. The file keeps the
// format ParseManifest reads; a signature made before the update no longer
// verifies, so sign after the last update.
func UpdateManifestFile(path string, e ManifestEntry) (replaced bool, err error) {
	m := &Manifest{}
	raw, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return false, fmt.Errorf("manifest %s: %w", path, err)
	case len(bytes.TrimSpace(raw)) > 0:
		if m, err = ParseManifest(raw); err != nil {
			return false, fmt.Errorf("manifest %s: %w (left as it was)", path, err)
		}
	}
	for i, old := range m.Bundles {
		if old.Release == e.Release && old.KernelID == e.KernelID && old.Arch == e.Arch {
			m.Bundles[i], replaced = e, true
			break
		}
	}
	if !replaced {
		m.Bundles = append(m.Bundles, e)
	}
	// The result must be a manifest an instance accepts.
	out, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return false, err
	}
	out = append(out, '\n')
	if _, err := ParseManifest(out); err != nil {
		return false, fmt.Errorf("manifest %s: the new entry: %w (left as it was)", path, err)
	}
	if err := WriteFileAtomic(path, func(w io.Writer) error { _, err := w.Write(out); return err }); err != nil {
		return false, fmt.Errorf("manifest %s: %w", path, err)
	}
	return replaced, nil
}
