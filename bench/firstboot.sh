#!/bin/bash
# First boot, whole process: `flint run --root DIR` on a fresh root (the
# whole built-in chain, the fixture's user-data; live changes planned, not
# made) against flint's emulator on 127.0.0.1, for this build and an older
# one (FLINT_BASE) in alternating rounds. It reports, per binary, the
# fsync/fdatasync/syncfs calls of one first boot (strace -f -c) and the
# median wall time of the first boots of all rounds.
#
# Usage: FLINT_BASE=/path/to/old/flint bench/firstboot.sh
#   FLINT=/path/to/flint   time a copy of this binary instead of building one
#   RUNS=N                 first boots per binary and round (default 10)
#   ROUNDS=N               alternating rounds (default 6)
#   DIR=/path              where the roots are made (default /var/tmp: a disk,
#                          so the flushes cost what they cost on the machine)
# Needs: strace, python3, go (to build).
set -euo pipefail

cd "$(dirname "$0")/.."
[[ -n "${FLINT_BASE:-}" ]] || { echo "firstboot.sh: set FLINT_BASE to the flint to compare with" >&2; exit 2; }
for tool in strace python3; do
	command -v "$tool" >/dev/null || { echo "firstboot.sh: needs $tool" >&2; exit 2; }
done
runs=${RUNS:-10}
rounds=${ROUNDS:-6}
[[ "$rounds" =~ ^[1-9][0-9]*$ && "$runs" =~ ^[1-9][0-9]*$ ]] ||
	{ echo "firstboot.sh: RUNS and ROUNDS must be positive numbers" >&2; exit 2; }
source bench/lib.sh

work=$(mktemp -d "${DIR:-/var/tmp}/flint-firstboot.XXXXXX")
emu_pid=
cleanup() {
	[[ -n "$emu_pid" ]] && kill "$emu_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
install_flint "$work"
install -m 0755 "$FLINT_BASE" "$work/base"
declare -A bin=([new]="$flint" [base]="$work/base")

port=$((20000 + RANDOM % 20000))
"$flint" emulate --quiet --listen "127.0.0.1:$port" >"$work/emulate.log" 2>&1 &
emu_pid=$!
for _ in $(seq 100); do
	bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null && break
	sleep 0.05
done

# boot CMD...: one first boot on a fresh root, its wall time in elapsed
# (µs); flint's exit code 2 (degraded: live changes planned) is expected.
boot() {
	local root start rc=0
	root=$(mktemp -d "$work/root.XXXXXX")
	start=$(date +%s%N)
	"$@" run --root "$root" --endpoint "http://127.0.0.1:$port" >/dev/null 2>&1 || rc=$?
	elapsed=$((($(date +%s%N) - start) / 1000))
	rm -rf "$root"
	[[ $rc == 0 || $rc == 2 ]] || { echo "firstboot.sh: $* run exited $rc" >&2; exit 1; }
}

for name in base new; do
	boot strace -f -c -o "$work/$name.strace" -e trace=fsync,fdatasync,syncfs "${bin[$name]}"
	printf '%-5s flushes per first boot: %s\n' "$name" \
		"$(awk '$NF ~ /^(fsync|fdatasync|syncfs)$/ {printf "%s %s  ", $NF, $4; n += $4} END {print "total " n}' "$work/$name.strace")"
done

: >"$work/times"
for r in $(seq "$rounds"); do
	order="base new"
	((r % 2 == 0)) && order="new base"
	for name in $order; do
		for _ in $(seq "$runs"); do
			boot "${bin[$name]}"
			echo "$name $r $elapsed" >>"$work/times"
		done
	done
done
python3 - "$work/times" <<'PY'
import statistics, sys
t = {}
for line in open(sys.argv[1]):
    name, rnd, us = line.split()
    t.setdefault(name, {}).setdefault(int(rnd), []).append(int(us) / 1000)
for name in ("base", "new"):
    pooled = [x for r in t[name].values() for x in r]
    print(f"{name:5} first boot: median {statistics.median(pooled):.1f} ms over {len(pooled)} runs")
ratios = [statistics.median(t["new"][r]) / statistics.median(t["base"][r]) for r in sorted(t["new"])]
print("new/base per round: " + " ".join(f"{x:.2f}" for x in ratios))
PY
