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
