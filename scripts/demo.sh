#!/bin/sh
# The first-boot demo behind 'make run': flint's built-in IMDS emulator on
# loopback, and flint working against it. Nothing leaves 127.0.0.1.
set -eu
flint=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
port=${FLINT_DEMO_PORT:-18338}
endpoint=http://127.0.0.1:$port
sandbox=$(mktemp -d /tmp/flint-demo.XXXXXX)
"$flint" emulate --listen 127.0.0.1:$port --quiet >/dev/null &
emu=$!
trap 'kill $emu 2>/dev/null; wait $emu 2>/dev/null || true' EXIT
for i in $(seq 50); do "$flint" get --endpoint "$endpoint" meta-data/instance-id >/dev/null 2>&1 && break; sleep 0.1; done

echo "== flint dump --endpoint $endpoint (first lines)"
"$flint" dump --endpoint "$endpoint" | head -n 12
if "$flint" help | grep -q '^  query'; then
	echo
	echo "== flint query -i -t -z -o --endpoint $endpoint"
	"$flint" query --endpoint "$endpoint" -i -t -z -o
fi
echo
echo "sandbox root: $sandbox"
