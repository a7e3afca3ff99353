#!/bin/sh
# Compare flint's in-process parse + merge of a 16 KiB gzip'd 20-part MIME
# document with cloud-init's UserDataProcessor + CloudConfigPartHandler on
# the same bytes (python timeit, in-process). Run from anywhere:
#   sh userdata/testdata/bench.sh
set -eu
cd "$(dirname "$0")/.."
doc=$(mktemp)
trap 'rm -f "$doc"' EXIT
USERDATA_BENCH_DOC="$doc" GOFLAGS=-mod=mod go test -count=1 -run '^TestBenchDocumentIsRealistic$' . >/dev/null
echo "document: $(wc -c <"$doc") bytes gzip'd"
echo "== flint (go test -bench) =="
GOFLAGS=-mod=mod go test -run '^$' -bench 'BenchmarkParse16KiBGzip20PartMIME' -benchtime 2s -count 3 . | grep -E '^Benchmark'
echo "== cloud-init 22.4 UserDataProcessor (/usr/bin/python3, timeit) =="
NO_PROXY='*' /usr/bin/python3 testdata/cloudinit_ref.py --bench "$doc" 200
