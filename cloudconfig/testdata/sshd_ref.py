# Reference peer: cloud-init 22.4's cc_set_passwords.handle_ssh_pwauth on
# an sshd_config (and drop-in) in a temporary directory; the service
# manager is a stub that reports sshd running.
import json
import os
import sys
import tempfile

from cloudinit import ssh_util
from cloudinit.config import cc_set_passwords

cases = json.load(open(sys.argv[1]))


class Distro:
    def get_option(self, name, default=None):
        return default

    def manage_service(self, action, service):
        self.restarted = self.restarted or action == "restart"

    def uses_systemd(self):
        return True


out = {}
for c in cases:
    tmp = tempfile.mkdtemp()
    fname = os.path.join(tmp, "sshd_config")
    if c["sshd_config"] is not None:
        with open(fname, "w") as f:
            f.write(c["sshd_config"].replace("/etc/ssh/sshd_config", fname))
    if c["drop_in"] is not None:
        os.makedirs(fname + ".d")
        with open(fname + ".d/50-cloud-init.conf", "w") as f:
            f.write(c["drop_in"])
    cc_set_passwords.update_ssh_config = lambda u: ssh_util.update_ssh_config(u, fname)
    d = Distro()
    d.restarted = False
    cc_set_passwords.handle_ssh_pwauth(c["value"], d)
    files = {}
    for name in ("sshd_config", "sshd_config.d/50-cloud-init.conf"):
        p = os.path.join(tmp, name)
        if os.path.exists(p):
            files[name] = open(p).read().replace(fname, "/etc/ssh/sshd_config")
    out[c["name"]] = {"files": files, "restarted": d.restarted}
json.dump(out, sys.stdout)
