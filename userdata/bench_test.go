package userdata

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
)

// benchDocument builds a deterministic 20-part MIME document (cloud-config
// parts with Merge-Type headers, scripts of every frequency, a boothook,
// base64 parts) whose gzip form is just under 16 KiB, the IMDS limit.
func benchDocument(tb testing.TB) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	noise := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		return base64.StdEncoding.EncodeToString(b)
	}
	build := func(noiseLen int) []byte {
		var b bytes.Buffer
		b.WriteString("Content-Type: multipart/mixed; boundary=\"===============0123456789==\"\nMIME-Version: 1.0\n\n")
		for i := 0; i < 20; i++ {
			b.WriteString("--===============0123456789==\n")
			switch i % 5 {
			case 0:
				fmt.Fprintf(&b, "Content-Type: text/cloud-config; charset=\"us-ascii\"\nMIME-Version: 1.0\nContent-Transfer-Encoding: 7bit\nMerge-Type: list(append)+dict(recurse_array,no_replace)+str()\nContent-Disposition: attachment; filename=\"cc-%d.yaml\"\n\n", i)
				fmt.Fprintf(&b, "#cloud-config\nhostname: host-%d\nruncmd:\n  - echo part %d\n  - [sh, -c, 'date > /run/p%d']\npackages: [pkg%d, [tool%d, '1.%d']]\nwrite_files:\n  - path: /etc/part-%d\n    encoding: b64\n    permissions: '0640'\n    content: %s\nusers:\n  - name: user%d\n    groups: [adm]\n", i, i, i, i, i, i, i, noise(noiseLen), i)
			case 1:
				fmt.Fprintf(&b, "Content-Type: text/x-shellscript\nContent-Disposition: attachment; filename=\"script-%d.sh\"\n\n#!/bin/sh\n# %s\necho %d\n", i, noise(noiseLen/2), i)
			case 2:
				fmt.Fprintf(&b, "Content-Type: text/x-shellscript-per-boot\nContent-Transfer-Encoding: base64\n\n%s\n", base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("#!/bin/sh\necho boot %d %s\n", i, noise(noiseLen/2)))))
			case 3:
				fmt.Fprintf(&b, "Content-Type: text/plain\n\n#cloud-boothook\n#!/bin/sh\necho hook %d\n", i)
			case 4:
				fmt.Fprintf(&b, "Content-Type: text/cloud-config\n\n#cloud-config\nmerge_how: 'dict(recurse_array)+list(append)'\nbootcmd: [echo %d]\nssh_authorized_keys: [ssh-ed25519 %s k%d]\n", i, noise(32), i)
			}
			b.WriteString("\n")
		}
		b.WriteString("--===============0123456789==--\n")
		var z bytes.Buffer
		w := gzip.NewWriter(&z)
		w.Write(b.Bytes())
		w.Close()
		return z.Bytes()
	}
	n := 16
	doc := build(n)
	for {
		next := build(n + 8)
		if len(next) > 16<<10 {
			break
		}
		doc, n = next, n+8
	}
	return doc
}

// TestBenchDocumentIsRealistic keeps the benchmark input honest (and
// writes it out for testdata/bench.sh when USERDATA_BENCH_DOC is set).
func TestBenchDocumentIsRealistic(t *testing.T) {
	doc := benchDocument(t)
	if len(doc) > 16<<10 || len(doc) < 15<<10 {
		t.Fatalf("benchmark document is %d bytes gzip'd, want just under 16 KiB", len(doc))
	}
	ud, err := Parse(context.Background(), doc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ud.Parts) != 20 || len(ud.CloudConfig.Runcmd) != 8 || len(ud.Warnings) != 0 {
		t.Fatalf("%d parts, %d runcmd, warnings %q", len(ud.Parts), len(ud.CloudConfig.Runcmd), ud.Warnings)
	}
	if p := os.Getenv("USERDATA_BENCH_DOC"); p != "" {
		if err := os.WriteFile(p, doc, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// BenchmarkParse16KiBGzip20PartMIME measures decode + MIME walk + merge +
// typed decode of the benchmark document; testdata/bench.sh runs
// cloud-init's UserDataProcessor on the same bytes.
func BenchmarkParse16KiBGzip20PartMIME(b *testing.B) {
	doc := benchDocument(b)
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(context.Background(), doc, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
