# Copyright (c) zerotrust.mtls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""`ansible-test integration` in parallel shards: the `integration` step of `make test`.

Each worker has its own copy of the collection (scripts/collection-tree.sh: ansible-test
keeps state in the tree, so two runs cannot share one) and takes the next target from
one queue, longest first, until the queue is empty. The targets are independent by
design (each works in namespaces and directories of its own), so two of them can run
side by side on the shared local control plane.

  .venv/bin/python scripts/integration.py [TARGET ...]   # default: every target except setup_*
  MTLS_INTEGRATION_JOBS=1 .venv/bin/python scripts/integration.py   # one at a time
  .venv/bin/python scripts/integration.py --exclude rotate_site_layout   # every target but one

Prints one line per target (time, result) and, on failure, the tail of that target's
log; exits non-zero when a target failed. Needs MTLS_KUBECONFIG (the integration config
of every tree points there).
"""

import os
import queue
import shutil
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGETS_DIR = os.path.join(ROOT, "tests", "integration", "targets")
# Seconds measured on the 2-core machine (integration step of 2026-12-03, 19:45 UTC), used
# only to start the longest targets first, so that neither worker ends with a long target
# while the other idles (a target missing here counts as 60 s).
EXPECTED_SECONDS = {
    "site": 159,
    "rotate_site_layout": 123,
    "ingress_openshift": 92,
    "revoke_playbook": 77,
    "mesh_policy": 74,
    "rotate_root_ca": 67,
    "rotate_intermediate_client": 62,
    "mtls_cert": 44,
    "mtls_secret": 40,
    "pki_bad_input": 37,
    "audit_playbook": 33,
    "mtls_crl": 31,
    "mtls_ca": 30,
    "bootstrap_pki": 20,
    "pki_tls_handshake": 19,
    "mtls_cert_info": 14,
    "rotate_state": 14,
    "kube_bad_input": 11,
    "mtls_cert_in_process": 8,
}


def all_targets():
    return sorted(name for name in os.listdir(TARGETS_DIR) if not name.startswith("setup_") and os.path.isdir(os.path.join(TARGETS_DIR, name)))


def make_tree(kubeconfig):
    tree = subprocess.run([os.path.join(ROOT, "scripts", "collection-tree.sh")], check=True, stdout=subprocess.PIPE).stdout.decode().strip()
    with open(os.path.join(tree, "tests", "integration", "integration_config.yml"), "w") as handle:
        handle.write("mtls_kubeconfig: %s\n" % kubeconfig)
    return tree


def worker(number, todo, results, kubeconfig, log_dir):
    tree = make_tree(kubeconfig)
    try:
        while True:
            try:
                target = todo.get_nowait()
            except queue.Empty:
                return
            log = os.path.join(log_dir, target + ".log")
            started = time.monotonic()
            with open(log, "w") as handle:
                code = subprocess.call(
                    ["ansible-test", "integration", "--python", "3.11", "--local", "--color", "no", "-v", target],
                    cwd=tree,
                    stdout=handle,
                    stderr=subprocess.STDOUT,
                )
            elapsed = time.monotonic() - started
            results.append((target, code, elapsed, log))
            print("  %-28s %6.0f s  %s  (worker %d)" % (target, elapsed, "passed" if code == 0 else "FAILED", number), flush=True)
    finally:
        shutil.rmtree(tree.rsplit("/ansible_collections/", 1)[0], ignore_errors=True)


def main(argv):
    kubeconfig = os.environ.get("MTLS_KUBECONFIG")
    if not kubeconfig:
        print(
            "integration: MTLS_KUBECONFIG is not set; start the local control plane (tests/cluster/up.sh) "
            "and export MTLS_KUBECONFIG=.cluster/kubeconfig, or run make test.",
            file=sys.stderr,
        )
        return 2
    excluded = []
    while len(argv) >= 2 and argv[0] == "--exclude":
        excluded.append(argv[1])
        argv = argv[2:]
    targets = [target for target in (argv or all_targets()) if target not in excluded]
    unknown = [target for target in targets + excluded if target not in all_targets()]
    if unknown:
        print("integration: no target %s under tests/integration/targets." % ", ".join(unknown), file=sys.stderr)
        return 2
    jobs = max(1, int(os.environ.get("MTLS_INTEGRATION_JOBS", "2")))
    log_dir = os.environ.get("MTLS_INTEGRATION_LOGS") or os.path.join(ROOT, "tests", "output", "integration-logs")
    os.makedirs(log_dir, exist_ok=True)
    todo = queue.Queue()
    for target in sorted(targets, key=lambda name: -EXPECTED_SECONDS.get(name, 60)):
        todo.put(target)
    results = []
    started = time.monotonic()
    print("integration: %d targets, %d at a time, logs in %s" % (len(targets), jobs, log_dir), flush=True)
    threads = [threading.Thread(target=worker, args=(number + 1, todo, results, kubeconfig, log_dir)) for number in range(min(jobs, len(targets)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    failed = [result for result in results if result[1] != 0]
    for target, _code, _elapsed, log in failed:
        print("\n===== %s FAILED; the end of %s:" % (target, log))
        with open(log, errors="replace") as handle:
            # Module results can be one line of megabytes: show the start of each line.
            print("".join(line if len(line) <= 500 else line[:500] + " [...]\n" for line in handle.readlines()[-60:]))
    missing = sorted(set(targets) - set(result[0] for result in results))
    total = sum(result[2] for result in results)
    print(
        "integration: %d passed, %d failed in %.0f s wall (%.0f s of target time)"
        % (len(results) - len(failed), len(failed) + len(missing), time.monotonic() - started, total)
    )
    return 1 if failed or missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
