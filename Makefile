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
	ca-certificates tar gzip debootstrap fdisk e2fsprogs xfsprogs btrfs-progs util-linux openssl dpkg

.PHONY: all build deps apt gomod test lint unit run bench clean guest-test

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o $(BIN) ./cmd/flint

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
test: deps build lint
	FLINT_BIN=$(CURDIR)/$(BIN) unshare -n sh -c 'ip link set lo up && GOPROXY=off CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 30m ./...'

# The systemd guest alone (make test runs it too): a Debian 12 image with
# flint installed, booted under QEMU, logged into over SSH.
guest-test: deps build
	FLINT_BIN=$(CURDIR)/$(BIN) unshare -n sh -c 'ip link set lo up && GOPROXY=off $(GO) test -count=1 -v -timeout 20m -run TestARealSystemdGuest ./e2e/'

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
	rm -rf bin
