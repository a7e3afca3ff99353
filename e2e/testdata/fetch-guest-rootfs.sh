#!/bin/sh
# Build the guest test's Debian 12 root file systems once, with debootstrap
# from apt's configured Debian mirror, and cache them as tarballs keyed by
# this script's hash (editing the script builds new ones).
#
#   ${FLINT_CACHE:-$HOME/.cache/flint}/guest/rootfs-<key>.tar.zst
#       minbase + systemd-sysv, udev, openssh-server, sudo, kmod, iproute2;
#       systemd-networkd enabled, no network configuration for any NIC, no
#       host keys, an empty machine-id: an image as baked for first boot.
#   ${FLINT_CACHE:-$HOME/.cache/flint}/guest/rootfs-cloud-init-<key>.tar.zst
#       the same plus Debian's cloud-init (the reference peer).
#
# No kernel and no initramfs: the test boots Debian's cloud kernel (fetched
# by modules/testdata/fetch-kernel.sh) directly from an NVMe root.
set -eu

cache="${FLINT_CACHE:-$HOME/.cache/flint}/guest"
key=$(sha256sum "$0" | cut -c1-16)
base="$cache/rootfs-$key.tar.zst"
peer="$cache/rootfs-cloud-init-$key.tar.zst"
if [ -s "$base" ] && [ -s "$peer" ]; then
	echo "fetch-guest-rootfs: cached in $cache ($key)"
	exit 0
fi
mkdir -p "$cache"
for t in debootstrap zstd; do
	command -v "$t" >/dev/null || { echo "fetch-guest-rootfs: needs $t (make deps)" >&2; exit 1; }
done

# The mirror apt already uses; Debian's own otherwise.
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian

tmp=$(mktemp -d "$cache/build.XXXXXX")
trap 'umount -R "$tmp/root/proc" 2>/dev/null || true; rm -rf "$tmp"' EXIT
root="$tmp/root"

debootstrap --variant=minbase \
	--include=systemd-sysv,udev,openssh-server,sudo,kmod,iproute2,zstd \
	bookworm "$root" "$mirror"

printf '/dev/nvme0n1p1 / ext4 rw,errors=remount-ro 0 1\n' >"$root/etc/fstab"
printf 'localhost\n' >"$root/etc/hostname"
printf '127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
: >"$root/etc/resolv.conf"
systemctl --root="$root" enable systemd-networkd.service systemd-networkd-wait-online.service
# sshd waits for its host keys from whatever provisions the instance.
rm -f "$root"/etc/ssh/ssh_host_*
# First boot: a fresh machine-id.
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
passwd --root "$root" -l root >/dev/null

pack() { # pack DIR OUT
	tar -C "$1" --numeric-owner --xattrs -cf - . | zstd -q -T0 -3 -o "$2.tmp"
	mv "$2.tmp" "$2"
}
clean_apt() {
	rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin "$1"/var/cache/apt/archives/*.deb
}

cp -a "$root" "$tmp/peer"
clean_apt "$root"
pack "$root" "$base"

# The reference peer: Debian's cloud-init, installed from the same mirror.
peerroot="$tmp/peer"
cp /etc/resolv.conf "$peerroot/etc/resolv.conf"
mount -t proc proc "$peerroot/proc"
chroot "$peerroot" sh -c 'DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends cloud-init isc-dhcp-client >/dev/null'
umount "$peerroot/proc"
: >"$peerroot/etc/resolv.conf"
rm -f "$peerroot"/etc/ssh/ssh_host_*
# QEMU is no known cloud to ds-identify: name the datasource.
printf 'datasource_list: [ Ec2, None ]\ndatasource:\n  Ec2:\n    strict_id: false\n    timeout: 5\n    max_wait: 30\n' \
	>"$peerroot/etc/cloud/cloud.cfg.d/90-flint-peer.cfg"
clean_apt "$peerroot"
pack "$peerroot" "$peer"
echo "fetch-guest-rootfs: built $base and $peer"
