package userdata

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

func addCorpusSeeds(f *testing.F, extra ...any) {
	files, _ := filepath.Glob("testdata/corpus/*.txt")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err == nil {
			f.Add(append([]any{b}, extra...)...)
		}
	}
}

// FuzzParse drives the MIME walk, start-line detection, archives,
// decompression and merging with arbitrary bytes: it must never panic,
// must name every part, and must always produce printable JSON.
func FuzzParse(f *testing.F) {
	addCorpusSeeds(f)
	f.Add(gz(f, []byte("#cloud-config\nhostname: x\n")))
	f.Fuzz(func(t *testing.T, raw []byte) {
		opts := Options{NoInclude: true, MaxDecompressed: 1 << 20, MaxParts: 200, InstanceData: testInstanceData}
		idx := 0
		if len(raw) > 0 && raw[0]&1 == 1 {
			opts.LaunchIndex = &idx
		}
		in, err := Inspect(context.Background(), raw, opts)
		if err != nil {
			return
		}
		for _, p := range in.Parts {
			if p.Filename == "" || p.ContentType == "" {
				t.Fatalf("unnamed part %+v", p)
			}
		}
		if _, err := json.Marshal(in); err != nil {
			t.Fatalf("inspection does not marshal: %v", err)
		}
	})
}

// FuzzCloudConfig drives YAML 1.1 decoding, the typed decoder and every
// merger with arbitrary documents.
func FuzzCloudConfig(f *testing.F) {
	addCorpusSeeds(f, DefaultMergeHow)
	f.Add([]byte("a: &a [*a]\n"), "dict(no_replace,recurse_list,recurse_str)+list(append)+str(append)")
	f.Fuzz(func(t *testing.T, doc []byte, how string) {
		v, err := decodeYAML11(doc)
		if err != nil {
			return
		}
		m, ok := v.(map[string]any)
		if !ok {
			return
		}
		cc, _ := DecodeCloudConfig(m)
		if cc == nil {
			t.Fatal("nil CloudConfig")
		}
		for _, w := range cc.WriteFiles {
			w.Decoded()
		}
		mh, err := ParseMergeHow(how)
		if err != nil {
			return
		}
		c, err := mh.compile()
		if err != nil {
			return
		}
		out, err := c.merge(map[string]any{"runcmd": []any{"x"}, "s": "str", "d": map[string]any{"k": 1}}, m)
		if err != nil {
			return
		}
		if _, err := json.Marshal(out); err != nil {
			t.Fatalf("merged document does not marshal: %v", err)
		}
	})
}
