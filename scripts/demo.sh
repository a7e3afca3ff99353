#!/bin/sh
# The first-boot demo behind 'make run': flint's built-in IMDS emulator on
# 127.0.0.1 and a sandbox root in a temporary directory. Nothing leaves
# loopback, and without --live flint only plans live changes (hostname of
# the host, netlink, module loading, running scripts).
set -eu
flint=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
port=${FLINT_DEMO_PORT:-18338}
endpoint=http://127.0.0.1:$port
sandbox=$(mktemp -d /tmp/flint-demo.XXXXXX)
"$flint" emulate --listen 127.0.0.1:$port --quiet >/dev/null &
emu=$!
trap 'kill $emu 2>/dev/null; wait $emu 2>/dev/null || true' EXIT
for i in $(seq 50); do "$flint" get --endpoint "$endpoint" meta-data/instance-id >/dev/null 2>&1 && break; sleep 0.1; done

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "flint run --root $sandbox   (first boot of i-0123456789abcdef0)"
"$flint" run --root "$sandbox" --endpoint "$endpoint" 2>&1 || true

step "flint status --root $sandbox"
"$flint" status --root "$sandbox" || true

step "flint analyze --root $sandbox"
"$flint" analyze --root "$sandbox"

step "flint run --root $sandbox   (a reboot: per-instance handlers do not run again)"
"$flint" run --root "$sandbox" --endpoint "$endpoint" >/dev/null 2>&1 || true
"$flint" analyze --root "$sandbox"

step "what the first boot wrote in the sandbox"
(cd "$sandbox" && find . -type f -o -type l | sort | sed 's|^\./|/|')

step "flint run --only network --dry-run   (the network plan for this machine's links)"
"$flint" run --root "$sandbox" --endpoint "$endpoint" --only network --dry-run 2>/dev/null || true

if "$flint" help | grep -q '^  query'; then
	step "flint query -i -t -z -o   (ec2-metadata compatible)"
	"$flint" query --endpoint "$endpoint" -i -t -z -o
fi
if "$flint" help | grep -q '^  userdata'; then
	step "flint userdata inspect --json   (the instance's user-data, parsed as cloud-init would)"
	"$flint" userdata inspect --endpoint "$endpoint" --json | head -n 30
fi

step "flint dump (first lines)"
"$flint" dump --endpoint "$endpoint" | head -n 8
echo
echo "sandbox root kept at $sandbox"
