# Reference peer: cloud-init 22.4's cc_locale.handle on Debian, the locale
# file in a temporary directory. update-locale really runs (with
# --no-checks: the locales are not built on the test machine); locale-gen
# is recorded, not run.
import json
import logging
import os
import subprocess
import sys
import tempfile

from cloudinit import distros, helpers, subp
from cloudinit.config import cc_locale
from cloudinit.distros import debian

cases = json.load(open(sys.argv[1]))
orig_read = debian.read_system_locale
out = {}
for c in cases:
    tmp = tempfile.mkdtemp()
    fn = os.path.join(tmp, "locale")
    if c["current"] is not None:
        with open(fn, "w") as f:
            f.write(c["current"])
    calls = []

    def fake_subp(args, **kw):
        args = list(args)
        if args[0] == "update-locale":
            subprocess.run([args[0], "--no-checks"] + args[1:], check=True)
        calls.append(args)
        return ("", "")

    subp.subp = fake_subp
    debian.subp.subp = fake_subp
    debian.read_system_locale = lambda sys_path=fn, keyname="LANG": orig_read(fn, keyname)
    paths = helpers.Paths({"cloud_dir": tmp + "/cloud", "run_dir": tmp + "/run"})
    distro = distros.fetch("debian")("debian", {}, paths)

    class Cloud:
        pass

    cloud = Cloud()
    cloud.distro = distro
    cloud.get_locale = distro.get_locale
    cfg = dict(c["cfg"])
    cfg["locale_configfile"] = fn
    cc_locale.handle("locale", cfg, cloud, logging.getLogger(), [])
    content = open(fn).read() if os.path.exists(fn) else None
    out[c["name"]] = {"file": content, "calls": calls}
json.dump(out, sys.stdout)
