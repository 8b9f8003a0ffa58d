# -*- coding: utf-8 -*-
# Copyright (c) zerotrust.mtls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every job template of playbooks/awx_configure.yml, run the way AWX runs it.

The definitions come from awx_configure.yml itself (tests/awx/awx_model.py renders its
awx.awx tasks); each job template is launched, in the order awx_configure.yml defines
them, with ansible-runner on a private data directory built as AWX builds it (inventory
script, extra vars, every credential rendered through its credential type's injectors),
against the local control plane. The PKI host is this machine (ansible_connection=local)
with the PKI in a temporary directory; the estate lives in namespace zt-awx.

What would break in AWX breaks here: a definition the AWX API refuses, a job that fails,
a task on the PKI host that names a file of the job's private data directory (that file
exists only in the execution environment, not on an SSH host), a kubeconfig copy left on
the host, a rotation that did not record its run in the cluster, an rrule AWX or dateutil
refuses, and any private key or secret in the jobs' output (tests/packaging/keyscan.py).

Each job's stdout and ansible-runner artifacts are kept in tests/output/awx/ (or
$MTLS_AWX_OUTPUT).
"""

import datetime
import json
import os
import secrets
import shutil
import sys
import time

import pytest
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "packaging"))

import awx_model  # noqa: E402
import keyscan  # noqa: E402

ROOT = awx_model.ROOT
KUBECONFIG = os.environ.get("MTLS_KUBECONFIG") or os.path.join(ROOT, ".cluster", "kubeconfig")
OUTPUT = os.environ.get("MTLS_AWX_OUTPUT") or os.path.join(ROOT, "tests", "output", "awx")
NAMESPACE = "zt-awx"
RECORD_CONFIGMAP = "mtls-rotation-status"

# The estate the AWX inventory carries (awx_inventory_variables): one cluster, the roles
# that do not touch objects other tests share (Istio's cacerts and mesh policy are left out).
ESTATE = {
    "mtls_cluster_name": "awx",
    "mtls_environment": "staging",
    "mtls_trust_domain": "awx.test",
    "mtls_organization": "zerotrust.mtls AWX test",
    "mtls_root_common_name": "zerotrust.mtls AWX test root CA",
    "mtls_rotation_namespace": NAMESPACE,
    "mtls_istio_enabled": False,
    "mtls_client_certs_enabled": True,
    "client_certs_clients": [{"name": "awx-batch", "namespace": NAMESPACE, "service_account": "awx-batch"}],
    "mtls_cert_exporter_enabled": True,
    "cert_exporter_namespace": NAMESPACE,
    "cert_exporter_watch_namespaces": [NAMESPACE],
    "mtls_server_certs": [{"name": "pki-api", "common_name": "localhost", "dns_names": ["localhost"]}],
    "mtls_client_certs": [{"name": "awx-client", "common_name": "awx-client"}],
}
# Launch-time variables of the templates that prompt for them (AWX ignores them otherwise).
# The root CA rotation is launched as the runbook's first step (docs/rotation.md): phase 1
# only; tests/rotation runs the whole rotation.
LAUNCH_VARS = {"mtls rotate root CA": {"rotation_stop_after_phase": 1}}
# Per template extra vars (awx_job_template_extra_vars). The audit covers this test's
# namespace; it reports instead of failing, because this shared cluster may run the pod
# runner's istiod, which publishes another PKI's root (istio-ca-root-cert) into every
# namespace: the test checks the report itself.
TEMPLATE_EXTRA_VARS = {"mtls audit": {"audit_namespaces": [NAMESPACE], "audit_fail_when_due": False}}
# The rotation-record key each template's playbook writes (docs/exporter.md).
RECORD_KEYS = {
    "playbooks/rotate_client_certs.yml": "rotate_client_certs",
    # Launched without mtls_revoke, the revocation job only refreshes the CRLs.
    "playbooks/revoke.yml": "crl_refresh",
    "playbooks/audit.yml": "audit",
    "playbooks/rotate_intermediate.yml": "rotate_intermediate",
    "playbooks/rotate_root_ca.yml": "rotate_root_ca",
}


def _ssh_private_key():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    return (
        ed25519.Ed25519PrivateKey.generate()
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption())
        .decode()
    )


def _operator_vars(workdir, passphrases):
    with open(KUBECONFIG) as handle:
        kubeconfig = handle.read()
    return {
        "awx_project_scm_url": "https://git.example.invalid/platform/zerotrust-mtls.git",
        "awx_pki_host": "localhost",
        "awx_pki_host_variables": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
        "awx_pki_dir": os.path.join(workdir, "pki"),
        "awx_kubeconfig_content": kubeconfig,
        "awx_root_key_passphrase": passphrases[0],
        "awx_intermediate_key_passphrase": passphrases[1],
        "awx_pki_ssh_private_key": _ssh_private_key(),
        "awx_inventory_variables": ESTATE,
        "awx_job_template_extra_vars": TEMPLATE_EXTRA_VARS,
    }


def _kube_tokens():
    with open(KUBECONFIG) as handle:
        config = yaml.safe_load(handle)
    return [u["user"]["token"] for u in config.get("users", []) if u.get("user", {}).get("token")]


def _core_api():
    from kubernetes import client, config

    return client, config.new_client_from_config(config_file=KUBECONFIG)


@pytest.fixture(scope="module")
def cluster():
    if not os.path.isfile(KUBECONFIG):
        pytest.fail("no kubeconfig at %s: start the local control plane (tests/cluster/up.sh) or set MTLS_KUBECONFIG." % KUBECONFIG)
    client, api_client = _core_api()
    core = client.CoreV1Api(api_client)
    # A fresh namespace: what the jobs write there is what this run wrote.
    try:
        core.delete_namespace(NAMESPACE)
    except client.exceptions.ApiException as error:
        if error.status != 404:
            raise
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            core.read_namespace(NAMESPACE)
        except client.exceptions.ApiException as error:
            if error.status == 404:
                break
            raise
        time.sleep(1)
    else:
        pytest.fail("namespace %s is still terminating after 120 s." % NAMESPACE)
    core.create_namespace({"metadata": {"name": NAMESPACE, "labels": {"app.kubernetes.io/part-of": "zerotrust-mtls-tests"}}})
    yield client, api_client
    core.delete_namespace(NAMESPACE)


def test_schedules_parse_and_yield_their_next_run(tmp_path):
    defs = awx_model.load_definitions(_operator_vars(str(tmp_path), ["x" * 16, "y" * 16]))
    assert defs["schedules"], "awx_configure.yml defines no schedule"
    now = datetime.datetime.now(datetime.timezone.utc)
    for schedule in defs["schedules"]:
        rules = awx_model.parse_rrule(schedule["rrule"])
        first = rules[0]
        assert first.tzinfo is not None, "%s: DTSTART has no time zone" % schedule["name"]
        upcoming = rules.after(now)
        assert upcoming is not None and upcoming > now, "%s never runs after %s" % (schedule["name"], now)
    # The root CA rotation and the bootstrap are started by a person, never by a schedule.
    scheduled = {s["unified_job_template"] for s in defs["schedules"]}
    by_playbook = {jt["playbook"]: jt["name"] for jt in defs["job_templates"]}
    assert by_playbook["playbooks/rotate_root_ca.yml"] not in scheduled
    assert by_playbook["playbooks/bootstrap_pki.yml"] not in scheduled


def test_a_bad_rrule_is_refused():
    for bad in ("RRULE:FREQ=DAILY", "DTSTART;TZID=UTC:20261123T030000 RRULE:FREQ=MINUTELY", "DTSTART;TZID=UTC:20261123T030000 RRULE:INTERVAL=1"):
        with pytest.raises(awx_model.DefinitionError):
            awx_model.parse_rrule(bad)


def test_the_old_credential_design_is_caught(tmp_path):
    """The design of issue 14 (mtls_kubeconfig = the job's file path) must fail the job check."""
    defs = awx_model.load_definitions(_operator_vars(str(tmp_path), ["x" * 16, "y" * 16]))
    ctype = next(t for t in defs["credential_types"].values() if "file" in t.get("injectors", {}))
    ctype["injectors"]["extra_vars"] = {"mtls_kubeconfig": "{{ tower.filename.kubeconfig }}"}
    cred = next(c for c in defs["credentials"].values() if c["credential_type"] == ctype["name"])
    injected = awx_model.inject_credential(ctype, cred, {}, [], _pdd(tmp_path))
    assert _ee_paths({"res": {"invocation": {"module_args": {"kubeconfig": injected["mtls_kubeconfig"]}}}}, str(tmp_path / "pdd"))


def _pdd(tmp_path):
    pdd = tmp_path / "pdd"
    (pdd / "env").mkdir(parents=True)
    return str(pdd)


def _ee_paths(event_data, private_data_dir):
    """Strings in a task's module arguments that name a file of the private data directory."""
    found = []

    def walk(value):
        if isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, str) and (private_data_dir in value or value.startswith("/runner/")):
            found.append(value)

    walk(((event_data.get("res") or {}).get("invocation") or {}).get("module_args") or {})
    return found


def _run_job(defs, jt, job_id, workdir, base_env):
    import ansible_runner

    slug = "%02d-%s" % (job_id, jt["name"].replace(" ", "-"))
    private_data_dir = os.path.join(workdir, "jobs", slug)
    host_tmp = os.path.join(workdir, "host-tmp")
    os.makedirs(host_tmp, exist_ok=True)
    env = dict(base_env, TMPDIR=host_tmp)
    awx_model.build_private_data_dir(defs, jt, private_data_dir, job_id, launch_vars=LAUNCH_VARS.get(jt["name"]), base_env=env)
    artifacts = os.path.join(OUTPUT, "artifacts")
    start = time.monotonic()
    result = ansible_runner.run(private_data_dir=private_data_dir, playbook=jt["playbook"], ident=slug, artifact_dir=artifacts, quiet=True)
    seconds = time.monotonic() - start
    stdout = result.stdout.read()
    with open(os.path.join(OUTPUT, slug + ".stdout.txt"), "w") as handle:
        handle.write(stdout)
    events = list(result.events)
    # The private data directory holds the credentials (kubeconfig, passphrases, SSH key):
    # AWX deletes it after the job, and so do we.
    shutil.rmtree(private_data_dir)
    return result, stdout, events, seconds, host_tmp


def test_every_job_template_runs_as_awx_runs_it(cluster, tmp_path, monkeypatch):
    client, api_client = cluster
    # The job sees only what AWX gives it: no kubeconfig from the environment or ~/.kube.
    for var in [v for v in os.environ if v == "KUBECONFIG" or v.startswith("K8S_AUTH_")]:
        monkeypatch.delenv(var)
    home = tmp_path / "home"
    home.mkdir()
    workdir = str(tmp_path)
    if os.path.isdir(OUTPUT):
        shutil.rmtree(OUTPUT)
    os.makedirs(OUTPUT)
    passphrases = [secrets.token_urlsafe(18), secrets.token_urlsafe(18)]
    operator = _operator_vars(workdir, passphrases)
    defs = awx_model.load_definitions(operator)
    playbooks = [jt["playbook"] for jt in defs["job_templates"]]
    for wanted in (
        "playbooks/site.yml",
        "playbooks/bootstrap_pki.yml",
        "playbooks/rotate_client_certs.yml",
        "playbooks/rotate_intermediate.yml",
        "playbooks/rotate_root_ca.yml",
        "playbooks/audit.yml",
    ):
        assert wanted in playbooks, "awx_configure.yml has no job template for %s" % wanted
    base_env = {
        "HOME": str(home),
        # The project's ansible.cfg applies (AWX runs in the project directory); the
        # collection comes from the checkout instead of the execution environment image.
        "ANSIBLE_COLLECTIONS_PATH": os.path.join(ROOT, ".build", "collections"),
        "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
    }
    pki_host = operator["awx_pki_host"]
    timings = []
    failures = []
    for job_id, jt in enumerate(defs["job_templates"], start=1):
        result, stdout, events, seconds, host_tmp = _run_job(defs, jt, job_id, workdir, base_env)
        timings.append("%s %.1f s" % (jt["name"], seconds))
        tail = "\n".join(stdout.splitlines()[-40:])
        if result.status != "successful" or result.rc != 0:
            failures.append("job %r (%s) ended %s rc=%s:\n%s" % (jt["name"], jt["playbook"], result.status, result.rc, tail))
            continue
        assert "no hosts matched" not in stdout, "job %r matched no hosts" % jt["name"]
        on_host = [e for e in events if e.get("event") == "runner_on_ok" and e.get("event_data", {}).get("host") == pki_host]
        assert on_host, "job %r ran no task on the PKI host %s" % (jt["name"], pki_host)
        private_data_dir = os.path.join(workdir, "jobs")
        for event in events:
            data = event.get("event_data", {})
            if data.get("host") == pki_host and not data.get("delegated_host"):
                named = _ee_paths(data, private_data_dir)
                assert not named, "job %r: task %r on the PKI host uses %s, a file that exists only in the job's execution environment" % (
                    jt["name"],
                    data.get("task"),
                    named,
                )
        uses_kube = "kubeconfig" in " ".join(jt.get("credentials", []))
        copied = [e for e in events if e.get("event") == "runner_on_ok" and e["event_data"].get("task") == "Copy the job's kubeconfig into it"]
        if uses_kube:
            assert copied, "job %r did not copy the job's kubeconfig to the PKI host" % jt["name"]
        left = [n for n in os.listdir(host_tmp) if n.startswith("zerotrust-mtls-kubeconfig.")]
        assert not left, "job %r left its kubeconfig copy on the PKI host: %s" % (jt["name"], left)
    with open(os.path.join(OUTPUT, "timings.txt"), "w") as handle:
        handle.write("\n".join(timings) + "\n")
    assert not failures, "\n\n".join(failures)

    # Every job reached the cluster: the rotations and the audit recorded their runs, the
    # estate job delivered the client certificate and deployed the exporter.
    core = client.CoreV1Api(api_client)
    record = core.read_namespaced_config_map(RECORD_CONFIGMAP, NAMESPACE).data or {}
    for jt in defs["job_templates"]:
        key = RECORD_KEYS.get(jt["playbook"])
        if key:
            assert record.get(key + ".last_success"), "job %r recorded no success in %s/%s: %s" % (jt["name"], NAMESPACE, RECORD_CONFIGMAP, sorted(record))
    secret = core.read_namespaced_secret("awx-batch-mtls", NAMESPACE)
    assert set(secret.data) >= {"tls.crt", "tls.key", "ca.crt"}
    apps = client.AppsV1Api(api_client)
    names = [d.metadata.name for d in apps.list_namespaced_deployment(NAMESPACE).items]
    assert "mtls-exporter" in names, names
    # The audit job read the PKI files and the Secrets of the namespace through the copied
    # kubeconfig: everything this PKI issued chains and is not due (only a root another
    # PKI's istiod published may be flagged).
    with open(os.path.join(operator["awx_pki_dir"], "audit.json")) as handle:
        report = json.load(handle)
    sources = [c["source"] for c in report["certificates"]]
    assert "Secret/%s/awx-batch-mtls[tls.crt]" % NAMESPACE in sources, sources
    assert any(s.endswith("/pki/root/ca.crt") for s in sources), sources
    ours = [c for c in report["certificates"] if not c["source"].startswith("ConfigMap/%s/istio-ca-root-cert" % NAMESPACE)]
    assert all(c["chain_valid"] and not c["due"] for c in ours), [c["source"] for c in ours if c["due"]]

    # Nothing secret in what the jobs printed or recorded: no private key (the PKI's, the
    # kubeconfig's, the SSH key) and none of the passphrases or tokens.
    findings = keyscan.scan_path(OUTPUT, passphrases + _kube_tokens())
    assert not findings, "secrets in the job output: %s" % findings
