package userdata

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
)

// Inspection is what `flint userdata inspect --json` prints.
type Inspection struct {
	Parts       []PartInfo     `json:"parts"`
	CloudConfig map[string]any `json:"cloud_config"`
	// Warnings are printed separately (to stderr), never in the JSON.
	Warnings []string `json:"-"`
}

// PartInfo describes one part without its content.
type PartInfo struct {
	ContentType string `json:"content_type"`
	Filename    string `json:"filename"`
	Size        int    `json:"size"`
	SHA256      string `json:"sha256"`
}

// Inspect parses raw user-data and returns the value `flint userdata
// inspect --json` prints: each part's content type, filename, payload size
// and SHA-256 (of the decoded payload, before any template rendering), and
// the merged cloud-config. It has no effects beyond what opts allow (set
// opts.NoInclude for an offline inspection; #include-once caching happens
// only when opts.IncludeOnceDir is set).
func Inspect(ctx context.Context, raw []byte, opts Options) (*Inspection, error) {
	ud, err := Parse(ctx, raw, opts)
	if err != nil {
		return nil, err
	}
	out := &Inspection{Parts: make([]PartInfo, 0, len(ud.Parts)), CloudConfig: ud.Config, Warnings: ud.Warnings}
	for _, p := range ud.Parts {
		sum := sha256.Sum256(p.Payload)
		out.Parts = append(out.Parts, PartInfo{
			ContentType: p.ContentType,
			Filename:    p.Filename,
			Size:        len(p.Payload),
			SHA256:      hex.EncodeToString(sum[:]),
		})
	}
	return out, nil
}
