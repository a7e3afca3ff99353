#!/bin/sh
# Median time of the whole network handler (gather from an in-memory
# metadata map, read kernel state, plan, diff, apply) for 4 ENIs x 10
# addresses, configured from scratch in a throw-away network namespace.
# Needs root. Usage: network/bench/reconcile.sh [COUNT]
set -eu
cd "$(dirname "$0")/.."
count=${1:-10}
GOFLAGS=-mod=mod go test -run '^$' -bench 'Reconcile|PlanDiff' -benchtime 200x -count "$count" . |
awk '/^Benchmark/ { n[$1]++; v[$1, n[$1]] = $3 }
END {
	for (b in n) {
		m = n[b]
		for (i = 1; i <= m; i++) a[i] = v[b, i]
		for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
		med = (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
		printf "%-45s median %10.3f ms/op over %d runs\n", b, med / 1e6, m
	}
}' | sort
