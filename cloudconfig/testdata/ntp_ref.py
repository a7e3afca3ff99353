# Reference peer: cloud-init 22.4's cc_ntp renders each case's client
# template to a file in a temporary directory, offline.
import json
import os
import sys
import tempfile

from cloudinit.config import cc_ntp

cases = json.load(open(sys.argv[1]))
out = {}
tmp = tempfile.mkdtemp()
for c in cases:
    path = os.path.join(tmp, c["name"].replace(" ", "_"))
    cc_ntp.write_ntp_config_template(
        "debian",
        service_name=c["service"],
        servers=c["servers"],
        pools=c["pools"],
        path=path,
        template_fn="/etc/cloud/templates/%s.tmpl" % c["template"],
    )
    out[c["name"]] = open(path).read()
json.dump(out, sys.stdout)
