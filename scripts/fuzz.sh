#!/bin/sh
# Every fuzz target (func Fuzz* in a _test.go) for FUZZTIME each, one
# worker so the run stays within a small machine, in a private network
# namespace of its own (the caller's, when already inside one). A finding
# fails and is kept in the package's testdata/fuzz for `go test` to
# replay.
#
# Go 1.26's fuzzing coordinator can fail a target at the end of its
# -fuzztime with a bare "context deadline exceeded" and no input written
# when a worker is slow to stop on a loaded machine (golang/go#75804,
# fixed in Go 1.27). Such a failure, and only such a failure, runs the
# target once more; the second run's result stands.
#
# Usage: fuzz.sh GO FUZZTIME FUZZMINIMIZE
set -u
go=$1 fuzztime=$2 minimize=$3
log=$(mktemp)
trap 'rm -f "$log"' EXIT

run() { # package target
	unshare -n sh -c "ip link set lo up && GOPROXY=off $go test -run '^\$' -fuzz '^$2\$' -fuzztime $fuzztime -fuzzminimizetime $minimize -parallel 1 $1" 2>&1 | tee "$log"
	# The status of go test, not of tee.
	! grep -qE '^(FAIL|--- FAIL)' "$log"
}

for f in $(grep -rl --include='*_test.go' '^func Fuzz' . | sort); do
	pkg=$(dirname "$f")
	for t in $(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$f"); do
		echo "fuzz $pkg $t $fuzztime"
		before=$(ls "$pkg/testdata/fuzz/$t" 2>/dev/null | wc -l)
		run "$pkg" "$t" && continue
		after=$(ls "$pkg/testdata/fuzz/$t" 2>/dev/null | wc -l)
		if [ "$after" = "$before" ] && grep -q '^    context deadline exceeded$' "$log" && ! grep -q 'Failing input written' "$log"; then
			echo "fuzz $pkg $t: the coordinator's deadline race (golang/go#75804), no input written: running it again"
			run "$pkg" "$t" && continue
		fi
		exit 1
	done
done
