#!/bin/sh
# Install time and peak RSS of a module bundle install by flint against the
# manual way, on Debian's cloud kernel that testdata/fetch-kernel.sh fetches
# (it is run first; it downloads once).
#
#   modules/bench/bench.sh [runs] [target]   (default 5 runs per command;
#                                            "target": the target only)
#
# First the target: "flint modules install" of the bundle that
# "flint modules pack" makes of the package (.tar.zst, carrying its module
# index) against "tar -xzf" of the package's tree as .tar.gz followed by
# "depmod -b", in alternating rounds (which goes first alternates too). It
# prints both medians, their ratio, and the spread of the rounds' own
# ratios; the target is a ratio of at most 0.5. The manual way followed by
# "sync -f" runs in the same rounds, for reference: flint's install ends
# with the tree on disk, the manual way's does not.
#
# Then, for each of .tar.gz and .tar.zst made by tar (no index: depmod
# runs), from a local file and over loopback HTTP (a file server on
# 127.0.0.1), it runs alternately:
#   flint:  bundle-install (digest + decompress + extract + syncfs + rename + depmod)
#   manual: tar -x (or curl | tar -x) followed by depmod -b
# and prints the median wall time and the peak RSS (GNU time %M: the largest
# process of the command, which for both is depmod) plus, for flint, the
# peak RSS of the installing process itself before and after depmod.
#
# Trees are written under FLINT_BENCH_DIR (default /var/tmp). With
# FLINT_BENCH_FS=ext4 (root, mkfs.ext4), they go to a fresh ext4 with a
# journal on a loop device instead, mounted in a private mount namespace:
# an instance's root file system, without the deleted inodes of earlier
# runs and other work that a busy shared disk accumulates (a file system
# without a journal, for one, searches past every recently deleted inode
# on each file creation).
set -eu

runs=${1:-5}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

if [ "${FLINT_BENCH_FS:-}" = ext4 ]; then
	img=$(mktemp /var/tmp/flint-bench-fs.XXXXXX)
	trap 'rm -f "$img"' EXIT INT TERM
	truncate -s 2G "$img"
	mkfs.ext4 -q -F "$img"
	mnt=$(mktemp -d /var/tmp/flint-bench-mnt.XXXXXX)
	status=0
	unshare -m sh -c 'mount --make-rprivate / && mount -o loop "$1" "$2" && shift 2 && exec "$@"' sh "$img" "$mnt" \
		env FLINT_BENCH_FS= FLINT_BENCH_DIR="$mnt" sh "$0" "$@" || status=$?
	rmdir "$mnt"
	exit $status
fi

"$here/../testdata/fetch-kernel.sh" >/dev/null
k="${FLINT_CACHE:-$HOME/.cache/flint}/kernel"
rel=$(cat "$k/release")
deb=$(ls "$k"/linux-image-*.deb | head -n1)
work=$(mktemp -d "${FLINT_BENCH_DIR:-/var/tmp}/flint-bench.XXXXXX")
srv=
trap '[ -n "$srv" ] && kill $srv 2>/dev/null; rm -rf "$work"' EXIT INT TERM

(cd "$repo" && GOFLAGS=-mod=mod go build -o "$work/bundle-install" ./modules/bench/bundle-install)
(cd "$repo" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -o "$work/flint.linked" ./cmd/flint)
# Copied as a package installs it (see bench/lib.sh).
install -m 0755 "$work/flint.linked" "$work/flint"
"$work/flint" modules pack --o "$work/packed.tar.zst" "$deb" >"$work/pack.out" 2>&1 || { cat "$work/pack.out" >&2; exit 1; }
packed_sum=$(sha256sum "$work/packed.tar.zst" | cut -d' ' -f1)

fresh() { rm -rf "$work/root" && mkdir -p "$work/root" && sync; }
now() { date +%s%N; }

# The target, in alternating rounds; each round starts with the next of
# the three. durable is the manual way followed by a syncfs of the file
# system, as flint's install ends (not the target; for reference).
flint_cmd="$work/flint modules install --no-metadata --root $work/root --release $rel --bundle file://$work/packed.tar.zst --sha256 $packed_sum"
manual_cmd="tar -xzf $k/modules.tar.gz -C $work/root && depmod -b $work/root $rel"
durable_cmd="$manual_cmd && sync -f $work/root"
: >"$work/target"
i=0
while [ $i -lt "$runs" ]; do
	for j in 0 1 2; do
		who=$(echo flint manual durable | cut -d' ' -f$(((i + j) % 3 + 1)))
		eval "cmd=\$${who}_cmd"
		fresh
		t0=$(now)
		sh -c "$cmd" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
		t1=$(now)
		echo "$i $who $((t1 - t0))" >>"$work/target"
	done
	i=$((i + 1))
done
# Where flint's index came from ("bundle", or "depmod" from a flint
# whose bundles carry none).
fresh
sh -c "$flint_cmd" >/dev/null 2>&1
index=$(sed -n 's/.*"index": "\([a-z]*\)".*/\1/p' "$work/root/lib/modules/$rel/.flint-bundle")
python3 - "$work/target" "$runs" "$index" <<'EOF'
import statistics, sys
rounds = {}
for line in open(sys.argv[1]):
    r, who, ns = line.split()
    rounds.setdefault(int(r), {})[who] = int(ns) / 1e9
f = statistics.median(x["flint"] for x in rounds.values())
m = statistics.median(x["manual"] for x in rounds.values())
d = statistics.median(x["durable"] for x in rounds.values())
ratios = sorted(x["flint"] / x["manual"] for x in rounds.values())
dratios = sorted(x["flint"] / x["durable"] for x in rounds.values())
r = f / m
print(f"target ({sys.argv[2]} rounds, alternating): flint modules install of the packed .tar.zst "
      f"(index: {sys.argv[3]}) {f:.3f} s, tar -xzf .tar.gz + depmod -b {m:.3f} s (medians)")
print(f"  ratio {r:.2f}x (target <= 0.5x: {'met' if r <= 0.5 else 'MISSED'}); "
      f"rounds {ratios[0]:.2f}x-{ratios[-1]:.2f}x, median {statistics.median(ratios):.2f}x")
print(f"  against tar -xzf + depmod -b + sync -f (durable, as flint's install is) {d:.3f} s: {f / d:.2f}x; "
      f"rounds {dratios[0]:.2f}x-{dratios[-1]:.2f}x")
EOF
[ "${2:-}" = target ] && exit 0
echo

# A loopback-only file server for the HTTP cases.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 --directory "$k" "$port" >/dev/null 2>&1 &
srv=$!
for _ in 1 2 3 4 5 6 7 8 9 10; do curl -fs -o /dev/null "http://127.0.0.1:$port/release" 2>/dev/null && break; sleep 0.2; done

measure() { # name command...: prints "seconds maxrss_kib" per run into $work/$name
	: >"$work/$1.times"
	name=$1
	shift
	fresh
	/usr/bin/time -f "%e %M" -a -o "$work/$name.times" sh -c "$*"
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

printf '%-34s %10s %12s %14s\n' "case ($runs runs, alternating)" "median s" "peak RSS MB" "flint self MB"
for ext in tar.gz tar.zst; do
	case $ext in tar.gz) x="-xzf" ;; tar.zst) x="--zstd -xf" ;; esac
	sum=$(cat "$k/modules.$ext.sha256")
	for via in file http; do
		if [ $via = file ]; then
			url="file://$k/modules.$ext"
			manual="tar $x $k/modules.$ext -C $work/root && depmod -b $work/root $rel"
		else
			url="http://127.0.0.1:$port/modules.$ext"
			manual="curl -fsS $url | tar $x - -C $work/root && depmod -b $work/root $rel"
		fi
		flint="$work/bundle-install -root $work/root -release $rel -bundle $url -sha256 $sum -rss $work/self"
		: >"$work/self"
		: >"$work/flint.all"
		: >"$work/manual.all"
		i=0
		while [ $i -lt "$runs" ]; do
			measure flint "$flint" && cat "$work/flint.times" >>"$work/flint.all"
			measure manual "$manual" && cat "$work/manual.times" >>"$work/manual.all"
			i=$((i + 1))
		done
		self=$(sort -n "$work/self" | tail -1)
		printf '%-34s %10s %12s %14s\n' "$ext $via flint" "$(cut -d' ' -f1 "$work/flint.all" | median)" \
			"$(cut -d' ' -f2 "$work/flint.all" | sort -n | tail -1 | awk '{printf "%.1f", $1/1024}')" "$(echo "$self" | awk '{printf "%.1f", $1/1024}')"
		label="tar+depmod"
		[ $via = http ] && label="curl|tar+depmod"
		printf '%-34s %10s %12s %14s\n' "$ext $via $label" "$(cut -d' ' -f1 "$work/manual.all" | median)" \
			"$(cut -d' ' -f2 "$work/manual.all" | sort -n | tail -1 | awk '{printf "%.1f", $1/1024}')" "-"
	done
done
