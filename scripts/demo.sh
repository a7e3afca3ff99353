#!/bin/sh
# The first-boot demo behind 'make run': flint's built-in IMDS emulator on
# 127.0.0.1 and a sandbox root in a temporary directory.
#
# As root (with unshare and ip), the demo runs in a private network
# namespace holding two veth links with the fixture's ENI MACs, so the run
# is --live: the network is configured for real inside that namespace,
# the default user is created in the sandbox's passwd, the user-data
# script runs (writing below the sandbox). Nothing touches the host's
# network or files outside the sandbox. Without root it plans instead.
set -eu
flint=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")

if [ "${FLINT_DEMO_INSIDE:-}" = "" ] && [ "$(id -u)" = 0 ] && command -v unshare >/dev/null && command -v ip >/dev/null; then
	FLINT_DEMO_INSIDE=1 exec unshare --net sh "$0" "$@"
fi

port=${FLINT_DEMO_PORT:-18338}
endpoint=http://127.0.0.1:$port
sandbox=$(mktemp -d /tmp/flint-demo.XXXXXX)
live=""
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

if [ "${FLINT_DEMO_INSIDE:-}" = 1 ]; then
	live=--live
	ip link set lo up
	# The instance's two ENIs, as the fixture describes them; the peers
	# stand for the VPC. The primary's address is what DHCP would give it.
	ip link add eth0 address 0e:49:61:0f:c3:11 type veth peer name vpc0
	ip link add eth1 address 0e:7c:1a:44:aa:02 type veth peer name vpc1
	for l in eth0 eth1 vpc0 vpc1; do ip link set "$l" up; done
	ip addr add 10.0.1.23/24 dev eth0
	# A minimal image: the account files useradd --root needs.
	mkdir -p "$sandbox/etc" "$sandbox/var/tmp" "$sandbox/home" "$sandbox/root"
	printf 'root:x:0:0:root:/root:/bin/sh\n' >"$sandbox/etc/passwd"
	printf 'root:x:0:\nadm:x:4:\nsudo:x:27:\nusers:x:100:\n' >"$sandbox/etc/group"
	printf 'root:*:19000:0:99999:7:::\n' >"$sandbox/etc/shadow"
	printf 'root:*::\nadm:*::\nsudo:*::\nusers:*::\n' >"$sandbox/etc/gshadow"
	printf 'USERGROUPS_ENAB yes\nUID_MIN 1000\nUID_MAX 60000\nGID_MIN 1000\nGID_MAX 60000\nSYS_UID_MIN 100\nSYS_UID_MAX 999\nSYS_GID_MIN 100\nSYS_GID_MAX 999\n' >"$sandbox/etc/login.defs"
	chmod 0640 "$sandbox/etc/shadow" "$sandbox/etc/gshadow"
	# Programs of a --root --live run run chrooted in the root: a shell
	# (busybox-static, with its applets) and the /proc, /sys, /dev mount points.
	mkdir -p "$sandbox/bin" "$sandbox/proc" "$sandbox/sys" "$sandbox/dev" "$sandbox/tmp"
	cp "$(command -v busybox)" "$sandbox/bin/busybox"
	for a in $("$sandbox/bin/busybox" --list); do [ "$a" = busybox ] || ln -s busybox "$sandbox/bin/$a"; done
	mkdir -p "$sandbox/etc/flint"
	printf 'users:\n  default_user:\n    name: admin\n    groups: [adm, sudo]\n' >"$sandbox/etc/flint/flint.yaml"
fi

"$flint" emulate --listen 127.0.0.1:$port --quiet >/dev/null &
emu=$!
stop_emulator() { kill $emu 2>/dev/null; wait $emu 2>/dev/null || true; }
trap stop_emulator EXIT
trap 'stop_emulator; exit 130' INT TERM HUP PIPE
for i in $(seq 50); do "$flint" get --endpoint "$endpoint" meta-data/instance-id >/dev/null 2>&1 && break; sleep 0.1; done

# The kernel vendor's half: a module tree for the running kernel's release
# (made on the spot: the sandbox stands for an image without it), packed,
# listed in a manifest for the instance's kernel-id, signed; served on
# loopback like a bucket. The first boot fetches, verifies and installs it.
step "flint modules pack | keygen | sign   (the vendor publishes a bundle for this kernel)"
release=$(uname -r)
kernel_id=$("$flint" get --endpoint "$endpoint" meta-data/kernel-id)
pub="$sandbox.pub"
mkdir -p "$pub" "$pub/src/$release/kernel/drivers/net" "$sandbox/etc/flint"
printf 'demo module\n' >"$pub/src/$release/kernel/drivers/net/demo.ko"
printf 'kernel/drivers/net/demo.ko\n' >"$pub/src/$release/modules.order"
: >"$pub/src/$release/modules.builtin"
ln -s /usr/src/linux-headers-"$release" "$pub/src/$release/build"
"$flint" modules keygen --out "$pub/vendor" | head -n 1
# Its module is a placeholder, not an ELF file, so there is nothing for
# depmod to index at pack time: --no-index leaves that to the instance.
# (The Debian kernel below is packed with its index.)
"$flint" modules pack --no-index --manifest "$pub/manifest.json" --kernel-id "$kernel_id" -o "$pub/$release.tar.zst" "$pub/src/$release"
"$flint" modules sign --key "$pub/vendor.key" "$pub/manifest.json"
bport=$((port + 1))
python3 -m http.server --bind 127.0.0.1 --directory "$pub" "$bport" >/dev/null 2>&1 &
bundles=$!
trap 'kill $bundles 2>/dev/null; stop_emulator' EXIT
for i in $(seq 50); do python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$bport/manifest.json')" 2>/dev/null && break; sleep 0.1; done
# The instance trusts the vendor's key; config check validates it.
{
	printf 'modules:\n  manifest: http://127.0.0.1:%s/manifest.json\n  public_key: |\n' "$bport"
	sed 's/^/    /' "$pub/vendor.pub"
} >>"$sandbox/etc/flint/flint.yaml"
"$flint" config check --root "$sandbox" >/dev/null && echo "flint config check: the modules section (manifest, public_key) is valid"

if [ -n "$live" ]; then
	step "a private network namespace with the instance's ENIs (before)"
	ip -br addr
fi

step "flint run --root $sandbox $live   (first boot of i-0123456789abcdef0)"
"$flint" run --root "$sandbox" $live --endpoint "$endpoint" 2>&1 || true

step "flint status --root $sandbox"
"$flint" status --root "$sandbox" || true

step "flint modules status --root $sandbox   (the bundle the first boot installed for kernel-id $kernel_id)"
"$flint" modules status --root "$sandbox" --release "$release" || true
"$flint" modules verify --key "$pub/vendor.pub" "$pub/manifest.json"

step "flint analyze --root $sandbox"
"$flint" analyze --root "$sandbox"

if [ -n "$live" ]; then
	step "the network flint configured (addresses, rules, ENI 1's table 10001)"
	ip -br addr
	ip rule
	ip route show table 10001
	ip -6 route show table 10001
	step "the sandbox's default user, keys and user-data output"
	grep '^admin:' "$sandbox/etc/passwd" || true
	cut -c1-60 "$sandbox/home/admin/.ssh/authorized_keys" 2>/dev/null || true
	cat "$sandbox/var/tmp/flint-userdata-script" "$sandbox/var/tmp/flint-runcmd" 2>/dev/null || true
fi

step "flint run --root $sandbox $live   (a reboot: per-instance handlers do not run again)"
"$flint" run --root "$sandbox" $live --endpoint "$endpoint" >/dev/null 2>&1 || true
"$flint" analyze --root "$sandbox"

step "what the first boot wrote in the sandbox"
# bin/ is the sandbox image's busybox, there before the boot.
(cd "$sandbox" && find . \( -type f -o -type l \) -not -path './bin/*' | sort | sed 's|^\./|/|')

step "flint run --only network --dry-run   (nothing left to do)"
"$flint" run --root "$sandbox" --endpoint "$endpoint" --only network --dry-run 2>/dev/null || true

step "flint query -i -t -z -o   (ec2-metadata compatible)"
"$flint" query --endpoint "$endpoint" -i -t -z -o

step "flint userdata inspect --json   (the instance's user-data, parsed as cloud-init would)"
"$flint" userdata inspect --endpoint "$endpoint" --json | head -n 30

cache="${FLINT_CACHE:-$HOME/.cache/flint}/kernel"
debs=$(ls "$cache"/linux-image-*.deb 2>/dev/null | head -n 1)
if [ -n "$debs" ]; then
	step "flint modules pack $(basename "$debs")   (Debian's cloud kernel, packed from the .deb)"
	"$flint" modules pack --manifest "$pub/manifest.json" -o "$pub/debian.tar.zst" "$debs"
	"$flint" modules sign --key "$pub/vendor.key" "$pub/manifest.json"
	drel=$(sed -n 's/.*"release": "\([^"]*\)".*/\1/p' "$pub/manifest.json" | tail -n 1)
	step "flint modules install --root $sandbox --release $drel   (fetched, verified, installed; the module index came with the bundle)"
	"$flint" modules install --root "$sandbox" --release "$drel" || true
	"$flint" modules status --root "$sandbox" --release "$drel" || true
fi

echo
echo "sandbox root kept at $sandbox"
