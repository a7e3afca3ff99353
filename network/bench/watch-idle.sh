#!/bin/sh
# CPU and memory of "network watch" sitting idle: builds the package's test
# binary, runs its measurement subject (TestMain: Watch over an in-memory
# metadata map) inside a namespace made here with three veth-backed ENIs,
# and samples /proc for DURATION seconds after start-up settles.
# Needs root. Usage: network/bench/watch-idle.sh [DURATION]
set -eu
cd "$(dirname "$0")/.."
duration=${1:-60}
tmp=$(mktemp -d)
ns=flint-idle-$$
vpc=flint-idle-vpc-$$
cleanup() {
	[ -n "${pid:-}" ] && kill "$pid" 2>/dev/null || true
	ip netns del "$ns" 2>/dev/null || true
	ip netns del "$vpc" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
GOFLAGS=-mod=mod go test -c -o "$tmp/network.test" .
ip netns add "$ns"
ip netns add "$vpc"
ip -n "$ns" link set lo up
i=0
for mac in 0e:00:00:00:00:01 0e:00:00:00:00:02 0e:00:00:00:00:03; do
	ip -n "$ns" link add "eth$i" address "$mac" type veth peer name "p$i" netns "$vpc"
	i=$((i + 1))
done
FLINT_WATCH_IDLE=1 ip netns exec "$ns" "$tmp/network.test" >"$tmp/log" 2>&1 &
pid=$!
sleep 2
# ip netns exec execs the binary in place, so $pid is the watcher itself.
ticks() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
t0=$(ticks)
sleep "$duration"
t1=$(ticks)
rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status")
hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$pid/status")
threads=$(awk '/^Threads/ { print $2 }' "/proc/$pid/status")
kill -TERM "$pid"
wait "$pid" || true
pid=
echo "watch idle over ${duration}s: cpu $(( (t1 - t0) * 1000 / hz )) ms ($(awk -v t=$((t1 - t0)) -v hz="$hz" -v d="$duration" 'BEGIN { printf "%.3f", 100 * t / hz / d }')%), rss ${rss} kB, peak rss ${hwm} kB, threads ${threads}"
echo "reconciliations: $(grep -c reconciled "$tmp/log")"
grep -q 'reconciled: [1-9][0-9]* changes, err <nil>' "$tmp/log" || { echo "watch never configured the links:"; cat "$tmp/log"; exit 1; }
