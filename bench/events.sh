#!/bin/bash
# Idle cost of `flint events watch`: CPU time, RSS, requests per minute and
# token requests over a quiet period (default 60 s) with the default
# periods, against flint's emulator.
#
# Everything runs inside a network namespace this script creates, with
# 169.254.169.254/32 on its lo; the watcher runs with no endpoint
# configured (endpoint mode auto), so nothing may run in the host
# namespace.
#
# Usage: sudo bench/events.sh
#   FLINT=/path/to/flint   measure a copy of this binary instead of building one
#   SECONDS_IDLE=N         how long to watch (default 60)
# Needs: root, ip (iproute2), ss, go (to build).
# Prints figures; asserts nothing.
set -euo pipefail

cd "$(dirname "$0")/.."
source bench/lib.sh
idle=${SECONDS_IDLE:-60}
[[ $(id -u) == 0 ]] || { echo "events.sh: needs root (network namespaces)" >&2; exit 2; }
for tool in ip ss; do
	command -v "$tool" >/dev/null || { echo "events.sh: needs $tool" >&2; exit 2; }
done

work=$(mktemp -d)
ns=flint-bench-ev-$$
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	ip netns del "$ns" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

install_flint "$work"
ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" addr add 169.254.169.254/32 dev lo

ip netns exec "$ns" "$flint" emulate --listen 169.254.169.254:80 >/dev/null 2>>"$work/requests.log" &
pids+=($!)
for _ in $(seq 100); do
	ip netns exec "$ns" bash -c 'exec 3<>/dev/tcp/169.254.169.254/80' 2>/dev/null && break
	sleep 0.05
done

mkdir -p "$work/root/etc/flint/events.d"
printf 'log:\n  target: stderr\n' >"$work/root/etc/flint/flint.yaml"
env -u AWS_EC2_METADATA_SERVICE_ENDPOINT -u AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE \
	ip netns exec "$ns" "$flint" events watch --root "$work/root" 2>"$work/watch.log" &
watcher=$!
pids+=($watcher)
sleep 1 # start-up: the first poll of every path, the token
n0=$(wc -l <"$work/requests.log")
read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$watcher/stat")
sleep "$idle"
read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$watcher/stat")
tck=$(getconf CLK_TCK)
rss=$(awk '/^VmRSS/ {print $2}' "/proc/$watcher/status")
hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$watcher/status")
conns=$(ip netns exec "$ns" ss -Htn state established '( dport = :80 )' | wc -l)
tail -n +"$((n0 + 1))" "$work/requests.log" >"$work/window.log"
requests=$(grep -c ' GET ' "$work/window.log" || true)
puts=$(grep -c ' PUT ' "$work/window.log" || true)
puts_all=$(grep -c ' PUT ' "$work/requests.log" || true)
failed=$(awk '$2 ~ /^(GET|PUT)$/ && $4 != 200 && $4 != 404' "$work/window.log" | wc -l)

cpu_ms=$(( (u1 - u0 + s1 - s0) * 1000 / tck ))
echo "flint events watch, idle for ${idle}s with the default periods (spot/rebalance/lifecycle 5s, scheduled 5m):"
echo "  CPU time:            ${cpu_ms} ms ($(awk -v c="$cpu_ms" -v s="$idle" 'BEGIN {printf "%.3f", c / (s * 10)}') % of one core)"
echo "  RSS:                 $((rss / 1024)) MiB now, $((hwm / 1024)) MiB peak (${rss} kB / ${hwm} kB)"
echo "  requests:            ${requests} GETs ($(awk -v r="$requests" -v s="$idle" 'BEGIN {printf "%.1f", r * 60 / s}') per minute), ${failed} not 200/404"
echo "  token requests:      ${puts} during the idle period, ${puts_all} since the watcher started"
echo "  connections to IMDS: ${conns} established at the end"
