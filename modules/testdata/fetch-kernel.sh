#!/bin/sh
# Fetch Debian's current cloud kernel package once and turn its
# lib/modules/<release> into module bundles (.tar.gz, .tar.zst) for the
# real-bundle test and the benchmarks. Idempotent: a complete cache is reused.
#
# Cache layout under ${FLINT_CACHE:-$HOME/.cache/flint}/kernel/:
#   linux-image-*.deb   the downloaded package (fetched once)
#   pkg/                dpkg -x of the package
#   release             the kernel release string (e.g. 6.1.0-56-cloud-amd64)
#   modules.tar.gz      lib/modules/<release> of the package
#   modules.tar.zst     the same tree, zstd
#   modules.tar.gz.sha256, modules.tar.zst.sha256
set -eu

cache="${FLINT_CACHE:-$HOME/.cache/flint}/kernel"
mkdir -p "$cache"
cd "$cache"

if [ -s release ] && [ -s modules.tar.gz.sha256 ] && [ -s modules.tar.zst.sha256 ]; then
	echo "fetch-kernel: cached in $cache ($(cat release))"
	exit 0
fi

if ! ls linux-image-*.deb >/dev/null 2>&1; then
	# The metapackage names the current ABI; download the real package it depends on.
	dep=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}')
	if [ -z "$dep" ]; then
		apt-get update -qq
		dep=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-/{print $2; exit}')
	fi
	[ -n "$dep" ] || { echo "fetch-kernel: cannot resolve linux-image-cloud-amd64" >&2; exit 1; }
	tmp=$(mktemp -d "$cache/dl.XXXXXX")
	chmod 0755 "$tmp" # apt-get download drops privileges to _apt
	(cd "$tmp" && apt-get download "$dep")
	mv "$tmp"/linux-image-*.deb .
	rmdir "$tmp"
fi

deb=$(ls linux-image-*.deb | head -n1)
rm -rf pkg pkg.tmp
dpkg -x "$deb" pkg.tmp
mv pkg.tmp pkg
rel=$(ls pkg/lib/modules | head -n1)
[ -n "$rel" ] || { echo "fetch-kernel: $deb has no lib/modules" >&2; exit 1; }

# Owner root and a fixed order keep the bundles reproducible across runs.
tar -C pkg --owner=0 --group=0 --numeric-owner --sort=name -cf modules.tar "lib/modules/$rel"
gzip -6 -c modules.tar >modules.tar.gz.tmp && mv modules.tar.gz.tmp modules.tar.gz
zstd -q -3 -f -o modules.tar.zst.tmp modules.tar && mv modules.tar.zst.tmp modules.tar.zst
rm -f modules.tar
sha256sum modules.tar.gz | cut -d' ' -f1 >modules.tar.gz.sha256
sha256sum modules.tar.zst | cut -d' ' -f1 >modules.tar.zst.sha256
printf '%s\n' "$rel" >release
echo "fetch-kernel: built bundles for $rel in $cache"
