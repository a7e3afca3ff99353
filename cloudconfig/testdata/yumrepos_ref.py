# Reference peer: cloud-init 22.4's cc_yum_add_repo.handle on each case's
# cloud-config (loaded as cloud-init loads it), with yum_repo_dir moved
# into a temporary directory and the clock fixed.
import json
import logging
import os
import sys
import tempfile
import time

import yaml

from cloudinit.config import cc_yum_add_repo

_gmtime = time.gmtime
cases = json.load(open(sys.argv[1]))
time.gmtime = lambda *a: _gmtime(cases["now"])
out = {}
for c in cases["cases"]:
    tmp = tempfile.mkdtemp()
    cfg = yaml.safe_load(c["yaml"])
    if isinstance(cfg.get("yum_repo_dir"), str):
        cfg["yum_repo_dir"] = tmp + cfg["yum_repo_dir"]
    else:
        cfg["yum_repo_dir"] = tmp + "/etc/yum.repos.d/"
    for p in c.get("existing") or []:
        os.makedirs(os.path.dirname(tmp + p), exist_ok=True)
        open(tmp + p, "w").write("existing\n")
    r = {}
    try:
        cc_yum_add_repo.handle("yum_add_repo", cfg, None, logging.getLogger(), [])
    except Exception as e:  # noqa: BLE001
        r["error"] = "%s: %s" % (type(e).__name__, e)
    files = {}
    for root, _, names in os.walk(tmp):
        for n in names:
            p = os.path.join(root, n)
            files[p[len(tmp):]] = open(p).read()
    r["files"] = files
    out[c["name"]] = r
json.dump(out, sys.stdout)
