#!/bin/sh
# make bench: every benchmark against the tool flint replaces, in one go.
# Needs root (network namespaces) and the packages make deps installs.
# Each script prints its own figures and target verdicts.
set -u
flint=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
cd "$(dirname "$0")/.."
status=0
run() { printf '\n== %s\n' "$*"; "$@" || status=1; }
run env FLINT="$flint" bash bench/query.sh
run go test -run '^$' -bench RunWholeProcess -benchtime 50x ./handlers
run bash bench/userdata.sh
run bash bench/sshkeys.sh
run sh modules/bench/bench.sh 5
run sh bench/fleet.sh "$flint" 50
run sh network/bench/reconcile.sh 5
run sh network/bench/watch-idle.sh 60
exit $status
