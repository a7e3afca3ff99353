#!/bin/bash
# Whole-process timing of `flint ssh-keys USER`, the sshd
# AuthorizedKeysCommand, against the flint emulator on 127.0.0.1: the
# default user (token, listing, two keys, an Instance Connect 404), another
# user (token, one 404), and `flint version` as the floor of starting the
# binary at all. Target: median of the default user <= 5 ms.
#
# Usage: bench/sshkeys.sh [--check]
#   FLINT=/path/to/flint   time a copy of this binary instead of building one
#   RUNS=N                 hyperfine runs per command (default 300)
#   --check                exit 1 if the target is missed
# Needs: hyperfine, go (to build). Talks only to 127.0.0.1.
set -euo pipefail

cd "$(dirname "$0")/.."
check=0
[[ "${1:-}" == "--check" ]] && check=1
runs=${RUNS:-300}
fixture=$PWD/imds/imdstest/testdata/instance.yaml
command -v hyperfine >/dev/null || { echo "sshkeys.sh: needs hyperfine" >&2; exit 2; }

work=$(mktemp -d)
emu_pid=
cleanup() {
	[[ -n "$emu_pid" ]] && kill "$emu_pid" 2>/dev/null && wait "$emu_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

source bench/lib.sh
install_flint "$work"
# sshd runs the command with an empty environment; so does this.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY
for v in $(compgen -e | grep '^AWS_EC2_METADATA' || true); do unset "$v"; done

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null || echo 18777)
endpoint=http://127.0.0.1:$port
"$flint" emulate --quiet --fixture "$fixture" --listen "127.0.0.1:$port" >"$work/emulate.log" 2>&1 &
emu_pid=$!
for _ in $(seq 100); do
	bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null && break
	sleep 0.05
done

root=$work/root
mkdir -p "$root/etc/flint"
printf 'users:\n  default_user:\n    name: admin\n' >"$root/etc/flint/flint.yaml"
keys=$("$flint" ssh-keys --root "$root" --endpoint "$endpoint" admin)
[[ $(wc -l <<<"$keys") == 2 ]] || { echo "sshkeys.sh: expected 2 keys for admin, got: $keys" >&2; cat "$work/emulate.log" >&2; exit 1; }

echo "flint: $("$flint" version)  runs: $runs  $(nproc) CPUs  load: $(cut -d' ' -f1-3 /proc/loadavg)"
default="$flint ssh-keys --root $root --endpoint $endpoint admin"
other="$flint ssh-keys --root $root --endpoint $endpoint bob"
hyperfine -N --warmup 30 --runs "$runs" --export-csv "$work/times.csv" \
	-n "ssh-keys default user" "$default" -n "ssh-keys other user" "$other" -n "version (process floor)" "$flint version"

# times.csv: command,mean,stddev,median,user,system,min,max (seconds).
echo
awk -F, 'NR > 1 { printf "%-24s median %6.2f ms  mean %6.2f ms  min %6.2f ms\n", $1, $4 * 1000, $2 * 1000, $7 * 1000 }' "$work/times.csv"
median=$(awk -F, '$1 == "ssh-keys default user" { print $4 * 1000 }' "$work/times.csv")
if awk -v m="$median" 'BEGIN { exit !(m <= 5) }'; then
	echo "default user median ${median} ms: target 5 ms met"
else
	echo "default user median ${median} ms: target 5 ms MISSED"
	((check)) && exit 1
fi
exit 0
