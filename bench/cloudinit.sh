#!/bin/bash
# First boot with the common cloud-config modules, whole process: flint
# against Debian's cloud-init on the Debian 12 image trees of the systemd
# guest test (e2e/testdata/fetch-guest-rootfs.sh), in rotating rounds,
# each boot on a fresh copy of its image.
#
#   cloud-init Debian's cloud-init chrooted in a copy of its image, the
#             document through the NoCloud seed, its four stages one after
#             the other as their units run them: init --local, init,
#             modules --mode config, modules --mode final (each timed)
#   flint     `flint run --root COPY --live` on a copy of the same tree
#             (the same programs at hand: locale-gen,
#             update-ca-certificates), flint's emulator serving the document
#   flint-img the same on the image built for flint, which has no locales
#             and no ca-certificates: those two handlers fail there (exit 2)
#
# Each boot runs in namespaces of its own (network, mount, UTS, PID): its
# loopback holds flint's emulator and a small HTTP server (write_files'
# source, phone_home), two veth links carry the fixture's ENI MACs. Nothing
# reaches the host's network, hostname or files outside the copy. The
# images are prepared alike for both: package installs are left out (the
# document has no packages; a stand-in chrony, an empty chronyd and its
# unit, so that ntp configures a client instead of installing one; an
# apt-get first in PATH that records its calls and fetches nothing),
# /run/systemd/system exists as on a booted system (systemctl, chrooted,
# then ignores start and restart and exits 0), and locale.gen enables
# de_DE.UTF-8 (see below). The figures leave out what a real boot adds
# around them: Python's and the units' start under systemd, ds-identify,
# waiting for the network, the download of apt's indexes.
#
# Usage: sudo bash bench/cloudinit.sh
#   FLINT=/path/to/flint  time a copy of this binary instead of building one
#   ROUNDS=N              rounds of one boot each (default 6; the order of
#                         the three rotates from round to round)
#   DIR=/path             put the copies on that file system instead of a
#                         tmpfs (e.g. /var/tmp: disk flushes count)
#   USERDATA=FILE         another #cloud-config document (127.0.0.1:8080/f
#                         and /ph answer on the boot's loopback)
#   KEEP=1                with DIR: keep the work directory (the first
#                         round's roots, every boot's logs)
# Needs: root, unshare, chroot, ip, tar, zstd, python3, gpg, openssl, go
# (to build) and the cached image trees (sh e2e/testdata/fetch-guest-rootfs.sh).
set -euo pipefail

cd "$(dirname "$0")/.."
me=bench/cloudinit.sh
fixture=imds/imdstest/testdata/instance.yaml
emu_port=1338
http_port=8080
macs=(0e:49:61:0f:c3:11 0e:7c:1a:44:aa:02) # the fixture's ENIs

# boot ARM ROOT OUT: one first boot of ROOT, run by the script itself in
# fresh network, mount, UTS and PID namespaces (see the end of the file).
# Writes OUT/times (stage seconds) and the arm's logs.
boot() {
	local arm=$1 root=$2 out=$3 work=$4
	ip link set lo up
	local i
	for i in 0 1; do
		ip link add "eth$i" address "${macs[$i]}" type veth peer name "vpc$i"
		ip link set "eth$i" up
		ip link set "vpc$i" up
	done
	# The primary's address, as DHCP would give it.
	ip addr add 10.0.1.23/24 dev eth0
	"$work/flint" emulate --quiet --fixture "$work/fixture.yaml" --listen "127.0.0.1:$emu_port" >"$out/emulate.log" 2>&1 &
	python3 "$work/httpd.py" "$http_port" "$out/http.log" >"$out/httpd.err" 2>&1 &
	local port
	for port in "$emu_port" "$http_port"; do
		for _ in $(seq 100); do
			bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null && break
			sleep 0.05
		done
	done
	local start end rc
	case "$arm" in
	flint | flint-img)
		start=$(date +%s%N)
		rc=0
		"$work/flint" run --root "$root" --live --endpoint "http://127.0.0.1:$emu_port" >"$out/run.log" 2>&1 || rc=$?
		end=$(date +%s%N)
		echo "run $(((end - start) / 1000)) $rc" >"$out/times"
		"$work/flint" status --root "$root" >"$out/status.txt" 2>&1 || true
		"$work/flint" status --root "$root" --json >"$out/status.json" 2>/dev/null || true
		"$work/flint" analyze --root "$root" >"$out/analyze.txt" 2>&1 || true
		;;
	cloud-init)
		# What the chrooted stages see: this PID namespace's /proc, this
		# network namespace's /sys, a /dev of a few character devices.
		mount -t proc proc "$root/proc"
		mount -t sysfs sysfs "$root/sys"
		mount -t tmpfs -o mode=0755,size=1m dev "$root/dev"
		local d
		for d in "null 1 3" "zero 1 5" "full 1 7" "random 1 8" "urandom 1 9" "tty 5 0"; do
			set -- $d
			mknod -m 0666 "$root/dev/$1" c "$2" "$3"
		done
		mkdir "$root/dev/pts" "$root/dev/shm"
		mount -t devpts -o newinstance,ptmxmode=0666 devpts "$root/dev/pts"
		ln -s pts/ptmx "$root/dev/ptmx"
		: >"$out/times"
		local stage
		for stage in "init --local" "init" "modules --mode config" "modules --mode final"; do
			start=$(date +%s%N)
			rc=0
			chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
				cloud-init $stage >>"$out/run.log" 2>&1 || rc=$?
			end=$(date +%s%N)
			echo "${stage// /_} $(((end - start) / 1000)) $rc" >>"$out/times"
		done
		chroot "$root" cloud-init status --long >"$out/status.txt" 2>&1 || true
		chroot "$root" cloud-init analyze blame >"$out/analyze.txt" 2>&1 || true
		cp "$root/var/log/cloud-init.log" "$out/cloud-init.log" 2>/dev/null || true
		cp "$root/run/cloud-init/result.json" "$out/result.json" 2>/dev/null || true
		;;
	esac
}

if [[ "${1:-}" == __boot ]]; then
	shift
	boot "$@"
	exit 0
fi

[[ $(id -u) == 0 ]] || { echo "$me: run as root: each boot gets namespaces, mounts and a chroot of its own" >&2; exit 2; }
for tool in unshare chroot ip tar zstd python3 gpg openssl; do
	command -v "$tool" >/dev/null || { echo "$me: needs $tool" >&2; exit 2; }
done
rounds=${ROUNDS:-6}
[[ -z "${KEEP:-}" || -n "${DIR:-}" ]] || { echo "$me: KEEP needs DIR (the tmpfs goes with the script's namespace)" >&2; exit 2; }
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "$me: ROUNDS must be a positive number" >&2; exit 2; }
cache=${FLINT_CACHE:-$HOME/.cache/flint}/guest
key=$(sha256sum e2e/testdata/fetch-guest-rootfs.sh | cut -c1-16)
declare -A tarball=([flint-img]="$cache/rootfs-$key.tar.zst" [cloud-init]="$cache/rootfs-cloud-init-$key.tar.zst")
for t in "${tarball[@]}"; do
	[[ -s "$t" ]] || { echo "$me: no $t (sh e2e/testdata/fetch-guest-rootfs.sh builds it)" >&2; exit 2; }
done

# The whole script runs in a mount and UTS namespace of its own: the
# tmpfs, the boots' mounts and host names stay in there. (Each boot has a
# network namespace of its own too.)
if [[ -z "${FLINT_CLOUDINIT_NS:-}" ]]; then
	FLINT_CLOUDINIT_NS=1 exec unshare -m -u --propagation private bash "$0" "$@"
fi

work=$(mktemp -d "${DIR:-/var/tmp}/flint-cloudinit.XXXXXX")
[[ -n "${DIR:-}" ]] || mount -t tmpfs -o size=6g,mode=0700 bench "$work"
cleanup() {
	if [[ -n "${KEEP:-}" ]]; then
		echo "kept $work"
		return
	fi
	[[ -n "${DIR:-}" ]] || umount -l "$work" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
source bench/lib.sh
install_flint "$work"

# The document: the modules of cloud-init's config reference that EC2
# users use, package installs excepted.
gpghome=$(mktemp -d "$work/gnupg.XXXXXX")
GNUPGHOME=$gpghome gpg --batch --quiet --passphrase '' --quick-gen-key repo@example.test ed25519 sign never 2>/dev/null
GNUPGHOME=$gpghome gpg --batch --armor --export repo@example.test >"$work/repo.asc"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
	-subj /CN=bench-ca.example.test -keyout /dev/null -out "$work/ca.pem" 2>/dev/null
indent() { sed "s/^/$1/" "$2"; }
if [[ -n "${USERDATA:-}" ]]; then
	cp "$USERDATA" "$work/user-data"
else
	cat >"$work/user-data" <<EOF
#cloud-config
# The root disk is the copy's, not a volume: nothing to grow.
growpart: {mode: 'off'}
resize_rootfs: false
groups:
  - admingroup: [root]
  - cloud-users
users:
  - default
  - name: ops
    gecos: Operations
    groups: [cloud-users]
    shell: /bin/bash
    sudo: 'ALL=(ALL) NOPASSWD:ALL'
    ssh_authorized_keys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO+kE/+KKx4mb6XO165mscrkRWw77I8p+O3ETxZJtQag ops@laptop']
  - name: legacy
    ssh_redirect_user: true
ssh_pwauth: true
locale: de_DE.UTF-8
ca_certs:
  trusted:
    - |
$(indent '      ' "$work/ca.pem")
ntp:
  servers: [169.254.169.123]
apt:
  primary: [{arches: [default], uri: 'http://mirror.example.test/debian'}]
  proxy: 'http://proxy.example.test:3128'
  sources:
    example:
      source: 'deb [signed-by=\$KEY_FILE] http://repo.example.test/apt \$RELEASE main'
      key: |
$(indent '        ' "$work/repo.asc")
mounts:
  - [/dev/xvdh, /data, auto, 'defaults,nofail', '0', '2']
write_files:
  - path: /etc/bench/inline.conf
    content: |
      inline = true
    permissions: '0640'
  - path: /etc/bench/fetched
    source: {uri: 'http://127.0.0.1:$http_port/f'}
phone_home:
  url: 'http://127.0.0.1:$http_port/ph'
  post: [instance_id, hostname, pub_key_ed25519]
  tries: 1
power_state: {mode: poweroff, condition: false}
EOF
fi

# flint's side: the fixture's instance with this user-data.
{
	sed '/^# gzip.d MIME multipart/,$d' "$fixture"
	echo "user-data: |"
	indent '  ' "$work/user-data"
} >"$work/fixture.yaml"

# The HTTP server of write_files' source and phone_home.
cat >"$work/httpd.py" <<'EOF'
import http.server, sys
log = open(sys.argv[2], "a", buffering=1)
class H(http.server.BaseHTTPRequestHandler):
    def answer(self, body):
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        log.write(f"GET {self.path}\n")
        self.answer(b"fetched\n")
    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0))
        log.write(f"POST {self.path} {self.rfile.read(n).decode(errors='replace')}\n")
        self.answer(b"ok\n")
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
EOF

# The image trees, unpacked once; each boot gets a fresh copy.
mkdir "$work/img"
for arm in flint-img cloud-init; do
	mkdir "$work/img/$arm"
	tar -C "$work/img/$arm" --numeric-owner --xattrs -I zstd -xpf "${tarball[$arm]}"
	# Package installs excepted: chrony stands in installed in both.
	printf '#!/bin/sh\nexit 0\n' >"$work/img/$arm/usr/sbin/chronyd"
	chmod 0755 "$work/img/$arm/usr/sbin/chronyd"
	printf '[Unit]\nDescription=chrony, as installed (a stand-in)\n\n[Service]\nExecStart=/usr/sbin/chronyd\n\n[Install]\nWantedBy=multi-user.target\n' \
		>"$work/img/$arm/lib/systemd/system/chrony.service"
	# apt-get first in PATH records its calls and fetches nothing.
	printf '#!/bin/sh\necho "apt-get $*" >>/var/log/bench-apt-get.log\n' >"$work/img/$arm/usr/local/sbin/apt-get"
	chmod 0755 "$work/img/$arm/usr/local/sbin/apt-get"
	# As on a booted system: systemd is PID 1 (systemctl, run chrooted,
	# then says "Running in chroot, ignoring command" and exits 0).
	mkdir -p "$work/img/$arm/run/systemd/system"
	# The document's locale enabled (not built) in locale.gen: Debian's
	# locale-gen ignores its arguments, and cloud-init 22.4 relies on them,
	# so on a stock tree its locale module fails in milliseconds
	# (update-locale: invalid locale) where flint enables the locale and
	# builds it. Enabled, both build it.
	[[ ! -f "$work/img/$arm/etc/locale.gen" ]] ||
		sed -i 's/^# *\(de_DE.UTF-8 UTF-8\)$/\1/' "$work/img/$arm/etc/locale.gen"
done
# cloud-init's seed: the same instance through NoCloud.
seed=$work/img/cloud-init/var/lib/cloud/seed/nocloud
mkdir -p "$seed"
cp "$work/user-data" "$seed/user-data"
{
	echo "instance-id: $(awk '$1 == "instance-id:" {print $2; exit}' "$fixture")"
	echo "local-hostname: $(awk '$1 == "local-hostname:" {print $2; exit}' "$fixture")"
	echo "public-keys:"
	sed -n 's/^ *openssh-key: /  - /p' "$fixture"
} >"$seed/meta-data"
printf 'datasource_list: [ NoCloud ]\n' >"$work/img/cloud-init/etc/cloud/cloud.cfg.d/99-bench-nocloud.cfg"
declare -A image=([flint]=cloud-init [flint-img]=flint-img [cloud-init]=cloud-init)

arms=(cloud-init flint flint-img)
mkdir "$work/runs"
for r in $(seq "$rounds"); do
	# Rotate the order: each arm goes first, second and third in turn.
	order=("${arms[@]:$((r % 3))}" "${arms[@]:0:$((r % 3))}")
	for arm in "${order[@]}"; do
		out=$work/runs/$r-$arm
		mkdir "$out"
		root=$work/root
		cp -a "$work/img/${image[$arm]}" "$root"
		# On a disk, the copy's dirty pages are not the boot's to flush.
		[[ -z "${DIR:-}" ]] || sync -f "$root"
		unshare -n -m -u -p --fork --mount-proc --propagation private \
			bash "$0" __boot "$arm" "$root" "$out" "$work"
		cp "$root/var/log/bench-apt-get.log" "$out/apt-get.log" 2>/dev/null || : >"$out/apt-get.log"
		# The boot's mounts (/proc, /sys, /dev) went with its namespace.
		if grep -q " $root/" /proc/self/mountinfo; then
			echo "$me: something is still mounted below $root; stopping" >&2
			exit 1
		fi
		if [[ $r == 1 && -n "${KEEP:-}" ]]; then
			mv "$root" "$out/root"
		else
			rm -rf --one-file-system "$root"
		fi
	done
done

python3 - "$work/runs" "$rounds" <<'PY'
import os, re, statistics, sys
runs, rounds = sys.argv[1], int(sys.argv[2])
# The modules whose time is mostly a program both run in the image:
# locale-gen and update-ca-certificates.
shared = ("locale", "ca-certs")
t, rest = {}, {}
for d in sorted(os.listdir(runs)):
    r, arm = d.split("-", 1)
    stages = [l.split() for l in open(os.path.join(runs, d, "times"))]
    t.setdefault(arm, {})[int(r)] = {s: int(us) / 1e6 for s, us, _ in stages}
    bad = [f"{s} exit {rc}" for s, _, rc in stages if rc not in ("0", "2")]
    if bad:
        print(f"round {r} {arm}: " + ", ".join(bad))
    an = open(os.path.join(runs, d, "analyze.txt")).read()
    if arm == "cloud-init":  # cloud-init analyze blame: "01.219s (modules-config/config-locale)"
        mods = {m: float(x) for x, m in re.findall(r"([\d.]+)s \(\S+/config-(\S+)\)", an)}
    else:  # flint analyze: "964.372 ms  locale  per-instance ok"
        mods = {m: float(x) / 1000 for x, m in re.findall(r"^ *([\d.]+) ms +(\S+) ", an, re.M)}
    rest.setdefault(arm, {})[int(r)] = sum(t[arm][int(r)].values()) - sum(mods.get(m, 0) for m in shared)
def spread(xs):
    return f"median {statistics.median(xs):6.3f} s  min {min(xs):6.3f}  max {max(xs):6.3f}"
def ratios(a, b, of):
    x = [of[a][r] / of[b][r] for r in sorted(of[b])]
    return " ".join(f"{v:.2f}" for v in x) + f"  (median {statistics.median(x):.2f})"
total = {arm: {r: sum(s.values()) for r, s in v.items()} for arm, v in t.items()}
print(f"\n{rounds} rounds, each boot on a fresh copy; wall time of the whole process(es)")
for arm in ("cloud-init", "flint", "flint-img"):
    print(f"{arm:10} total  {spread(list(total[arm].values()))}")
    if arm == "cloud-init":
        for s in t[arm][1]:
            print(f"  {s.replace('_', ' '):22} {spread([x[s] for x in t[arm].values()])}")
print(f"less the locale and ca-certs modules (locale-gen, update-ca-certificates):")
for arm in ("cloud-init", "flint", "flint-img"):
    print(f"{arm:10} rest   {spread(list(rest[arm].values()))}")
for arm in ("flint", "flint-img"):
    print(f"cloud-init/{arm} per round, total: {ratios('cloud-init', arm, total)}")
    print(f"cloud-init/{arm} per round, rest:  {ratios('cloud-init', arm, rest)}")
PY
echo
echo "== the first round's boots (logs in $work/runs/1-*)"
first=$work/runs/1-cloud-init
echo "-- cloud-init: stage exit codes: $(awk '{printf "%s=%s ", $1, $3}' "$first/times")"
python3 - "$first/result.json" <<'PY' || true
import json, sys
v1 = json.load(open(sys.argv[1]))["v1"]
print("result.json errors:", *(["  " + e for e in v1.get("errors", [])] or ["  none"]), sep="\n")
PY
echo "modules with WARNING lines in cloud-init.log (module: first warning):"
python3 - "$first/cloud-init.log" <<'PY' || true
import re, sys
seen = {}
mod = "(user-data)"
for line in open(sys.argv[1], errors="replace"):
    m = re.search(r"Running module (\S+)", line)
    if m:
        mod = m.group(1)
    if " - " in line and "[WARNING]" in line:
        seen.setdefault(mod, line.split("[WARNING]: ", 1)[-1].strip()[:160])
for k, v in seen.items():
    print(f"  {k}: {v}")
PY
echo "package manager calls (neutralised): $(sed 's/--option=[^ ]* //g' "$first/apt-get.log" | paste -sd';')"
echo "cloud-init analyze blame (slowest):"
head -12 "$first/analyze.txt" | sed 's/^/  /'
for arm in flint flint-img; do
	echo "-- $arm: exit $(awk '{print $3}' "$work/runs/1-$arm/times")"
	sed 's/^/  /' "$work/runs/1-$arm/status.txt"
	echo "  package manager calls (neutralised): $(paste -sd';' "$work/runs/1-$arm/apt-get.log")"
	echo "  $(tail -1 "$work/runs/1-$arm/analyze.txt")"
	echo "  handlers (status, time, what they noted):"
	python3 - "$work/runs/1-$arm/status.json" <<'PY' || true
import json, sys
for h in json.load(open(sys.argv[1]))["handlers"]:
    notes = h.get("notes") or ([h["reason"]] if h.get("reason") else [])
    if notes or h.get("duration_ms", 0) >= 1:
        line = "; ".join(notes)
        print(f"    {h['name']:15} {h['status']:8} {h.get('duration_ms', 0):8.1f} ms  {line[:150]}{'...' if len(line) > 150 else ''}")
PY
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
