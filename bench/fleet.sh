#!/bin/sh
# Fleet load figures: N concurrent "flint modules install" processes (default
# 50) against one loopback server that throttles every third instance with
# 503 SlowDown + Retry-After and cuts every fifth one's download halfway.
# Prints installs, bytes served, retries, resumes, p50 and p99 install time.
#
#   bench/fleet.sh [FLINT_BINARY] [N]
# Runs inside a private network namespace (loopback only); needs root.
set -eu
cd "$(dirname "$0")/.."
bin=${1:-bin/flint}
n=${2:-50}
[ -x "$bin" ] || { echo "fleet: build flint first (make build)" >&2; exit 1; }
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
FLINT_BIN=$bin FLINT_FLEET_N=$n unshare -n sh -c 'ip link set lo up && GOFLAGS=-mod=mod go test -count=1 -run TestAFleetInstallingAtOnce -v ./e2e' |
	sed -n 's/.*fleet: /fleet: /p'
