#!/bin/bash
# Whole-process timing of `flint userdata inspect FILE --json` against
# /usr/bin/python3 running Debian cloud-init's UserDataProcessor and its
# cloud-config merge on the same 16 KiB gzip'd 20-part MIME document (the
# userdata package's benchmark document), printing the same kind of JSON.
# Both outputs are compared (parts and merged cloud-config) before timing.
#
# No network is involved: the document has no #include.
#
# Usage: bench/userdata.sh [--check]
#   FLINT=/path/to/flint   time a copy of this binary instead of building one
#   RUNS=N                 hyperfine runs per command (default 100)
#   --check                exit 1 if flint is not >= 20x faster (median)
# Needs: hyperfine, cloud-init (Debian package), go (to build).
set -euo pipefail

cd "$(dirname "$0")/.."
check=0
[[ "${1:-}" == "--check" ]] && check=1
runs=${RUNS:-100}
python=/usr/bin/python3

command -v hyperfine >/dev/null || { echo "userdata.sh: needs hyperfine" >&2; exit 2; }
"$python" -c 'import cloudinit.user_data' 2>/dev/null || { echo "userdata.sh: needs the cloud-init package" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

source bench/lib.sh
install_flint "$work"

doc=$work/userdata.gz
USERDATA_BENCH_DOC="$doc" GOFLAGS=-mod=mod go test -count=1 -run '^TestBenchDocumentIsRealistic$' ./userdata >/dev/null

# What cloud-init does with user-data, as one process: decode, MIME walk,
# part naming, cloud-config merge; then the same JSON flint prints.
cat >"$work/cloudinit_inspect.py" <<'EOF'
import hashlib, json, os, sys, tempfile
from cloudinit import handlers, helpers, user_data, util
from cloudinit.handlers.cloud_config import CloudConfigPartHandler

def main():
    raw = open(sys.argv[1], "rb").read()
    with tempfile.TemporaryDirectory() as tmp:
        paths = helpers.Paths({"cloud_dir": os.path.join(tmp, "cloud"), "run_dir": os.path.join(tmp, "run")})
        os.makedirs(paths.get_ipath_cur("data"), exist_ok=True)
        msg = user_data.UserDataProcessor(paths).process(raw)
        cc = CloudConfigPartHandler(paths)
        cc.handle_part(None, handlers.CONTENT_START, None, None, None, None)
        parts = []
        for part in msg.walk():
            if part.get_content_maintype() == "multipart":
                continue
            ctype = part.get_content_type()
            payload = util.fully_decoded_payload(part) or b""
            if isinstance(payload, str):
                payload = payload.encode("utf-8", "surrogateescape")
            parts.append({"content_type": ctype, "filename": part.get_filename(),
                          "size": len(payload), "sha256": hashlib.sha256(payload).hexdigest()})
            if ctype == "text/cloud-config":
                headers = dict(part)
                headers["Content-Type"] = ctype
                cc.handle_part(None, ctype, part.get_filename(), payload, "always", headers)
    json.dump({"parts": parts, "cloud_config": cc.cloud_buf or {}}, sys.stdout, indent=2, default=str)

main()
EOF

py_cmd="$python $work/cloudinit_inspect.py $doc"
flint_cmd="$flint userdata inspect $doc --json"

# Time only what produces the same result.
$py_cmd >"$work/py.json"
$flint_cmd >"$work/flint.json"
"$python" - "$work/py.json" "$work/flint.json" <<'EOF'
import json, sys
py, fl = (json.load(open(p)) for p in sys.argv[1:3])
if py["parts"] != fl["parts"]:
    sys.exit("userdata.sh: parts differ between cloud-init and flint; fix that before timing")
if py["cloud_config"] != fl["cloud_config"]:
    sys.exit("userdata.sh: merged cloud-config differs between cloud-init and flint; fix that before timing")
print("outputs agree: %d parts, %d cloud-config keys" % (len(fl["parts"]), len(fl["cloud_config"])))
EOF

echo "document: $(wc -c <"$doc") bytes gzip'd; flint: $("$flint" version)  runs: $runs  $(nproc) CPUs  load: $(cut -d' ' -f1-3 /proc/loadavg)"
hyperfine -N --warmup 5 --runs "$runs" --export-csv "$work/times.csv" "$py_cmd" "$flint_cmd"

# times.csv: command,mean,stddev,median,user,system,min,max (seconds);
# the ratio uses medians, so a few stalled runs do not flatter either side.
column() { awk -F, -v c="$1" -v k="$2" 'NR > 1 && $1 == c { print $k }' "$work/times.csv"; }
awk -v p="$(column "$py_cmd" 4)" -v f="$(column "$flint_cmd" 4)" \
	-v pm="$(column "$py_cmd" 2)" -v fm="$(column "$flint_cmd" 2)" 'BEGIN {
	r = p / f
	printf "\nmedian: cloud-init %.1f ms, flint %.2f ms: %.0fx faster (target 20x: %s); mean ratio %.0fx\n",
		p * 1000, f * 1000, r, (r >= 20 ? "met" : "MISSED"), pm / fm
	exit (r >= 20 ? 0 : 1)
}' && status=0 || status=1
if ((check)); then exit $status; fi
