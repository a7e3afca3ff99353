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
#   FLINT_BASE=/path/to/flint  also time this one (an older build) in the same
#                          rounds, and print how the two flints compare
#   RUNS=N                 runs per command (default 200)
#   ROUNDS=N               in N alternating rounds (default 5)
#   --check                exit 1 if a speed-up target is missed
#                          (--all >= 20x, -i >= 5x)
# Needs: root, ip (iproute2), hyperfine, amazon-ec2-utils, curl, python3,
# go (to build).
set -euo pipefail

cd "$(dirname "$0")/.."
check=0
[[ "${1:-}" == "--check" ]] && check=1
runs=${RUNS:-200}
script=/usr/bin/ec2-metadata
fixture=$PWD/imds/imdstest/testdata/instance.yaml

for tool in ip hyperfine curl python3 "$script"; do
	command -v "$tool" >/dev/null || { echo "query.sh: needs $tool" >&2; exit 2; }
done
[[ $(id -u) == 0 ]] || { echo "query.sh: needs root (network namespaces)" >&2; exit 2; }

source bench/lib.sh
work=$(mktemp -d)
ns=flint-bench-$$
emu_pid=
trap netns_cleanup EXIT
install_flint "$work"
base=
if [[ -n "${FLINT_BASE:-}" ]]; then
	base=$work/flint-base
	install -m 0755 "$FLINT_BASE" "$base"
fi

# Neither tool may see a proxy or an inherited token.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY IMDS_TOKEN
for v in $(compgen -e | grep '^AWS_EC2_METADATA' || true); do unset "$v"; done
export HOME=$work LC_ALL=C.UTF-8

serve_in_netns "$ns" "$fixture" "$work/emulate.log" || exit 1

# Time only what produces the same bytes.
for args in "-i" "--all"; do
	for f in "$flint" ${base:+"$base"}; do
		if ! cmp -s <(ip netns exec "$ns" "$script" $args 2>/dev/null) <(ip netns exec "$ns" "$f" query $args); then
			echo "query.sh: outputs of '$args' differ ($f); fix that before timing" >&2
			exit 1
		fi
	done
done

rounds=${ROUNDS:-5}
[[ "$rounds" =~ ^[1-9][0-9]*$ && "$runs" =~ ^[1-9][0-9]*$ ]] ||
	{ echo "query.sh: RUNS and ROUNDS must be positive numbers" >&2; exit 2; }
per=$(((runs + rounds - 1) / rounds))
echo "flint: $("$flint" version 2>/dev/null || echo "$flint")  runs: $((per * rounds)) in $rounds rounds  $(nproc) CPUs  load: $(cut -d' ' -f1-3 /proc/loadavg)"

# The tools take turns: each round is one hyperfine run that times both
# back to back (which one goes first alternates), and the times of all
# rounds are pooled. One long run per tool would compare moments up to a
# minute apart, and the load of this machine's host moves in between.
for pair in -i --all; do
	for ((r = 1; r <= rounds; r++)); do
		cmds=("$script $pair" "$flint query $pair")
		[[ -n "$base" ]] && cmds+=("$base query $pair")
		((r % 2 == 0)) && cmds=("${cmds[@]:1}" "${cmds[0]}")
		ip netns exec "$ns" hyperfine -N --style none --warmup 5 --runs "$per" \
			--export-json "$work/times$pair.$r.json" "${cmds[@]}" >/dev/null 2>"$work/hyperfine.log" ||
			{ cat "$work/hyperfine.log" >&2; exit 1; }
	done
done

# Ratios use pooled medians: on a shared machine a few stalled runs of
# the slow script would otherwise inflate its mean and flatter flint. The
# spread of the rounds' own ratios and the CPU ratio (user+system,
# children included), which moves less than wall time when other work
# shares the machine, are printed too.
echo
status=0
python3 - "$work" "$script" "$rounds" "$base" <<'PY' || status=1
import json, statistics, sys

work, script, rounds, base = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
status = 0
for pair, target in (("-i", 5), ("--all", 20)):
    times = {"s": [], "f": [], "b": []}
    cpu = {"s": [], "f": [], "b": []}
    ratios = []
    for r in range(1, rounds + 1):
        with open(f"{work}/times{pair}.{r}.json") as fh:
            results = json.load(fh)["results"]
        med = {}
        for x in results:
            cmd = x["command"]
            tool = "s" if cmd.startswith(script + " ") else "b" if base and cmd.startswith(base + " ") else "f"
            times[tool] += x["times"]
            cpu[tool].append(x["user"] + x["system"])
            med[tool] = statistics.median(x["times"])
        ratios.append(med["s"] / med["f"])
    s, f = statistics.median(times["s"]), statistics.median(times["f"])
    r = s / f
    met = r >= target
    status |= not met
    print(f"{pair:<6} median: ec2-metadata {s * 1000:7.2f} ms, flint {f * 1000:6.2f} ms: {r:5.1f}x "
          f"(target {target}x: {'met' if met else 'MISSED'}); rounds {min(ratios):.1f}x-{max(ratios):.1f}x; "
          f"mean ratio {statistics.mean(times['s']) / statistics.mean(times['f']):.1f}x; "
          f"CPU ratio {statistics.mean(cpu['s']) / statistics.mean(cpu['f']):.1f}x")
    if base:
        b = statistics.median(times["b"])
        print(f"{'':<6} baseline flint {b * 1000:6.2f} ms: ec2-metadata / baseline {s / b:5.1f}x; "
              f"this flint takes {f / b * 100:.0f}% of the baseline's time")
sys.exit(status)
PY
if ((check)); then exit $status; fi
