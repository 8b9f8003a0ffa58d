# -*- coding: utf-8 -*-
# Copyright (c) zerotrust.mtls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""No private key leaves the PKI directory: not into a built collection, not into the
execution-environment build context, not into the logs or records of the playbooks.

The local estate is converged as `make run` converges it - inventories/local with its
default settings, against the local control plane - starting from the layout an older
release left (an unencrypted per-cluster intermediate key). Then:
  * the intermediate key is encrypted once (same key, plain copy kept as a backup), and
    a rerun of site.yml reports changed=0;
  * the collection tarball and the execution-environment context are built exactly as
    docs/awx.md says, from this checkout and from a copy of it that still holds the PKI
    directory of older releases (.pki/) and stray key files, and every file in them is
    scanned (tests/packaging/keyscan.py): no key, no demo passphrase;
  * the -vvv --diff log of site.yml, the weekly rotation job's log, its state file and
    record ConfigMap, and the audit JSON are scanned the same way.
The per-user data directory is redirected (XDG_DATA_HOME) to a temporary directory, so the
PKI of the user's own `make run` is not touched.
"""

import glob
import hashlib
import json
import os
import re
import shutil
import subprocess

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from kubernetes import client, config

import keyscan

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.join(REPO, ".venv", "bin")
ENCRYPTED_HEADER = b"-----BEGIN ENCRYPTED PRIVATE KEY-----"


def _inventory_vars():
    with open(os.path.join(REPO, "inventories", "local", "group_vars", "all", "pki.yml")) as handle:
        return yaml.safe_load(handle)


DEMO = _inventory_vars()
SECRETS = [DEMO["mtls_root_key_passphrase"], DEMO["mtls_intermediate_key_passphrase"]]


def _run(args, env, log=None, cwd=REPO, timeout=900):
    result = subprocess.run(args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout, check=False)
    output = result.stdout.decode("utf-8", "replace")
    if log is not None:
        with open(log, "w") as handle:
            handle.write(output)
    if result.returncode != 0:
        raise AssertionError("%s failed (rc %d):\n%s" % (" ".join(args[:3]), result.returncode, output[-3000:]))
    return output


def _changed(recap):
    match = re.search(r"localhost\s*:\s*ok=\d+\s+changed=(\d+)", recap)
    assert match, "no play recap for localhost:\n" + recap[-2000:]
    return int(match.group(1))


def _read(path):
    with open(path, "rb") as handle:
        return handle.read()


def _public(key):
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture(scope="module")
def estate(tmp_path_factory):
    kubeconfig = os.environ.get("MTLS_KUBECONFIG")
    if not kubeconfig or not os.path.exists(kubeconfig):
        raise AssertionError("the local control plane is not running (MTLS_KUBECONFIG unset or missing); start it with tests/cluster/up.sh or run `make test`")
    work = tmp_path_factory.mktemp("packaging")
    env = dict(
        os.environ,
        XDG_DATA_HOME=str(work / "data"),
        ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        PATH=VENV_BIN + os.pathsep + os.environ["PATH"],
    )
    pki = work / "data" / "zerotrust-mtls" / "pki"
    playbook = [os.path.join(VENV_BIN, "ansible-playbook"), "-i", "inventories/local", "-e", "mtls_kubeconfig=%s" % kubeconfig]

    # What an older release left: the root (encrypted) and the cluster's intermediate with
    # its key in the clear, written by the same module the ca role calls.
    cluster = pki / "clusters" / "local"
    for directory in (pki / "root", cluster):
        directory.mkdir(mode=0o700, parents=True)
    pki.chmod(0o700)
    adhoc = [os.path.join(VENV_BIN, "ansible"), "-i", "inventories/local", "localhost", "-m", "zerotrust.mtls.mtls_ca"]
    _run(
        adhoc
        + [
            "-a",
            'cert_path=%s key_path=%s key_type=ec_p384 common_name="%s" organization="%s" path_length=2 '
            "key_passphrase=%s"
            % (pki / "root/ca.crt", pki / "root/ca.key", DEMO["mtls_root_common_name"], DEMO["mtls_organization"], DEMO["mtls_root_key_passphrase"]),
        ],
        env,
    )
    _run(
        adhoc
        + [
            "-a",
            'cert_path=%s key_path=%s chain_path=%s common_name="local intermediate CA" '
            'organization="%s" valid_for=365d path_length=1 parent_cert_path=%s parent_key_path=%s '
            "parent_key_passphrase=%s"
            % (
                cluster / "ca.crt",
                cluster / "ca.key",
                cluster / "chain.pem",
                DEMO["mtls_organization"],
                pki / "root/ca.crt",
                pki / "root/ca.key",
                DEMO["mtls_root_key_passphrase"],
            ),
        ],
        env,
    )
    plain_key = (cluster / "ca.key").read_bytes()
    assert plain_key.startswith(b"-----BEGIN PRIVATE KEY-----"), "the seeded intermediate key is not plain"

    logs = {
        "site -vvv --diff": str(work / "site.log"),
        "rotate_client_certs -vvv --diff": str(work / "rotate.log"),
        "rotate_intermediate -vvv --diff": str(work / "rotate_intermediate.log"),
        "audit": str(work / "audit.log"),
    }
    site = _run(playbook + ["playbooks/site.yml", "-vvv", "--diff"], env, log=logs["site -vvv --diff"])
    rerun = _run(playbook + ["playbooks/site.yml"], env)
    _run(playbook + ["playbooks/rotate_client_certs.yml", "-vvv", "--diff"], env, log=logs["rotate_client_certs -vvv --diff"])
    # A forced intermediate rotation: the new cluster intermediate is born encrypted, and
    # its state file is one of the records scanned below.
    _run(playbook + ["playbooks/rotate_intermediate.yml", "-vvv", "--diff", "-e", "rotation_force=true"], env, log=logs["rotate_intermediate -vvv --diff"])
    _run(playbook + ["playbooks/audit.yml", "-e", "audit_fail_when_due=false"], env, log=logs["audit"])
    return dict(work=work, env=env, pki=pki, plain_key=plain_key, site=site, rerun=rerun, logs=logs, kubeconfig=kubeconfig)


def _changed_tasks(output):
    """Names of the tasks that reported a change, for a failure message."""
    names, task = [], None
    for line in output.splitlines():
        if line.startswith("TASK ["):
            task = line.split("[", 1)[1].rsplit("]", 1)[0]
        elif line.startswith("changed:") and task not in names:
            names.append(task)
    return names


def test_plain_intermediate_key_is_encrypted_once_and_site_converges(estate):
    pki = estate["pki"]
    # The same key, now encrypted with the inventory's passphrase: nothing it signed is orphaned.
    converted = re.search(r"Intermediate CA of the cluster.*?key_fingerprint: (sha256:[0-9a-f]+).*?reason: (\w+)", estate["site"], re.DOTALL)
    assert converted, "site.yml did not report the intermediate"
    plain = serialization.load_pem_private_key(estate["plain_key"], None)
    assert converted.group(2) == "key_encrypted", "site.yml reported %s, not the conversion" % converted.group(2)
    assert converted.group(1) == "sha256:" + hashlib.sha256(_public(plain)).hexdigest()
    backups = [path for path in glob.glob(str(pki / "clusters" / "local" / "ca.key.*~")) if _read(path) == estate["plain_key"]]
    assert len(backups) == 1, "expected one backup copy of the plain key, found %s" % backups
    assert oct(os.stat(backups[0]).st_mode & 0o777) == "0o600"
    assert _changed(estate["rerun"]) == 0, "the site.yml rerun changed: %s" % _changed_tasks(estate["rerun"])


def test_every_intermediate_key_is_encrypted_at_rest_after_a_rotation(estate):
    keys = [path for path in glob.glob(str(estate["pki"] / "**" / "*.key"), recursive=True) if os.path.basename(path) == "ca.key" and "/root/" not in path]
    assert len(keys) >= 2, "expected the active and the archived intermediate, found %s" % keys
    for path in keys:
        assert _read(path).startswith(ENCRYPTED_HEADER), "%s is not encrypted at rest" % path
        serialization.load_pem_private_key(_read(path), password=DEMO["mtls_intermediate_key_passphrase"].encode())


def test_the_pki_is_outside_the_checkout_and_private(estate):
    pki = str(estate["pki"])
    assert not os.path.realpath(pki).startswith(REPO + os.sep)
    assert oct(os.stat(pki).st_mode & 0o777) == "0o700"
    # The scanner sees what the builds must keep out: every key file of the PKI, encrypted or not.
    key_files = set(os.path.realpath(p) for p in glob.glob(os.path.join(pki, "**", "*.key"), recursive=True))
    found = set(os.path.realpath(f.where) for f in keyscan.scan_path(pki))
    assert key_files and key_files <= found, "the scanner missed %s" % sorted(key_files - found)


def _build(checkout, context, env):
    """The two commands of docs/awx.md step 1 (the context instead of a full image build)."""
    _run([os.path.join(VENV_BIN, "ansible-galaxy"), "collection", "build", "--output-path", ".build/ee", "--force"], env, cwd=checkout)
    _run([os.path.join(VENV_BIN, "ansible-builder"), "create", "-f", "execution-environment.yml", "--context", context], env, cwd=checkout)
    tarballs = glob.glob(os.path.join(checkout, ".build", "ee", "*.tar.gz"))
    assert len(tarballs) == 1, tarballs
    assert glob.glob(os.path.join(context, "_build", "zerotrust", "*.tar.gz")), "the context lacks the collection"
    return tarballs[0]


def _assert_clean(paths):
    findings = []
    for path in paths:
        findings += keyscan.scan_path(path, SECRETS)
    assert not findings, "private key material or demo passphrases in: %s" % findings


def test_collection_and_ee_context_from_this_checkout_hold_no_key(estate):
    context = str(estate["work"] / "context-checkout")
    tarball = _build(REPO, context, estate["env"])
    _assert_clean([tarball, context])


def test_a_checkout_with_an_old_pki_and_stray_keys_builds_without_them(estate):
    """A checkout where an older release's `make run` wrote .pki/, and key files left around."""
    checkout = str(estate["work"] / "checkout")
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, stdout=subprocess.PIPE, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        if os.path.isfile(os.path.join(REPO, name)):
            os.makedirs(os.path.dirname(os.path.join(checkout, name)), exist_ok=True)
            shutil.copy2(os.path.join(REPO, name), os.path.join(checkout, name))
    shutil.copytree(str(estate["pki"]), os.path.join(checkout, ".pki"), symlinks=True)
    key = ec.generate_private_key(ec.SECP256R1())
    planted = {
        "roles/ca/files/stray.key": key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        "inventories/example/partner.p12": pkcs12.serialize_key_and_certificates(
            b"partner", key, None, None, serialization.BestAvailableEncryption(b"partner pass")
        ),
    }
    for name, content in planted.items():
        os.makedirs(os.path.dirname(os.path.join(checkout, name)), exist_ok=True)
        with open(os.path.join(checkout, name), "wb") as handle:
            handle.write(content)
    # Control: all of it is key material the scanner finds before the build.
    for name in list(planted) + [".pki"]:
        assert keyscan.scan_path(os.path.join(checkout, name)), "the scanner finds nothing in %s" % name
    context = str(estate["work"] / "context-old-checkout")
    tarball = _build(checkout, context, estate["env"])
    _assert_clean([tarball, context])


def test_logs_records_and_audit_hold_no_key(estate):
    pki = str(estate["pki"])
    scanned = list(estate["logs"].values())
    scanned += glob.glob(os.path.join(pki, "rotation", "*.json"))
    assert glob.glob(os.path.join(pki, "rotation", "*.json")), "the rotation job wrote no state file"
    audit = os.path.join(pki, "audit.json")
    assert os.path.exists(audit), "audit.yml wrote no %s" % audit
    scanned.append(audit)
    api = client.CoreV1Api(config.new_client_from_config(config_file=estate["kubeconfig"]))
    record = api.read_namespaced_config_map("mtls-rotation-status", "mtls-system")
    assert record.data, "the rotation record ConfigMap is empty"
    record_file = str(estate["work"] / "mtls-rotation-status.json")
    with open(record_file, "w") as handle:
        json.dump(record.data, handle)
    scanned.append(record_file)
    # Enough log to be meaningful: the verbose runs printed module results.
    with open(estate["logs"]["site -vvv --diff"]) as handle:
        assert "ESTABLISH LOCAL CONNECTION" in handle.read()
    _assert_clean(scanned)
    print("\npackaging: scanned %d logs and records (%d bytes), no key material" % (len(scanned), sum(os.path.getsize(p) for p in scanned)))
