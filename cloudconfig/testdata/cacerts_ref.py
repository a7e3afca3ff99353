# Reference peer: cloud-init 22.4's cc_ca_certs.handle with its Debian
# paths moved into a temporary directory and subp recorded, not run.
import json
import logging
import os
import sys
import tempfile

from cloudinit import subp
from cloudinit.config import cc_ca_certs

cases = json.load(open(sys.argv[1]))
out = {}
for c in cases:
    tmp = tempfile.mkdtemp()
    cfg = {
        "ca_cert_path": tmp + "/usr/share/ca-certificates/",
        "ca_cert_filename": "cloud-init-ca-certs.crt",
        "ca_cert_config": tmp + "/etc/ca-certificates.conf",
        "ca_cert_system_path": tmp + "/etc/ssl/certs/",
        "ca_cert_update_cmd": ["update-ca-certificates"],
    }
    for d in (cfg["ca_cert_path"], cfg["ca_cert_system_path"]):
        os.makedirs(d)
        open(d + "default.crt", "w").close()
    if c["conf"] is not None:
        with open(cfg["ca_cert_config"], "w") as f:
            f.write(c["conf"])
    cc_ca_certs.DEFAULT_CONFIG = cfg
    calls = []

    def fake_subp(args, data=None, **kw):
        calls.append({"args": list(args), "data": data})
        return ("", "")

    subp.subp = fake_subp

    class Distro:
        name = "debian"

    class Cloud:
        distro = Distro()

    try:
        cc_ca_certs.handle("ca_certs", c["cfg"], Cloud(), logging.getLogger(), [])
    except Exception as e:  # noqa: BLE001
        out[c["name"]] = {"error": "%s: %s" % (type(e).__name__, e)}
        continue
    files = {}
    for root, _, names in os.walk(tmp):
        for n in names:
            p = os.path.join(root, n)
            files[p[len(tmp):]] = open(p).read()
    out[c["name"]] = {"files": files, "calls": calls}
json.dump(out, sys.stdout)
