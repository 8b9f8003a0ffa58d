"""The root CA rotation with the real consumers running (issue 12).

One `ansible-playbook playbooks/rotate_root_ca.yml` run on a site.yml estate of its own
(a copy of inventories/local with a PKI under tmp_path, so the local inventory's PKI is
never touched) while istiod, the cert-manager controller, trust-manager and the SPIRE
server run through tests/cluster/pod_runner.py (test_consumers.py starts them) and three
pairs of workloads shake hands every 0.3 s with what those consumers hand out:

* istiod: zt-payments/api and zt-shop/frontend get certificates from istiod's CA every 2 s
  (10-minute lifetime) and trust istio-ca-root-cert of their own namespace;
* cert-manager: the Secrets of payments-api (server) and shop-client (client, a second
  Certificate added to the copied inventory), trusting trust-manager's Bundle target;
* SPIRE: X.509 SVIDs minted every 3 s, trusting the spire-bundle ConfigMap.

Proven: no handshake fails, the istiod and cert-manager pairs move from the old to the new
cluster intermediate, the bundles go old -> old+new -> new, a fresh SVID and the
payments-api Secret chain to the new root alone, the next site.yml changes nothing.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
import test_consumers
import yaml
from consumer_workloads import CertManagerSource, IstiodSource, Pair, SpireSource, mint_svid, roots_of, spire_socket, table
from kubernetes import client
from kubernetes.client.rest import ApiException
from test_consumers import (
    CERT_MANAGER_CHART,
    CHECKOUT,
    ISTIOD_CHART,
    TRUST_MANAGER_CHART,
    VENV_BIN,
    _check_istiod_chart,
    apply_documents,
    condition,
    current_log,
    fingerprint,
    install_module_chart,
    pod_runner,
    render_module_chart,
    timing,
    verify_chain,
    wait_for,
    workload_certificate,
)

# test_consumers' fixtures, module-scoped: pytest makes them anew for this module. Its `site`
# is replaced below (this module's inventory and PKI), and its fixtures that need a site
# (install_module_chart, spire_server) take this one.
runner = test_consumers.runner
core = test_consumers.core
custom = test_consumers.custom
cert_manager = test_consumers.cert_manager
trust_manager = test_consumers.trust_manager
spire_server = test_consumers.spire_server

ROTATION_TIMEOUT_S = 900
# istiod takes a new root from cacerts only with ISTIO_MULTIROOT_MESH (pilot/pkg/bootstrap/
# istio_ca.go handleEvent: "Multi root is disabled, updating new ROOT-CA not supported"
# otherwise), and then only a superset or a subset of the roots it holds, which is what the
# rotation delivers (old -> old+new -> new). A mesh that rotates its root runs it so.
ISTIOD_MULTIROOT_CHART = ISTIOD_CHART._replace(values=(*ISTIOD_CHART.values, "env.ISTIO_MULTIROOT_MESH=true"))
CHARTS = (ISTIOD_MULTIROOT_CHART, CERT_MANAGER_CHART, TRUST_MANAGER_CHART)
CLIENT_CERTIFICATE = {
    "name": "shop-client",
    "namespace": "zt-shop",
    "uris": ["spiffe://cluster.local/ns/zt-shop/sa/frontend"],
    "usages": ["digital signature", "client auth"],
    "duration": "720h",
    "renew_before": "240h",
}


def ansible_playbook(inventory: Path, playbook: str, log: Path, *extra: str, timeout: float = 900) -> tuple[int, str]:
    """One playbook run, its output in log; (exit status, output). A timeout is status -9."""
    env = {**os.environ, "ANSIBLE_CONFIG": str(CHECKOUT / "ansible.cfg"), "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}"}
    argv = [str(VENV_BIN / "ansible-playbook"), "-i", str(inventory), f"playbooks/{playbook}", *extra]
    with open(log, "w") as out:
        try:
            status = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, cwd=CHECKOUT, env=env, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            status = -9
    return status, log.read_text(errors="replace")


def tail(text: str, lines: int = 60) -> str:
    return "\n".join(text.splitlines()[-lines:])


def recap_changed(output: str, host: str = "localhost") -> int:
    match = re.search(r"^%s\s*:\s*ok=\d+\s+changed=(\d+)" % re.escape(host), output, re.M)
    assert match, f"no recap line for {host}:\n{tail(output)}"
    return int(match.group(1))


@pytest.fixture(scope="module")
def estate(tmp_path_factory, kubeconfig_path) -> dict:
    """The copied inventory (with the client Certificate) and the PKI directory of this module."""
    base = tmp_path_factory.mktemp("estate")
    inventory = base / "inventory"
    shutil.copytree(CHECKOUT / "inventories" / "local", inventory)
    cluster_yml = inventory / "group_vars" / "all" / "cluster.yml"
    cluster = yaml.safe_load(cluster_yml.read_text())
    cluster["cert_manager_certificates"].append(CLIENT_CERTIFICATE)
    cluster_yml.write_text(yaml.safe_dump(cluster, sort_keys=False))
    pki = base / "pki"
    extra = ("-e", f"mtls_pki_dir={pki}", "-e", f"mtls_kubeconfig={kubeconfig_path}")
    return {"inventory": inventory, "pki": pki, "extra": extra, "logs": base}


PLACEHOLDER = "zt-rotation-ip-placeholder"
# What rotate_root_ca.yml records in the cluster besides the estate: its state mirror and the
# run records the exporter reads (docs/rotation.md).
RECORD_NAMESPACE = "mtls-system"
RECORD_CONFIG_MAPS = ("mtls-rotation-root-ca", "mtls-rotation-status")


def config_map_data(core, namespace: str, name: str) -> dict | None:
    try:
        return core.read_namespaced_config_map(name, namespace).data or {}
    except ApiException as error:
        if error.status == 404:
            return None
        raise


def restore_config_map(core, namespace: str, name: str, data: dict | None) -> None:
    """The ConfigMap with exactly data again (None: it did not exist)."""
    try:
        if data is None:
            core.delete_namespaced_config_map(name, namespace)
        else:
            current = core.read_namespaced_config_map(name, namespace)
            current.data = data
            core.replace_namespaced_config_map(name, namespace, current)
    except ApiException as error:
        if error.status != 404:
            raise
        if data is not None:
            core.create_namespaced_config_map(namespace, {"metadata": {"name": name}, "data": data})


def rolled_out(apps, namespaces) -> bool:
    for namespace in namespaces:
        for deployment in apps.list_namespaced_deployment(namespace).items:
            status, want = deployment.status, deployment.spec.replicas
            if status.observed_generation != deployment.metadata.generation or (status.updated_replicas or 0) != want or (status.replicas or 0) != want:
                return False
    return True


def pods_by_ip(core) -> dict[str, list]:
    by_ip: dict[str, list] = {}
    for pod in core.list_pod_for_all_namespaces().items:
        if pod.status.pod_ip and not pod.metadata.deletion_timestamp:
            by_ip.setdefault(pod.status.pod_ip, []).append(pod)
    return by_ip


def separate_pod_ips(core, apps) -> None:
    """No two consumer pods share a pod IP (the pod runner binds each pod's listeners to its IP).

    Seen after a restart of the control plane: kwok (v0.8.0 pkg/kwok/controllers/utils.go)
    marks the IPs of the pods it finds as used but leaves a released IP usable, so it gave
    trust-manager the IP cert-manager held, and gives it again to every replacement of either.
    The way out: scale one holder's Deployment to 0 (kwok releases the IP), let a placeholder
    pod that runs nothing take the IP, scale back (kwok hands out a new IP). The placeholders
    (mtls-system, app=zt-rotation-ip-placeholder) stay: removed, they would give their IPs
    back to kwok for the next pod, which would share it again with the older holder."""
    for _ in range(20):  # each round moves kwok's next new IP on by at least one
        shared = {ip: pods for ip, pods in pods_by_ip(core).items() if len([p for p in pods if not p.metadata.name.startswith(PLACEHOLDER)]) > 1}
        if not shared:
            return
        ip, pods = next(iter(shared.items()))
        owned = [p for p in pods if (p.metadata.owner_references or [client.V1OwnerReference("", "", "", "")])[0].kind == "ReplicaSet"]
        assert owned, f"pods {[p.metadata.name for p in pods]} share {ip} and none belongs to a Deployment"
        pod = max(owned, key=lambda p: p.metadata.creation_timestamp)  # the holder kwok knows of
        replica_set = apps.read_namespaced_replica_set(pod.metadata.owner_references[0].name, pod.metadata.namespace)
        deployment, namespace = replica_set.metadata.owner_references[0].name, pod.metadata.namespace
        replicas = apps.read_namespaced_deployment(deployment, namespace).spec.replicas
        apps.patch_namespaced_deployment_scale(deployment, namespace, {"spec": {"replicas": 0}})
        wait_for(
            f"the pod of {namespace}/{deployment} to be gone",
            lambda pod=pod: pod.metadata.name not in {p.metadata.name for p in core.list_namespaced_pod(pod.metadata.namespace).items},
            timeout_s=60,
        )
        time.sleep(2)  # kwok releases the IP when it sees the deletion
        core.create_namespaced_pod(
            "mtls-system",
            {
                "metadata": {"name": f"{PLACEHOLDER}-{ip.replace('.', '-')}", "labels": {"app": PLACEHOLDER}},
                "spec": {"nodeName": pod.spec.node_name, "containers": [{"name": "placeholder", "image": "registry.k8s.io/pause:3.10"}]},
            },
        )
        wait_for(
            f"the placeholder to hold {ip}", lambda ip=ip: any(p.metadata.name.startswith(PLACEHOLDER) for p in pods_by_ip(core).get(ip, [])), timeout_s=30
        )
        apps.patch_namespaced_deployment_scale(deployment, namespace, {"spec": {"replicas": replicas}})
        wait_for(
            f"{replicas} new pod(s) of {namespace}/{deployment} with an IP",
            lambda: (lambda mine: len(mine) == replicas and all(p.status.pod_ip for p in mine))(
                [p for p in core.list_namespaced_pod(namespace).items if p.metadata.name.startswith(deployment + "-") and not p.metadata.deletion_timestamp]
            ),
            timeout_s=60,
        )
    pytest.fail("consumer pods still share IPs after 20 rounds of placeholders (kwok's IP pool)", pytrace=False)


@pytest.fixture(scope="module")
def istiod(request, admin_api, runner, tmp_path_factory):
    """test_consumers' istiod, from the same chart with ISTIO_MULTIROOT_MESH=true."""
    return install_module_chart(request, admin_api, tmp_path_factory, "istiod", ISTIOD_MULTIROOT_CHART, _check_istiod_chart)


@pytest.fixture(scope="module")
def site(estate, runner, kubeconfig_path, core, custom, tmp_path_factory):
    """Overrides test_consumers' site: site.yml with this module's inventory and PKI, then
    every consumer stopped, so that each one test_consumers' fixtures start reads this PKI
    from scratch (istiod refuses a root that is not a superset of the one it holds).
    Afterwards: the consumers stopped, the client Certificate removed, and site.yml with
    the plain local inventory, so later modules find the cluster on the local PKI."""
    records = {name: config_map_data(core, RECORD_NAMESPACE, name) for name in RECORD_CONFIG_MAPS}
    started = time.monotonic()
    status, output = ansible_playbook(estate["inventory"], "site.yml", estate["logs"] / "site-1.log", *estate["extra"])
    assert status == 0, f"site.yml with the copied inventory failed ({status}):\n{tail(output)}"
    timing("rotation consumers: site.yml", time.monotonic() - started)
    pod_runner("down")
    # The charts applied before any consumer starts, so that their pods exist when the pod
    # IPs are made unique; the fixtures' own apply of the same documents changes nothing.
    apps = client.AppsV1Api(core.api_client)
    for chart in CHARTS:
        apply_documents(core.api_client, render_module_chart(tmp_path_factory.mktemp(chart.release), chart))
    wait_for("the charts' Deployments rolled out", lambda: rolled_out(apps, ("istio-system", "cert-manager")), timeout_s=120, interval_s=1)
    separate_pod_ips(core, apps)
    pki = estate["pki"]
    yield {"root_pem": (pki / "root" / "ca.crt").read_text(), "intermediate_pem": (pki / "clusters" / "local" / "ca.crt").read_text()}
    # The consumers ran on this module's throw-away PKI: none may outlive it.
    if not os.environ.get("MTLS_KEEP_POD_RUNNER"):
        pod_runner("down")
    # The throw-away rotation's state mirror and run records (a failed run counts for the
    # CertRotationFailures alert) are put back as they were.
    for name, data in records.items():
        restore_config_map(core, RECORD_NAMESPACE, name, data)
    for spec in yaml.safe_load((CHECKOUT / "inventories/local/group_vars/all/cluster.yml").read_text())["cert_manager_certificates"]:
        clear_issuance_backoff(custom, spec["namespace"], spec["name"])  # no failure of this PKI's rotation left behind
    for delete in (
        lambda: custom.delete_namespaced_custom_object("cert-manager.io", "v1", "zt-shop", "certificates", "shop-client"),
        lambda: core.delete_namespaced_secret("shop-client-tls", "zt-shop"),
    ):
        try:
            delete()
        except ApiException as error:
            if error.status != 404:
                raise
    status, output = ansible_playbook(
        CHECKOUT / "inventories" / "local", "site.yml", estate["logs"] / "site-local.log", "-e", f"mtls_kubeconfig={kubeconfig_path}"
    )
    assert status == 0, f"site.yml with inventories/local (putting the cluster back on the local PKI) failed ({status}):\n{tail(output)}"


def config_map_roots(core, namespace: str, name: str, key: str) -> frozenset[str]:
    try:
        return roots_of((core.read_namespaced_config_map(name, namespace).data or {}).get(key) or "")
    except ApiException as error:
        if error.status == 404:
            return frozenset()
        raise


def secret_chain(core, namespace: str, name: str) -> str | None:
    try:
        data = core.read_namespaced_secret(name, namespace).data or {}
    except ApiException as error:
        if error.status == 404:
            return None
        raise
    return base64.b64decode(data["tls.crt"]).decode() if "tls.crt" in data else None


def chains_to(tmp: Path, root_pem: str, chain: str | None) -> bool:
    if not chain:
        return False
    try:
        verify_chain(tmp, root_pem, chain)
        return True
    except AssertionError:
        return False


def clear_issuance_backoff(custom, namespace: str, name: str) -> None:
    """A Certificate whose last issuance failed waits an hour before cert-manager tries again
    (status.lastFailureTime), even when its Secret is deleted: the record of an earlier run
    (a rotation that stopped) is removed so the running controller issues now."""
    try:
        custom.patch_namespaced_custom_object_status(
            "cert-manager.io", "v1", namespace, "certificates", name, {"status": {"lastFailureTime": None, "failedIssuanceAttempts": None}}
        )
    except ApiException as error:
        if error.status != 404:
            raise


def wait_for_fresh_estate(site: dict, core, custom, tmp: Path) -> None:
    """Step 2: every consumer serves this PKI's root before traffic starts."""
    root = fingerprint(site["root_pem"])
    wait_for(
        "ClusterIssuer mtls-ca to become Ready",
        lambda: condition(custom.get_cluster_custom_object("cert-manager.io", "v1", "clusterissuers", "mtls-ca")) == "True",
        timeout_s=90,
    )
    # cert-manager does not re-issue when only its issuer's CA changed: the Secrets from
    # earlier runs (another PKI) are removed, so the running controller issues from this one.
    for namespace, name in (("zt-payments", "payments-api"), (CLIENT_CERTIFICATE["namespace"], CLIENT_CERTIFICATE["name"])):
        if not chains_to(tmp / f"{name}-0", site["root_pem"], secret_chain(core, namespace, f"{name}-tls")):
            clear_issuance_backoff(custom, namespace, name)
            try:
                core.delete_namespaced_secret(f"{name}-tls", namespace)
            except ApiException as error:
                if error.status != 404:
                    raise
        wait_for(
            f"Secret {namespace}/{name}-tls issued by cert-manager under this module's root",
            lambda namespace=namespace, name=name: chains_to(tmp / name, site["root_pem"], secret_chain(core, namespace, f"{name}-tls")),
            timeout_s=120,
            interval_s=2,
        )
        wait_for(
            f"Certificate {namespace}/{name} to become Ready",
            lambda namespace=namespace, name=name: condition(custom.get_namespaced_custom_object("cert-manager.io", "v1", namespace, "certificates", name))
            == "True",
            timeout_s=60,
        )
    for namespace in ("zt-payments", "zt-shop"):
        wait_for(
            f"istio-ca-root-cert in {namespace} = this module's root",
            lambda namespace=namespace: config_map_roots(core, namespace, "istio-ca-root-cert", "root-cert.pem") == {root},
            timeout_s=90,
        )
        wait_for(
            f"trust-manager's mtls-trust-bundle in {namespace} = this module's root",
            lambda namespace=namespace: config_map_roots(core, namespace, "mtls-trust-bundle", "ca.crt") == {root},
            timeout_s=90,
        )
    wait_for("spire-bundle with this module's root", lambda: root in config_map_roots(core, "spire", "spire-bundle", "bundle.crt"), timeout_s=90)


# Lines of the consumers' logs that explain a rotation they did not follow.
FINDINGS = re.compile(r"Error signing|error issuing|not supported|Failed to update|\blevel=error\b|\terror\t")


def consumer_log_findings(per_consumer: int = 4) -> str:
    lines = []
    for entry in json.loads(pod_runner("status", "--json").stdout or "{}").get("containers", []):
        if entry["consumer"] in ("istiod", "cert-manager-controller", "trust-manager", "spire-server") and entry.get("log"):
            found = [line for line in current_log(entry).splitlines() if FINDINGS.search(line)]
            lines += [f"{entry['consumer']}: {line[:300]}" for line in found[-per_consumer:]]
    return "\n".join(lines) or "(nothing)"


def named_sequence(history: list[frozenset[str]], old: str, new: str) -> list[str]:
    names = {old: "old", new: "new"}
    return ["+".join(sorted((names.get(f, "other:" + f[:8]) for f in roots), key=lambda n: (n != "old", n))) or "empty" for roots in history]


def test_handshakes_never_fail_while_rotate_root_ca_runs_with_the_real_consumers(
    istiod, cert_manager, trust_manager, spire_server, site, estate, core, custom, admin_api, tmp_path
):
    began = time.monotonic()
    pki = estate["pki"]
    wait_for_fresh_estate(site, core, custom, tmp_path / "fresh")
    for namespace, account in (("zt-payments", "api"), ("zt-shop", "frontend")):  # creates the service accounts
        workload_certificate(istiod, core, admin_api, site["root_pem"], namespace, account, tmp_path / "first" / account)
    old_root, old_intermediate = fingerprint(site["root_pem"]), fingerprint(site["intermediate_pem"])
    timing("rotation consumers: estate ready", time.monotonic() - began)

    stop = threading.Event()
    pairs = [
        Pair("istiod", IstiodSource(core, istiod, tmp_path / "istiod-csr"), tmp_path / "pair-istiod", stop),
        Pair("cert-manager", CertManagerSource(core), tmp_path / "pair-cert-manager", stop),
        Pair("spire", SpireSource(core, spire_server["binary"], spire_server["socket"], tmp_path / "spire-mint"), tmp_path / "pair-spire", stop),
    ]
    for pair in pairs:
        pair.start()
    problems: list[str] = []
    rotation_status, rotation_output = None, ""
    try:
        wait_for("3 handshakes of every pair before the rotation", lambda: all(p.ok >= 3 for p in pairs) or any(p.failed for p in pairs), timeout_s=90)
        if any(p.failed for p in pairs):
            problems.append("handshakes failed before the rotation started")
        else:
            rotated_at = time.monotonic()
            rotation_status, rotation_output = ansible_playbook(
                estate["inventory"], "rotate_root_ca.yml", tmp_path / "rotate_root_ca.log", *estate["extra"], timeout=ROTATION_TIMEOUT_S
            )
            timing("rotation consumers: rotate_root_ca.yml", time.monotonic() - rotated_at, status=rotation_status)
            if rotation_status != 0:
                before_failure = rotation_output.split("\nfatal: ", 1)[0]
                failed_task = re.findall(r"^TASK \[(.+?)\]", before_failure, re.M)[-1:] or ["?"]
                problems.append(
                    f"rotate_root_ca.yml failed with status {rotation_status} at task '{failed_task[0]}'; "
                    f"its log is {tmp_path / 'rotate_root_ca.log'}, the tail:\n{tail(before_failure + rotation_output[len(before_failure) :])}"
                    f"\nWhat the consumers logged meanwhile:\n{consumer_log_findings()}"
                )
            else:
                # Phase 5 reaches the consumers' outputs a little after the playbook's end.
                new_root = fingerprint((pki / "root" / "ca.crt").read_text())
                for namespace, name, key in (("zt-payments", "istio-ca-root-cert", "root-cert.pem"), ("zt-payments", "mtls-trust-bundle", "ca.crt")):
                    deadline = time.monotonic() + 90
                    while time.monotonic() < deadline and config_map_roots(core, namespace, name, key) != {new_root}:
                        time.sleep(1)
            time.sleep(3)  # a few handshakes on what the consumers hold at the end
    finally:
        stop.set()
        for pair in pairs:
            pair.join()

    # The new CAs: active after phase 3, under rotation/root_ca/next/ before it.
    staged = pki / "rotation" / "root_ca" / "next"
    new_root_pem = next(p for p in (staged / "root" / "ca.crt", pki / "root" / "ca.crt") if p.exists()).read_text()
    new_intermediate_pem = next(p for p in (staged / "clusters" / "local" / "ca.crt", pki / "clusters" / "local" / "ca.crt") if p.exists()).read_text()
    new_root, new_intermediate = fingerprint(new_root_pem), fingerprint(new_intermediate_pem)
    names = {old_intermediate: "old-intermediate", new_intermediate: "new-intermediate"}
    report = table(pairs, names)
    sequences = {
        "istio-ca-root-cert zt-payments": named_sequence(pairs[0].source.trust_history, old_root, new_root),
        "trust-manager mtls-trust-bundle zt-payments": named_sequence(pairs[1].source.trust_history, old_root, new_root),
        "spire-bundle": named_sequence(pairs[2].source.trust_history, old_root, new_root),
    }
    report += "\n" + "\n".join(f"{what}: {' -> '.join(seq)}" for what, seq in sequences.items())
    for pair in pairs:
        if pair.failed:
            problems.append(f"{pair.name}: {pair.failed} failed handshakes, the first: {pair.errors[:3]}, server side: {pair.server_errors[:3]}")
        if pair.ok < 20:
            problems.append(f"{pair.name}: only {pair.ok} handshakes (at least 20 wanted)")
    if rotation_status == 0:
        assert new_root != old_root and new_intermediate != old_intermediate, "the rotation ended without a new root and intermediate"
        for pair in pairs[:2]:
            if not {old_intermediate, new_intermediate} <= pair.issuers:
                problems.append(
                    f"{pair.name}: certificates of the old and the new intermediate were not both used ({report.splitlines()[pairs.index(pair) + 1]})"
                )
        for what in ("istio-ca-root-cert zt-payments", "trust-manager mtls-trust-bundle zt-payments"):
            if sequences[what] != ["old", "old+new", "new"]:
                problems.append(f"{what} went {' -> '.join(sequences[what])}, not old -> old+new -> new")
        svid_dir = tmp_path / "final-svid"
        minted = mint_svid(spire_server["binary"], spire_socket() or spire_server["socket"], "spiffe://cluster.local/ns/zt-payments/sa/api", svid_dir)
        if not minted:
            problems.append("the SPIRE server minted no SVID after the rotation")
        elif not chains_to(tmp_path / "final-svid-verify", new_root_pem, minted[0]):
            chain_roots = "the old root" if chains_to(tmp_path / "final-svid-old", site["root_pem"], minted[0]) else "neither root"
            problems.append(f"a freshly minted SVID does not chain to the new root alone (it chains to {chain_roots}): SPIRE kept its CA")
        if not chains_to(tmp_path / "payments-api-final", new_root_pem, secret_chain(core, "zt-payments", "payments-api-tls")):
            problems.append("the payments-api Secret does not chain to the new root alone after the rotation")
        status, output = ansible_playbook(estate["inventory"], "site.yml", tmp_path / "site-after.log", *estate["extra"])
        if status != 0 or recap_changed(output) != 0:
            problems.append(f"site.yml after the rotation: status {status}, changed={recap_changed(output) if status == 0 else '?'}:\n{tail(output, 30)}")
    timing(
        "rotation consumers: whole test",
        time.monotonic() - began,
        problems=len(problems),
        handshakes={pair.name: {"ok": pair.ok, "failed": pair.failed} for pair in pairs},
    )
    print(f"\n{report}\nrotate_root_ca.yml status: {rotation_status}; test time {time.monotonic() - began:.0f} s")
    assert not problems, report + "\n\n" + "\n\n".join(problems)
