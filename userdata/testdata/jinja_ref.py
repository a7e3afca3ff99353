# Reference peer for flint's jinja rendering: Debian's cloud-init 22.4
# crawls a fixed set of IMDS answers with its own MetadataMaterializer,
# writes instance-data.json as its Ec2 datasource does, and renders each
# template as its jinja part handler does. Offline: the IMDS answers come
# from the manifest, files go to a temporary directory.
import json
import os
import sys
import tempfile

from cloudinit import distros, helpers
from cloudinit.handlers.jinja_template import convert_jinja_instance_data
from cloudinit.sources import DataSourceEc2
from cloudinit.sources.helpers import ec2
from cloudinit.templater import render_string

BASE = "http://169.254.169.254/2021-03-23/"


def main():
    req = json.load(open(sys.argv[1]))
    imds = req["imds"]

    def caller(url):
        return imds[url[len(BASE):]].encode()

    def tree(path):
        return ec2.MetadataMaterializer(imds[path], BASE + path, caller).materialize()

    crawled = {"meta-data": tree("meta-data/"), "_metadata_api_version": "2021-03-23"}
    if "dynamic/instance-identity/" in imds:
        crawled["dynamic"] = {"instance-identity": tree("dynamic/instance-identity/")}
    tmp = tempfile.mkdtemp()
    paths = helpers.Paths({"cloud_dir": tmp + "/cloud", "run_dir": tmp + "/run"})
    os.makedirs(tmp + "/run")
    distro = distros.fetch("debian")("debian", {}, paths)
    ds = DataSourceEc2.DataSourceEc2({}, distro, paths)
    ds._crawled_metadata = crawled
    ds.metadata = crawled["meta-data"]
    ds.identity = crawled.get("dynamic", {}).get("instance-identity", {}).get("document", {})
    ds.metadata_address = "http://169.254.169.254"
    ds._cloud_name = "aws"
    ds._platform_type = "ec2"
    ds.persist_instance_data(write_cache=False)
    data = json.load(open(tmp + "/run/instance-data-sensitive.json"))
    variables = convert_jinja_instance_data(
        data, decode_paths=data.get("base64-encoded-keys", []), include_key_aliases=True
    )
    results = {}
    for t in req["templates"]:
        try:
            results[t["name"]] = {"out": render_string(t["text"], variables)}
        except Exception as e:  # noqa: BLE001 - every failure is compared
            results[t["name"]] = {"error": "%s: %s" % (type(e).__name__, e)}
    json.dump({"instance_data": data, "results": results}, sys.stdout)


main()
