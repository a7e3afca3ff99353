# Reference peer: cloud-init 22.4's cc_ssh_import_id.handle on each
# case's cloud-config (loaded as cloud-init loads it, with Debian's
# cloud.cfg "users: [default]" when user-data has no users), the
# distribution's default user "admin", every account existing, and the
# commands recorded, never run.
import json
import logging
import sys

import yaml

from cloudinit.config import cc_ssh_import_id

cases = json.load(open(sys.argv[1]))
calls = []


class Distro:
    def get_default_user(self):
        return {"name": "admin", "groups": ["adm"], "lock_passwd": True}


class Cloud:
    distro = Distro()


def record(args, **kw):
    calls.append(list(args))
    return ("", "")


cc_ssh_import_id.subp.which = lambda name, **kw: "/usr/bin/" + name
cc_ssh_import_id.subp.subp = record
cc_ssh_import_id.pwd.getpwnam = lambda name: None
out = {}
for c in cases:
    cfg = yaml.safe_load(c["yaml"])
    cfg.setdefault("users", ["default"])
    del calls[:]
    err = ""
    try:
        cc_ssh_import_id.handle("ssh_import_id", cfg, Cloud(), logging.getLogger(), [])
    except Exception as e:  # noqa: BLE001
        err = "%s: %s" % (type(e).__name__, e)
    out[c["name"]] = {"calls": list(calls), "error": err}
json.dump(out, sys.stdout)
