#!/bin/sh
# Install time and peak RSS of a module bundle install by flint's modules
# package against the manual way, on Debian's cloud kernel bundles that
# testdata/fetch-kernel.sh builds (it is run first; it downloads once).
#
#   modules/bench/bench.sh [runs]      (default 5 runs per command)
#
# For each of .tar.gz and .tar.zst, from a local file and over loopback
# HTTP (a file server on 127.0.0.1), it runs alternately:
#   flint:  bundle-install (digest + decompress + extract + syncfs + rename + depmod)
#   manual: tar -x (or curl | tar -x) followed by depmod -b
# and prints the median wall time and the peak RSS (GNU time %M: the largest
# process of the command, which for both is depmod) plus, for flint, the
# peak RSS of the installing process itself before and after depmod.
set -eu

runs=${1:-5}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
"$here/../testdata/fetch-kernel.sh" >/dev/null
k="${FLINT_CACHE:-$HOME/.cache/flint}/kernel"
rel=$(cat "$k/release")
work=$(mktemp -d /var/tmp/flint-bench.XXXXXX)
trap 'kill $srv 2>/dev/null || true; rm -rf "$work"' EXIT INT TERM

(cd "$repo" && GOFLAGS=-mod=mod go build -o "$work/bundle-install" ./modules/bench/bundle-install)

# A loopback-only file server for the HTTP cases.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 --directory "$k" "$port" >/dev/null 2>&1 &
srv=$!
for _ in 1 2 3 4 5 6 7 8 9 10; do curl -fs -o /dev/null "http://127.0.0.1:$port/release" 2>/dev/null && break; sleep 0.2; done

measure() { # name command...: prints "seconds maxrss_kib" per run into $work/$name
	: >"$work/$1.times"
	name=$1
	shift
	rm -rf "$work/root" && mkdir -p "$work/root"
	sync
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
