#!/bin/bash
# Whole-process start-up of three one-shot commands, `flint version`,
# `flint query -i` and `flint ssh-keys USER`, for this build and an older
# one (FLINT_BASE) in the same alternating rounds: does a change make them
# slower?
#
# Everything runs inside a network namespace this script creates, with
# 169.254.169.254/32 on its lo and flint's emulator listening there, so
# the commands run with their default endpoint.
#
# Usage: sudo FLINT_BASE=/path/to/old/flint bench/startup.sh
#   FLINT=/path/to/flint   time a copy of this binary instead of building one
#   RUNS=N                 runs per command and binary (default 300)
#   ROUNDS=N               in N alternating rounds (default 6)
# Wall times are pooled medians; the per-round ratios show their spread, and
# the CPU ratio (user+system, medians of the rounds' means) moves less than
# wall time when other work shares the machine. Where valgrind is installed,
# the user-space instructions of one run of each (cachegrind) follow: they
# do not move with the machine's load.
# Needs: root, ip (iproute2), hyperfine, python3, go (to build).
set -euo pipefail

cd "$(dirname "$0")/.."
[[ -n "${FLINT_BASE:-}" ]] || { echo "startup.sh: set FLINT_BASE to the flint to compare with" >&2; exit 2; }
for tool in ip hyperfine python3; do
	command -v "$tool" >/dev/null || { echo "startup.sh: needs $tool" >&2; exit 2; }
done
[[ $(id -u) == 0 ]] || { echo "startup.sh: needs root (network namespaces)" >&2; exit 2; }
runs=${RUNS:-300}
rounds=${ROUNDS:-6}
[[ "$rounds" =~ ^[1-9][0-9]*$ && "$runs" =~ ^[1-9][0-9]*$ ]] ||
	{ echo "startup.sh: RUNS and ROUNDS must be positive numbers" >&2; exit 2; }
fixture=$PWD/imds/imdstest/testdata/instance.yaml

source bench/lib.sh
work=$(mktemp -d)
ns=flint-startup-$$
emu_pid=
trap netns_cleanup EXIT
install_flint "$work"
base=$work/flint-base
install -m 0755 "$FLINT_BASE" "$base"

unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY
for v in $(compgen -e | grep '^AWS_EC2_METADATA' || true); do unset "$v"; done
export HOME=$work LC_ALL=C.UTF-8

serve_in_netns "$ns" "$fixture" "$work/emulate.log" || exit 1

root=$work/root
mkdir -p "$root/etc/flint"
printf 'users:\n  default_user:\n    name: admin\n' >"$root/etc/flint/flint.yaml"

# Time only what produces the same bytes.
for args in "version" "query -i" "ssh-keys --root $root admin"; do
	a=$(ip netns exec "$ns" "$flint" $args | grep -v '^flint ' || true)
	b=$(ip netns exec "$ns" "$base" $args | grep -v '^flint ' || true)
	[[ "$a" == "$b" && ( "$args" == version || -n "$a" ) ]] ||
		{ echo "startup.sh: outputs of '$args' differ or are empty; fix that before timing" >&2; exit 1; }
done

per=$(((runs + rounds - 1) / rounds))
echo "runs: $((per * rounds)) per command and binary in $rounds rounds  $(nproc) CPUs  load: $(cut -d' ' -f1-3 /proc/loadavg)"
i=0
for args in "version" "query -i" "ssh-keys --root $root admin"; do
	i=$((i + 1))
	for ((r = 1; r <= rounds; r++)); do
		cmds=("$base $args" "$flint $args")
		((r % 2 == 0)) && cmds=("${cmds[1]}" "${cmds[0]}")
		ip netns exec "$ns" hyperfine -N --style none --warmup 10 --runs "$per" \
			--export-json "$work/t$i.$r.json" "${cmds[@]}" >/dev/null 2>"$work/hyperfine.log" ||
			{ cat "$work/hyperfine.log" >&2; exit 1; }
	done
done

python3 - "$work" "$rounds" "$base" <<'PY'
import json, statistics, sys
work, rounds, base = sys.argv[1], int(sys.argv[2]), sys.argv[3]
print(f"{'command':<10} {'base ms':>8} {'new ms':>8} {'new/base':>9}   {'per-round ratios':<16} {'CPU new/base':>12}")
for i, name in enumerate(["version", "query -i", "ssh-keys"], 1):
    t = {"b": [], "n": []}
    cpu = {"b": [], "n": []}
    ratios = []
    for r in range(1, rounds + 1):
        with open(f"{work}/t{i}.{r}.json") as fh:
            med = {}
            for x in json.load(fh)["results"]:
                k = "b" if x["command"].startswith(base + " ") else "n"
                t[k] += x["times"]
                cpu[k].append(x["user"] + x["system"])
                med[k] = statistics.median(x["times"])
        ratios.append(med["n"] / med["b"])
    b, n = statistics.median(t["b"]) * 1e3, statistics.median(t["n"]) * 1e3
    c = statistics.median(cpu["n"]) / statistics.median(cpu["b"])
    print(f"{name:<10} {b:8.3f} {n:8.3f} {n / b:9.3f}   {min(ratios):.3f}..{max(ratios):.3f}     {c:12.3f}")
PY

command -v valgrind >/dev/null || exit 0
count() { # binary args...: user-space instructions of one run
	ip netns exec "$ns" valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null "$@" 2>&1 >/dev/null |
		awk '/I +refs:/ {gsub(",", "", $NF); print $NF}'
}
echo
printf '%-10s %12s %12s %9s\n' "command" "base instr" "new instr" "new/base"
for args in "version" "query -i" "ssh-keys --root $root admin"; do
	b=$(count "$base" $args)
	n=$(count "$flint" $args)
	printf '%-10s %12s %12s %9.3f\n' "${args%% --*}" "$b" "$n" "$(echo "$n $b" | awk '{print $1 / $2}')"
done
