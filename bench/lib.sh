# Shared by the bench scripts, which source it from the repository root.

# install_flint DIR puts the flint to time at DIR/flint, as a package
# installs it, and sets flint to that path. FLINT names a built binary;
# without it one is built. Call it as a command, not in $(...): set -e
# does not reach into a command substitution.
#
# The copy matters: a binary fresh from the Go linker, which writes its
# output through mmap, starts measurably slower (about 0.4 ms a run on the
# 2-core test machine) than the same bytes written with write(2), as cp,
# install and package managers do, or read back from disk, as on a booted
# image. No instance runs a binary straight off the linker.
install_flint() {
	local src=${FLINT:-}
	if [[ -z "$src" ]]; then
		src=$1/flint.linked
		CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -o "$src" ./cmd/flint || return 1
	fi
	install -m 0755 "$src" "$1/flint" || return 1
	flint=$1/flint
}

# serve_in_netns NS FIXTURE LOG makes the network namespace NS with
# 169.254.169.254/32 on its lo, starts $flint's emulator there on port 80
# (its pid in emu_pid, for the caller's cleanup) and waits until it
# answers. Nothing leaves the namespace: commands run in it with their
# default endpoint. Call it as a command, not in $(...).
serve_in_netns() {
	local ns=$1 fixture=$2 log=$3
	ip netns add "$ns" || return 1
	ip -n "$ns" link set lo up || return 1
	ip -n "$ns" addr add 169.254.169.254/32 dev lo || return 1
	ip netns exec "$ns" "$flint" emulate --quiet --fixture "$fixture" --listen 169.254.169.254:80 >"$log" 2>&1 &
	emu_pid=$!
	for _ in $(seq 100); do
		ip netns exec "$ns" bash -c 'exec 3<>/dev/tcp/169.254.169.254/80' 2>/dev/null && return 0
		sleep 0.05
	done
	echo "emulator did not start:" >&2
	cat "$log" >&2
	return 1
}

# netns_cleanup stops the emulator, deletes the namespace and the work
# directory of a script that used serve_in_netns ($emu_pid, $ns, $work).
netns_cleanup() {
	[[ -n "${emu_pid:-}" ]] && kill "$emu_pid" 2>/dev/null && wait "$emu_pid" 2>/dev/null
	ip netns del "$ns" 2>/dev/null || true
	rm -rf "$work"
}
