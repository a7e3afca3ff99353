# flint — build, test and demo. Targets install what they need on a fresh
# Debian 12 machine with Go 1.26 (apt packages, Go modules, test fixtures).

GO          ?= go
BIN         := bin/flint
VERSION     ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# A real S3 server for the modules tests (posix backend on loopback).
VERSITYGW   := github.com/versity/versitygw/cmd/versitygw@v1.8.0
GOBIN       := $(shell $(GO) env GOPATH)/bin
export GOFLAGS := -mod=mod
export FLINT_CACHE ?= $(HOME)/.cache/flint

# Debian packages the tests use as peers and parts (see docs/testing.md).
APT_PACKAGES := cloud-init amazon-ec2-utils openssh-server openssh-client qemu-system-x86 \
	kmod busybox-static hyperfine iproute2 sudo passwd xz-utils zstd curl systemd \
	ca-certificates tar gzip debootstrap fdisk e2fsprogs xfsprogs btrfs-progs util-linux openssl dpkg \
	lintian rpm rpm2cpio strace

# Package version: the last v* tag, else 0.0.0; plus the commits since
# and the commit, so successive builds upgrade each other.
PKG_VERSION ?= $(shell v=$$(git describe --tags --abbrev=0 --match 'v[0-9]*' 2>/dev/null); \
	n=$$(git rev-list --count $${v:-HEAD} 2>/dev/null); [ -n "$$v" ] && n=$$(git rev-list --count $$v..HEAD); \
	echo "$${v:-v0.0.0}+$$n.g$$(git rev-parse --short HEAD 2>/dev/null || echo 0)" | sed 's/^v//')
export SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || date +%s)
ARCHES      := amd64 arm64
DEB_AMD64    = $(CURDIR)/dist/flint_$(PKG_VERSION)_amd64.deb
PREFIX      ?= /usr
DESTDIR     ?=

.PHONY: all build deps apt gomod test lint unit run bench clean packages install guest-test guest-bench fuzz

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o $(BIN) ./cmd/flint

# Static binaries for each architecture (cross-building is GOARCH), then
# the .deb and .rpm of each with nfpm (packaging/cmd/mkpkg); the man page
# comes from the help text of the binary this machine runs.
packages: build
	@rm -f dist/flint_*.deb dist/flint-*.rpm
	@for a in $(ARCHES); do \
		CGO_ENABLED=0 GOARCH=$$a $(GO) build -trimpath -ldflags "-s -w -X main.version=$(PKG_VERSION)" -o bin/linux-$$a/flint ./cmd/flint || exit 1; \
	done
	$(GO) run ./packaging/cmd/mkpkg -version $(PKG_VERSION) -help-bin bin/linux-$$($(GO) env GOARCH)/flint \
		$(foreach a,$(ARCHES),-bin $(a)=bin/linux-$(a)/flint) -out dist

# For machines without packages: the files the .deb installs, below
# DESTDIR. It enables nothing and links nothing (see docs/packaging.md).
install: build
	$(GO) run ./packaging/cmd/mkpkg -version $(PKG_VERSION) -help-bin $(BIN) -man bin/flint.8.gz
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/flint
	install -D -m 0644 bin/flint.8.gz $(DESTDIR)$(PREFIX)/share/man/man8/flint.8.gz
	install -D -m 0644 packaging/systemd/flint.service $(DESTDIR)$(PREFIX)/lib/systemd/system/flint.service
	for u in flint-local flint-host-keys flint-network flint-events; do \
		install -D -m 0644 packaging/systemd/$$u.service $(DESTDIR)$(PREFIX)/lib/systemd/system/$$u.service || exit 1; \
	done
	@# Configuration is installed only where there is none: edits are kept.
	test -e $(DESTDIR)/etc/flint/flint.yaml || install -D -m 0644 packaging/flint.yaml $(DESTDIR)/etc/flint/flint.yaml
	test -e $(DESTDIR)/etc/ssh/sshd_config.d/99-flint.conf || install -D -m 0644 packaging/sshd/flint.conf $(DESTDIR)/etc/ssh/sshd_config.d/99-flint.conf

deps: apt gomod

apt:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@for f in $$(ls testdata/fetch-*.sh */testdata/fetch-*.sh 2>/dev/null); do sh $$f || exit 1; done

gomod:
	$(GO) mod download
	@test -x $(GOBIN)/staticcheck || $(GO) install $(STATICCHECK)
	@test -x $(GOBIN)/versitygw || GOFLAGS= $(GO) install $(VERSITYGW)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GOBIN)/staticcheck ./...

# The whole suite runs inside a private network namespace holding only lo:
# nothing a test does can reach 169.254.169.254 or any other real address.
test: deps build lint packages
	FLINT_BIN=$(CURDIR)/$(BIN) FLINT_DEB=$(DEB_AMD64) unshare -n sh -c 'ip link set lo up && GOPROXY=off CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 30m ./...'
	@$(MAKE) --no-print-directory fuzz

# Every fuzz target (func Fuzz* in a _test.go) for FUZZTIME each, one
# worker, in a private network namespace (scripts/fuzz.sh). A finding
# fails and is kept in the package's testdata/fuzz for `go test` to
# replay. Minimizing a new input may take 60 s by default, and a time
# budget that ends during it fails the target with "context deadline
# exceeded": FUZZMINIMIZE bounds it.
FUZZTIME ?= 10s
FUZZMINIMIZE ?= 1s
fuzz:
	@sh scripts/fuzz.sh "$(GO)" $(FUZZTIME) $(FUZZMINIMIZE)

# The systemd guest alone (make test runs it too): a Debian 12 image with
# flint installed, booted under QEMU, logged into over SSH.
guest-test: deps build packages
	FLINT_BIN=$(CURDIR)/$(BIN) FLINT_DEB=$(DEB_AMD64) unshare -n sh -c 'ip link set lo up && GOPROXY=off $(GO) test -count=1 -v -timeout 20m -run TestARealSystemdGuest ./e2e/'

# The systemd guest's boot figures (opt-in, minutes a boot under TCG):
# first boots and reboots in alternating rounds of GUEST_BENCH's variants
# (flint = FLINT_DEB, cloud-init, or NAME=PATH.deb), see docs/testing.md.
GUEST_BENCH ?= flint,cloud-init
GUEST_BENCH_ROUNDS ?= 2
guest-bench: deps build packages
	FLINT_BIN=$(CURDIR)/$(BIN) FLINT_DEB=$(DEB_AMD64) FLINT_GUEST_BENCH=$(GUEST_BENCH) FLINT_GUEST_BENCH_ROUNDS=$(GUEST_BENCH_ROUNDS) \
		unshare -n sh -c 'ip link set lo up && GOPROXY=off $(GO) test -count=1 -v -timeout 120m -run TestGuestBootFigures ./e2e/'

# Quick loop for developers: no apt, no namespace, no race detector.
unit:
	$(GO) test -count=1 ./...

# The main job on the embedded default: the built-in IMDS emulator on
# loopback and a sandbox root in a temporary directory.
run: build
	@sh scripts/demo.sh $(BIN)

bench: deps build
	@sh bench/run.sh $(BIN)

clean:
	rm -rf bin dist
