#!/usr/bin/env python3
"""Profiles zerotrust.mtls.mtls_cert's code path directly (no ansible-playbook): where
do the seconds of a 1,000-certificate batch go, and those of the no-change rerun?

    .venv/bin/python benchmarks/issue_certs/profile_module.py [--count 1000] [--top 25] [--as-module]

Runs, in this process under cProfile and against a throw-away CA, what a local task
runs: the action plugin's in-process path (plugins/plugin_utils/in_process.py:
validation, the module's run_module(), no_log masking). With --as-module, the module's
main() instead, with the arguments passed the way ansible-core 2.19 passes them
(ansible.module_utils.testing.patch_module_args). Prints the functions with the
largest cumulative time.
"""

import argparse
import cProfile
import io
import json
import os
import pstats
import shutil
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, ".build", "collections"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from run import cert_names, make_ca, spiffe  # noqa: E402  (the benchmark's own CA and names)

AS_MODULE = False


def call_module(args):
    from ansible_collections.zerotrust.mtls.plugins.modules import mtls_cert

    if not AS_MODULE:
        # The action plugin's path: the backend the module and the action share.
        from ansible_collections.zerotrust.mtls.plugins.module_utils import issuance
        from ansible_collections.zerotrust.mtls.plugins.plugin_utils import in_process

        arguments = dict((k, v) for k, v in args.items() if not k.startswith("_ansible_"))
        return in_process.run_module(issuance, "zerotrust.mtls.mtls_cert", arguments, args.get("_ansible_check_mode", False), args.get("_ansible_diff", False))
    from ansible.module_utils.testing import patch_module_args

    out = io.StringIO()
    real_stdout = sys.stdout
    sys.stdout = out
    try:
        with patch_module_args(args):
            try:
                mtls_cert.main()
            except SystemExit:
                pass
    finally:
        sys.stdout = real_stdout
    return json.loads(out.getvalue())


def timed(label, args):
    cpu0, start = time.process_time(), time.perf_counter()
    result = call_module(args)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - start
    if result.get("failed"):
        raise SystemExit("profile: the module failed: %s" % result.get("msg"))
    print("== %s: %.2f s CPU, %.2f s wall, no profiler (changed=%s, %s)" % (label, cpu, wall, result.get("changed"), result.get("summary")))


def profiled(label, args, top):
    # CPU time, not wall: the figures must not depend on what else runs on the machine.
    profiler = cProfile.Profile(time.process_time)
    start = time.perf_counter()
    profiler.enable()
    result = call_module(args)
    profiler.disable()
    elapsed = time.perf_counter() - start
    if result.get("failed"):
        raise SystemExit("profile: the module failed: %s" % result.get("msg"))
    print("== %s: %.2f s wall in the module; profile below in CPU seconds (changed=%s, %s)" % (label, elapsed, result.get("changed"), result.get("summary")))
    stream = io.StringIO()
    pstats.Stats(profiler, stream=stream).sort_stats("cumulative").print_stats(top)
    print("\n".join(line for line in stream.getvalue().splitlines() if line.strip())[:12000])
    stream = io.StringIO()
    pstats.Stats(profiler, stream=stream).sort_stats("tottime").print_stats(12)
    print("-- by own time --")
    print("\n".join(line for line in stream.getvalue().splitlines() if line.strip())[:6000])


def main():
    parser = argparse.ArgumentParser(description="Profile mtls_cert's batch path.")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--no-profile", action="store_true", help="only time both runs (CPU and wall), without cProfile's overhead")
    parser.add_argument("--as-module", action="store_true", help="profile the module's main() (the path of a remote or become task)")
    args = parser.parse_args()
    global AS_MODULE
    AS_MODULE = args.as_module
    workdir = tempfile.mkdtemp(prefix="mtls-profile-")
    try:
        ca_paths, _key, _cert = make_ca(workdir)
        out = os.path.join(workdir, "out")
        os.mkdir(out)
        module_args = {
            "ca_cert_path": ca_paths["cert"],
            "ca_key_path": ca_paths["key"],
            "dest_dir": out,
            "usage": "client",
            "key_type": "ec_p256",
            "valid_for": "30d",
            "certs": [{"name": n, "common_name": n, "uris": [spiffe(n)]} for n in cert_names(args.count)],
            "_ansible_check_mode": False,
            "_ansible_diff": False,
        }
        run = timed if args.no_profile else (lambda label, a: profiled(label, a, args.top))
        # The first import of the module and of ansible's module_utils is not the module's work.
        call_module(dict(module_args, certs=[], _ansible_check_mode=True))
        run("first run, %d certificates" % args.count, module_args)
        run("no-change rerun", module_args)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
