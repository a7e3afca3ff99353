#!/bin/bash
# Whole-process timing of `flint query` against amazon-ec2-utils' ec2-metadata
# (-i and --all), both talking to the same flint emulator, in the same run.
#
# Everything runs inside a network namespace this script creates, with
# 169.254.169.254/32 on its lo: the script hard-codes that address and sends
# a token PUT before reading its arguments, so it must never run in the
# host namespace.
#
# Usage: sudo bench/query.sh [--check]
#   FLINT=/path/to/flint   time a copy of this binary instead of building one
#   RUNS=N                 hyperfine runs per command (default 200)
#   --check                exit 1 if a speed-up target is missed
#                          (--all >= 20x, -i >= 5x)
# Needs: root, ip (iproute2), hyperfine, amazon-ec2-utils, curl, go (to build).
set -euo pipefail

cd "$(dirname "$0")/.."
check=0
[[ "${1:-}" == "--check" ]] && check=1
runs=${RUNS:-200}
script=/usr/bin/ec2-metadata
fixture=$PWD/imds/imdstest/testdata/instance.yaml

for tool in ip hyperfine curl "$script"; do
	command -v "$tool" >/dev/null || { echo "query.sh: needs $tool" >&2; exit 2; }
done
[[ $(id -u) == 0 ]] || { echo "query.sh: needs root (network namespaces)" >&2; exit 2; }

work=$(mktemp -d)
ns=flint-bench-$$
emu_pid=
cleanup() {
	[[ -n "$emu_pid" ]] && kill "$emu_pid" 2>/dev/null && wait "$emu_pid" 2>/dev/null
	ip netns del "$ns" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

source bench/lib.sh
flint=$(install_flint "$work")

# Neither tool may see a proxy or an inherited token.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY IMDS_TOKEN
for v in $(compgen -e | grep '^AWS_EC2_METADATA' || true); do unset "$v"; done
export HOME=$work LC_ALL=C.UTF-8

ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" addr add 169.254.169.254/32 dev lo
ip netns exec "$ns" "$flint" emulate --quiet --fixture "$fixture" --listen 169.254.169.254:80 >"$work/emulate.log" 2>&1 &
emu_pid=$!
for _ in $(seq 100); do
	ip netns exec "$ns" bash -c 'exec 3<>/dev/tcp/169.254.169.254/80' 2>/dev/null && break
	sleep 0.05
done
ip netns exec "$ns" bash -c 'exec 3<>/dev/tcp/169.254.169.254/80' 2>/dev/null ||
	{ echo "query.sh: emulator did not start:" >&2; cat "$work/emulate.log" >&2; exit 1; }

# Time only what produces the same bytes.
for args in "-i" "--all"; do
	if ! cmp -s <(ip netns exec "$ns" "$script" $args 2>/dev/null) <(ip netns exec "$ns" "$flint" query $args); then
		echo "query.sh: outputs of '$args' differ; fix that before timing" >&2
		exit 1
	fi
done

echo "flint: $("$flint" version 2>/dev/null || echo "$flint")  runs: $runs  $(nproc) CPUs  load: $(cut -d' ' -f1-3 /proc/loadavg)"
ip netns exec "$ns" hyperfine -N --warmup 20 --runs "$runs" --export-csv "$work/times.csv" \
	"$script -i" "$flint query -i" "$script --all" "$flint query --all"

# times.csv: command,mean,stddev,median,user,system,min,max (seconds).
# Ratios use medians: on a shared machine a few stalled runs of the slow
# script would otherwise inflate its mean and flatter flint.
column() { awk -F, -v c="$1" -v k="$2" 'NR > 1 && $1 == c { print $k }' "$work/times.csv"; }
status=0
# The CPU ratio (user+system, children included) is printed too: it moves
# less than wall time when other work shares the machine.
report() { # label script-command flint-command target
	awk -v l="$1" -v s="$(column "$2" 4)" -v f="$(column "$3" 4)" \
		-v sm="$(column "$2" 2)" -v fm="$(column "$3" 2)" \
		-v sc="$(column "$2" 5)" -v ss="$(column "$2" 6)" \
		-v fc="$(column "$3" 5)" -v fs="$(column "$3" 6)" -v t="$4" 'BEGIN {
		r = s / f
		printf "%-6s median: ec2-metadata %7.2f ms, flint %6.2f ms: %5.1fx (target %dx: %s); mean ratio %.1fx; CPU ratio %.1fx\n",
			l, s * 1000, f * 1000, r, t, (r >= t ? "met" : "MISSED"), sm / fm, (sc + ss) / (fc + fs)
		exit (r >= t ? 0 : 1)
	}' || status=1
}
echo
report "-i" "$script -i" "$flint query -i" 5
report "--all" "$script --all" "$flint query --all" 20
if ((check)); then exit $status; fi
