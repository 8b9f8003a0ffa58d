# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""mtls_secret input handling: everything refused before the cluster is contacted.

Every call points at a closed loopback port, so a test that got past validation would
fail with "cannot reach": the assertions prove the input check came first."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ansible_collections.zerotrust.mtls.plugins.module_utils import secret_delivery
from ansible_collections.zerotrust.mtls.plugins.modules import mtls_secret
from ansible_collections.zerotrust.mtls.tests.unit.plugins import kube_fakes, pki_cases


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    base = tmp_path_factory.mktemp("pem")
    key = ec.generate_private_key(ec.SECP256R1())
    other = ec.generate_private_key(ec.SECP256R1())
    cert = pki_cases.self_signed(key, "unit", extensions=[(x509.BasicConstraints(ca=True, path_length=None), True)])
    (base / "ca.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    for name, k in (("ca.key", key), ("other.key", other)):
        (base / name).write_bytes(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return base


def run_module(capsys, **args):
    return kube_fakes.run_module(mtls_secret, capsys, **args)


def test_key_mismatch_fails_before_the_cluster(capsys, files):
    result = run_module(
        capsys,
        name="cacerts",
        namespace="istio-system",
        layout="istio_cacerts",
        cert_path=str(files / "ca.crt"),
        key_path=str(files / "other.key"),
        ca_path=str(files / "ca.crt"),
    )
    assert result["failed"] is True
    assert result["msg"].startswith("key_path does not match the certificate in cert_path")
    assert "PRIVATE" not in json.dumps(result)


@pytest.mark.parametrize(
    "args, fragment",
    [
        ({"cert_path": "/nonexistent/x.crt", "key_path": "/nonexistent/x.key"}, "cert_path /nonexistent/x.crt cannot be read"),
        ({"cert_path": "CA", "cert_content": "x", "key_path": "KEY"}, "cert_path and cert_content are both set"),
        ({"namespaces": ["good", "Bad"], "namespace": None, "cert_path": "CA", "key_path": "KEY"}, "namespaces[1] 'Bad' is not a valid namespace name"),
        ({"labels": {"team": "has space"}, "cert_path": "CA", "key_path": "KEY"}, "is not a valid label value"),
        ({"parallel": 0, "cert_path": "CA", "key_path": "KEY"}, "parallel 0 is out of range"),
        ({"layout": "ca_bundle", "ca_path": "CA", "key_path": "KEY"}, "key_path is not used by layout ca_bundle"),
    ],
)
def test_bad_input_is_one_sentence(capsys, files, args, fragment):
    args = dict(args)
    for field, value in list(args.items()):
        if value == "CA":
            args[field] = str(files / "ca.crt")
        elif value == "KEY":
            args[field] = str(files / "ca.key")
    args.setdefault("name", "web")
    if "namespaces" not in args:
        args.setdefault("namespace", "shop")
    else:
        args.pop("namespace")
    result = run_module(capsys, **args)
    assert result["failed"] is True
    assert fragment in result["msg"]
    assert result["msg"].endswith(".") and "\n" not in result["msg"]
    assert result["changed"] is False


def test_secrets_items_inherit_top_level_sources(capsys, files):
    params = {
        "secrets": [{"name": "a", "labels": {"x": "1"}}, {"name": "b"}],
        "name": None,
        "layout": "ca_bundle",
        "ca_path": str(files / "ca.crt"),
        "ca_content": None,
        "labels": {"team": "t"},
        "annotations": {},
        "state": "present",
    }
    for role in secret_delivery.SOURCE_ROLES:
        for kind in ("path", "content"):
            params.setdefault("%s_%s" % (role, kind), None)
    params["data"] = None
    for item in params["secrets"]:
        for key in secret_delivery.ITEM_KEYS:
            item.setdefault(key, None)
    planned = secret_delivery.plan(params)
    assert [entry[0] for entry in planned] == ["a", "b"]
    assert planned[0][2] == {"team": "t", "x": "1"}
    assert sorted(planned[1][1]) == ["ca.crt"]


def test_unreachable_server_after_valid_input(capsys, files):
    port = kube_fakes.closed_port()
    result = run_module(capsys, name="bundle", namespace="shop", layout="ca_bundle", ca_path=str(files / "ca.crt"), host="http://127.0.0.1:%d" % port)
    assert result["msg"].startswith("cannot reach the Kubernetes API server at http://127.0.0.1:%d" % port)


def encrypted_copy(files, path, passphrase):
    """``path``: the key of ``files`` (ca.key), encrypted with ``passphrase``."""
    key = serialization.load_pem_private_key((files / "ca.key").read_bytes(), password=None)
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(passphrase)))
    return path


def test_encrypted_key_needs_key_passphrase_before_the_cluster(capsys, files, tmp_path):
    encrypted = encrypted_copy(files, tmp_path / "ca.key", b"unit intermediate pass")
    args = dict(
        name="cacerts",
        namespace="istio-system",
        layout="istio_cacerts",
        cert_path=str(files / "ca.crt"),
        key_path=str(encrypted),
        ca_path=str(files / "ca.crt"),
    )
    missing = run_module(capsys, **args)
    assert missing["failed"] is True and missing["changed"] is False
    assert missing["msg"] == "key_path is encrypted; give its passphrase in key_passphrase."
    wrong = run_module(capsys, key_passphrase="not the passphrase", **args)
    assert wrong["msg"].startswith("key_path cannot be decrypted with the given passphrase (key_passphrase)")
    assert "not the passphrase" not in json.dumps(wrong)
    # With the passphrase the material is accepted: the call only fails on the (closed) API port.
    port = kube_fakes.closed_port()
    right = run_module(capsys, key_passphrase="unit intermediate pass", host="http://127.0.0.1:%d" % port, **args)
    assert right["msg"].startswith("cannot reach the Kubernetes API server at http://127.0.0.1:%d" % port)


def test_item_key_passphrase_wins_over_the_top_level_one(capsys, files, tmp_path):
    encrypted = encrypted_copy(files, tmp_path / "item.key", b"item passphrase")
    result = run_module(
        capsys,
        secrets=[{"name": "a", "cert_path": str(files / "ca.crt"), "key_path": str(encrypted), "key_passphrase": "wrong top"}],
        namespace="shop",
        layout="tls",
        key_passphrase="also wrong",
    )
    assert result["msg"].startswith("secrets[0].key_path cannot be decrypted with the given passphrase (secrets[0].key_passphrase)")
