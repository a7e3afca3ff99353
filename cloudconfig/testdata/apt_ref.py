# Reference peer: cloud-init 22.4's cc_apt_configure functions, as
# apply_apt calls them, with every written path moved into a temporary
# directory. gpg really runs (--dearmor, offline); other programs are
# recorded, not run.
import json
import os
import re
import subprocess
import sys
import tempfile

from cloudinit import subp, util
from cloudinit.config import cc_apt_configure as apt

cases = json.load(open(sys.argv[1]))
real_write = util.write_file
out = {}
for c in cases:
    tmp = tempfile.mkdtemp()
    calls = []

    def write_file(filename, content, mode=0o644, omode="wb", *a, **kw):
        p = tmp + filename
        os.makedirs(os.path.dirname(p), exist_ok=True)
        if isinstance(content, str) and "b" in omode:
            content = content.encode()
        real_write(p, content, mode=mode, omode=omode)

    def fake_subp(args, data=None, **kw):
        args = list(args)
        if args[0] == "gpg":
            r = subprocess.run(args, input=data if isinstance(data, bytes) else (data or "").encode(),
                               capture_output=True, check=True)
            return subp.SubpResult(r.stdout, b"")
        calls.append(args)
        return subp.SubpResult("", "")

    util.write_file = write_file
    subp.subp = fake_subp

    class Distro:
        name = "debian"

        def update_package_sources(self):
            pass

    class DS:
        def get_package_mirror_info(self):
            return {"primary": c["default_primary"], "security": c["default_security"]}

    class Cloud:
        distro = Distro()
        datasource = DS()

        def get_template_filename(self, name):
            return "/etc/cloud/templates/%s.tmpl" % name

    cloud = Cloud()
    cfg = c["cfg"]
    try:
        mirrors = apt.find_apt_mirror_info(cfg, cloud, arch="amd64")
        if util.is_false(cfg.get("preserve_sources_list", False)):
            apt.generate_sources_list(cfg, "bookworm", mirrors, cloud)
        apt.apply_apt_config(cfg, apt.APT_PROXY_FN, apt.APT_CONFIG_FN)
        if "sources" in cfg:
            params = mirrors
            params["RELEASE"] = "bookworm"
            params["MIRROR"] = mirrors["MIRROR"]
            apt.add_apt_sources(cfg["sources"], cloud, template_params=params,
                                aa_repo_match=re.compile(apt.ADD_APT_REPO_MATCH).search)
    except Exception as e:  # noqa: BLE001
        out[c["name"]] = {"error": "%s: %s" % (type(e).__name__, e)}
        continue
    files = {}
    for root, _, names in os.walk(tmp):
        for n in names:
            p = os.path.join(root, n)
            files[p[len(tmp):]] = open(p, "rb").read().hex()
    out[c["name"]] = {"files": files, "calls": calls}
json.dump(out, sys.stdout)
