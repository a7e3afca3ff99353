# Reference peer for the small modules: cloud-init 22.4's own functions,
# offline. groups: ug_util._normalize_groups; power_state:
# cc_power_state_change.load_power_state with Debian's distro; phone_home:
# cc_phone_home.handle with the POST captured; ssh_redirect_user: the
# authorized_keys lines ssh_util writes for it.
import json
import logging
import sys
import tempfile

from cloudinit import distros, helpers, ssh_util, url_helper
from cloudinit.config import cc_phone_home, cc_power_state_change
from cloudinit.distros import ug_util

req = json.load(open(sys.argv[1]))
tmp = tempfile.mkdtemp()
paths = helpers.Paths({"cloud_dir": tmp + "/cloud", "run_dir": tmp + "/run"})
distro = distros.fetch("debian")("debian", {}, paths)


def attempt(f):
    try:
        return {"out": f()}
    except Exception as e:  # noqa: BLE001
        return {"error": "%s: %s" % (type(e).__name__, e)}


out = {"groups": {}, "power_state": {}, "phone_home": {}, "redirect": {}}
for name, v in req["groups"].items():
    out["groups"][name] = attempt(lambda: ug_util._normalize_groups(v))
for name, v in req["power_state"].items():
    out["power_state"][name] = attempt(lambda: list(cc_power_state_change.load_power_state({"power_state": v}, distro)))

posted = {}
cc_phone_home.url_helper.read_file_or_url = lambda url, data=None, retries=None, **kw: posted.update(
    {"url": url, "data": data, "retries": retries})
cc_phone_home.util.load_file = lambda p: req["host_keys"][p] if p in req["host_keys"] else open("/nonexistent")


class HN:
    def __init__(self, h):
        self.hostname = h


class Cloud:
    paths = paths

    def get_instance_id(self):
        return "i-0abc"

    def get_hostname(self, fqdn=False):
        return HN("web-1.example.internal" if fqdn else "web-1")


for name, v in req["phone_home"].items():
    posted.clear()
    r = attempt(lambda: cc_phone_home.handle("phone_home", {"phone_home": v}, Cloud(), logging.getLogger(), []))
    r["posted"] = dict(posted)
    out["phone_home"][name] = r

for name, c in req["redirect"].items():
    opts = ssh_util.DISABLE_USER_OPTS.replace("$USER", c["default"]).replace("$DISABLE_USER", c["user"])
    parser = ssh_util.AuthKeyLineParser()
    out["redirect"][name] = [str(parser.parse(k, options=opts)) for k in c["keys"]]
json.dump(out, sys.stdout)
