"""Run cloud-init's own cc_mounts.handle on a given cloud-config, metadata
block-device-mapping, set of existing device paths and fstab, offline, and
print the fstab it leaves and the commands it would run, as JSON.

Input (stdin, JSON): a list of cases {"cfg": YAML text, "bdm": {name:
device} or null, "exists": [paths], "fstab": text or null, "systemd":
bool}; output: a list of {"fstab": text or null, "cmds": [[...]], "error":
text or null}, one per case. One process runs them all, since importing
cloud-init dominates the time.
"""
import traceback
import json
import logging
import os
import posixpath
import sys
import tempfile

import yaml

from cloudinit import subp, util
from cloudinit.config import cc_mounts
from cloudinit.sources import DataSource
from cloudinit.sources.DataSourceEc2 import DataSourceEc2

tmp = tempfile.mkdtemp(prefix="cc_mounts_peer.")
exists = set()
req = {}
real_exists = posixpath.exists
real_realpath = posixpath.realpath


def fake_exists(p):
    p = str(p)
    if p.startswith(tmp):
        return real_exists(p)
    return p in exists


def fake_realpath(p, *a, **k):
    p = str(p)
    if p.startswith(tmp):
        return real_realpath(p, *a, **k)
    return p


os.path.exists = fake_exists
os.path.realpath = fake_realpath

fstab = os.path.join(tmp, "fstab")
cc_mounts.FSTAB_PATH = fstab
cmds = []


def fake_subp(cmd, *a, **k):
    cmds.append(list(cmd))
    return ("", "")


subp.subp = fake_subp
cc_mounts.subp.subp = fake_subp
util.mounts = lambda: {}
real_ensure_dir = util.ensure_dir
util.ensure_dir = lambda d, *a, **k: real_ensure_dir(d, *a, **k) if str(d).startswith(tmp) else None
cc_mounts.setup_swapfile = lambda fname, size=None, maxsize=None: fname


class FakeDS:
    metadata = {}
    _remap_device = DataSource._remap_device
    device_name_to_device = DataSourceEc2.device_name_to_device


ds = FakeDS()


class Distro:
    def uses_systemd(self):
        return req["systemd"]


class Cloud:
    distro = Distro()

    def device_name_to_device(self, name):
        return ds.device_name_to_device(name)


results = []
for case in json.load(sys.stdin):
    req.clear()
    req.update(case)
    exists.clear()
    exists.update(case["exists"])
    cmds.clear()
    ds.metadata = {}
    if case["bdm"] is not None:
        ds.metadata = {"block-device-mapping": case["bdm"]}
    if os.path.exists(fstab):
        os.unlink(fstab)
    if case["fstab"] is not None:
        with open(fstab, "w") as f:
            f.write(case["fstab"])
    error = None
    try:
        cfg = yaml.safe_load(case["cfg"]) or {}
        cc_mounts.handle("mounts", cfg, Cloud(), logging.getLogger("peer"), [])
    except Exception:
        error = traceback.format_exc().strip().splitlines()[-1]
    out = None
    if os.path.exists(fstab):
        with open(fstab) as f:
            out = f.read()
    results.append({"fstab": out, "cmds": list(cmds), "error": error})
json.dump(results, sys.stdout)
