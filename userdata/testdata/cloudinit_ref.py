#!/usr/bin/python3
"""Reference output of Debian's cloud-init for the differential test.

Reads a manifest (JSON list of {"name", "file", "launch_index",
"instance_data"}) and prints, for each document, the parts cloud-init's
UserDataProcessor produces (after launch-index filtering) and the
cloud-config its CloudConfigPartHandler merges, as JSON on stdout.
Only the user-data processor, the part handlers it needs and the mergers
are used; no cloud-init service or datasource runs.

Usage: cloudinit_ref.py MANIFEST.json
       cloudinit_ref.py --bench FILE N   (time N process+merge runs)
"""
import hashlib
import json
import logging
import os
import sys
import tempfile

from cloudinit import handlers, helpers
from cloudinit.filters import launch_index
from cloudinit.handlers.cloud_config import CloudConfigPartHandler
from cloudinit.handlers.jinja_template import JinjaTemplatePartHandler
from cloudinit.handlers.shell_script import ShellScriptPartHandler
from cloudinit import user_data, util


def loopback_only(real):
    """Refuse every include that is not on 127.0.0.1: test documents must
    never make cloud-init reach the network."""
    from urllib.parse import urlparse

    def guarded(url, *args, **kwargs):
        host = urlparse(url).hostname
        if host not in ("127.0.0.1", "localhost"):
            raise IOError("include of non-loopback URL refused by the test harness")
        kwargs["retries"] = 1
        return real(url, *args, **kwargs)

    return guarded


user_data.read_file_or_url = loopback_only(user_data.read_file_or_url)


def make_paths(tmp):
    paths = helpers.Paths(
        {"cloud_dir": os.path.join(tmp, "cloud"), "run_dir": os.path.join(tmp, "run")}
    )
    os.makedirs(paths.get_ipath_cur("data"), exist_ok=True)
    os.makedirs(paths.get_ipath_cur("scripts"), exist_ok=True)
    os.makedirs(paths.run_dir, exist_ok=True)
    return paths


def norm(v):
    if isinstance(v, dict):
        out = {}
        for k, x in v.items():
            if isinstance(k, bool):
                k = "true" if k else "false"
            elif k is None:
                k = "null"
            elif not isinstance(k, str):
                k = str(k)
            out[k] = norm(x)
        return out
    if isinstance(v, (list, tuple)):
        return [norm(x) for x in v]
    if isinstance(v, bytes):
        return v.decode("utf-8", "surrogateescape")
    return v


def payload_bytes(payload):
    if payload is None:
        return b""
    if isinstance(payload, str):
        return payload.encode("utf-8", "surrogateescape")
    return payload


def run(raw, tmp, launch_idx=None, instance_data=None):
    paths = make_paths(tmp)
    if instance_data is not None:
        with open(paths.get_runpath("instance_data_sensitive"), "w") as f:
            json.dump(instance_data, f)
    proc = user_data.UserDataProcessor(paths)
    msg = proc.process(raw)
    if launch_idx is not None:
        msg = launch_index.Filter(util.safe_int(launch_idx)).apply(msg)
    cc = CloudConfigPartHandler(paths)
    ss = ShellScriptPartHandler(paths)
    jinja = JinjaTemplatePartHandler(paths, sub_handlers=[cc, ss])
    cc.handle_part(None, handlers.CONTENT_START, None, None, None, None)
    parts = []
    for part in msg.walk():
        if part.get_content_maintype() == "multipart":
            continue
        ctype = part.get_content_type() or handlers.OCTET_TYPE
        filename = part.get_filename()
        headers = dict(part)
        headers["Content-Type"] = ctype
        payload = util.fully_decoded_payload(part)
        parts.append(
            {
                "content_type": ctype,
                "filename": filename,
                "sha256": hashlib.sha256(payload_bytes(payload)).hexdigest(),
            }
        )
        if ctype in ("text/cloud-config", "text/cloud-config-jsonp"):
            cc.handle_part(None, ctype, filename, payload, "always", headers)
        elif ctype == "text/jinja2":
            try:
                jinja.handle_part(None, ctype, filename, payload, "always", headers)
            except Exception as e:  # cloud-init logs and goes on
                logging.warning("jinja %s: %s", filename, e)
    return {"parts": parts, "cloud_config": norm(cc.cloud_buf or {})}


def main():
    if sys.argv[1] == "--bench":
        import timeit

        raw = open(sys.argv[2], "rb").read()
        n = int(sys.argv[3])
        with tempfile.TemporaryDirectory() as tmp:
            t = timeit.timeit(lambda: run(raw, tmp), number=n)
        print(json.dumps({"runs": n, "seconds_per_run": t / n}))
        return
    manifest = json.load(open(sys.argv[1]))
    results = {}
    for doc in manifest:
        raw = open(doc["file"], "rb").read()
        with tempfile.TemporaryDirectory() as tmp:
            try:
                results[doc["name"]] = run(
                    raw, tmp, doc.get("launch_index"), doc.get("instance_data")
                )
            except Exception as e:
                results[doc["name"]] = {"error": "%s: %s" % (type(e).__name__, e)}
    json.dump(results, sys.stdout, sort_keys=True, default=str)


if __name__ == "__main__":
    logging.basicConfig(level=logging.ERROR)
    main()
