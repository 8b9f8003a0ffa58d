# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The in-process actions of mtls_secret and mesh_policy: run through ActionModule.run as
Ansible runs them for a controller task, with a stand-in API server client.

The point is no_log parity with the module: key material (a no_log option, a key file,
or an API server's answer that echoes a Secret) never reaches the result, nor what
Ansible prints or logs of it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import json
import logging

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ansible_collections.zerotrust.mtls.plugins.action import mesh_policy as mesh_policy_action
from ansible_collections.zerotrust.mtls.plugins.action import mtls_secret as mtls_secret_action
from ansible_collections.zerotrust.mtls.plugins.module_utils import policy_apply, secret_delivery
from ansible_collections.zerotrust.mtls.plugins.module_utils.kube_errors import KubeError
from ansible_collections.zerotrust.mtls.tests.unit.plugins import pki_cases
from ansible_collections.zerotrust.mtls.tests.unit.plugins.import_probe import kubernetes_modules_after_importing

PASSPHRASE = "unit-key-passphrase-7c2e"
NAMESPACES = ("shop", "billing")


class _Stub(object):
    def __init__(self, **attributes):
        self.__dict__.update(attributes)


def _action(action_class, args, check_mode=False, diff=False, transport="local"):
    """An ActionModule with what ActionBase.run and in_process read of a task on localhost."""

    class Action(action_class):
        def _compute_environment_string(self, raw_environment_out=None):
            return ""

        def _execute_module(self, **kwargs):
            raise AssertionError("the module path was taken: %s" % kwargs)

    action = Action.__new__(Action)
    action._task = _Stub(args=args, check_mode=check_mode, diff=diff, async_val=0, action=action_class.MODULE, resolved_action=action_class.MODULE)
    action._connection = _Stub(transport=transport, _shell=_Stub(tmpdir="/nonexistent"), has_native_async=False)
    action._play_context = _Stub(become=False)
    action._templar = _Stub(template=lambda value: value)
    return action


class FakeClient(object):
    """An API server with no objects; ``echo`` makes every write fail with a message that
    quotes the body sent, as a webhook or a proxy might."""

    echo = False
    applied = []

    def __init__(self, settings, pool_size=4):
        del settings, pool_size

    def list(self, kind, namespace=None, label_selector=None):
        if kind.plural == "namespaces":
            return [{"metadata": {"name": name}, "status": {"phase": "Active"}} for name in NAMESPACES]
        return []

    def get(self, kind, name, namespace=None):
        if kind.plural == "namespaces" and name in NAMESPACES:
            return {"metadata": {"name": name}, "status": {"phase": "Active"}}
        return None

    def namespace_exists(self, namespace):
        return True

    def request(self, method, path, verb, kind, body=None, query=None):
        return {}

    def apply(self, manifest, dry_run=False, force_conflicts=False):
        if FakeClient.echo:
            raise KubeError("admission webhook denied the request: %s" % json.dumps(manifest))
        FakeClient.applied.append((manifest, dry_run))
        return manifest

    def delete(self, kind, name, namespace=None, dry_run=False):
        return None

    def close(self):
        pass


@pytest.fixture
def fake_cluster(monkeypatch):
    FakeClient.echo = False
    FakeClient.applied = []
    monkeypatch.setattr(secret_delivery, "KubeClient", FakeClient)
    monkeypatch.setattr(policy_apply, "KubeClient", FakeClient)
    return FakeClient


@pytest.fixture(scope="module")
def material():
    key = ec.generate_private_key(ec.SECP256R1())
    cert = pki_cases.self_signed(key, "web.shop.svc", serial=7, extensions=[(x509.SubjectAlternativeName([x509.DNSName("web.shop.svc")]), False)])
    plain = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    encrypted = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(PASSPHRASE.encode()))
    return dict(cert=cert.public_bytes(serialization.Encoding.PEM).decode(), key=plain.decode(), encrypted_key=encrypted.decode())


def _secrets_of_the_key(material):
    """Every form the key can take on its way: PEM lines, base64 of the PEM (Secret data)."""
    forms = [material["key"], material["encrypted_key"], PASSPHRASE, base64.b64encode(material["key"].encode()).decode()]
    forms += [line for line in material["key"].splitlines() if "-----" not in line]
    return forms


def _assert_no_key(material, *texts):
    for text in texts:
        assert "PRIVATE KEY" not in text
        for form in _secrets_of_the_key(material):
            assert form not in text


def _run(action, caplog, capsys):
    with caplog.at_level(logging.DEBUG):
        result = action.run(task_vars={})
    captured = capsys.readouterr()
    return result, json.dumps(result), caplog.text + captured.out + captured.err


def test_secret_from_key_content_in_process_shows_fingerprints_only(fake_cluster, material, caplog, capsys):
    args = dict(
        name="web",
        namespace="shop",
        cert_content=material["cert"],
        key_content=material["encrypted_key"],
        key_passphrase=PASSPHRASE,
        host="https://127.0.0.1:1",
    )
    result, text, log = _run(_action(mtls_secret_action.ActionModule, args, diff=True), caplog, capsys)
    assert "failed" not in result, result.get("msg")
    assert result["changed"] is True
    assert [s["action"] for s in result["secrets"]] == ["created"]
    assert result["diff"]["after"]["shop/web"]["data"]  # summarized, see below
    # The key reached the (fake) API server, decrypted: the delivery did happen.
    stored = [m for m, dry_run in fake_cluster.applied if not dry_run][0]
    assert base64.b64decode(stored["data"]["tls.key"]).startswith(b"-----BEGIN")
    assert result["invocation"]["module_args"]["key_content"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    assert result["invocation"]["module_args"]["key_passphrase"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    _assert_no_key(material, text, log)


def test_secret_from_key_file_in_check_mode_shows_no_key(fake_cluster, material, caplog, capsys, tmp_path):
    (tmp_path / "web.crt").write_text(material["cert"])
    (tmp_path / "web.key").write_text(material["key"])
    args = dict(name="web", namespaces=["shop", "billing"], cert_path=str(tmp_path / "web.crt"), key_path=str(tmp_path / "web.key"), host="https://127.0.0.1:1")
    result, text, log = _run(_action(mtls_secret_action.ActionModule, args, check_mode=True, diff=True), caplog, capsys)
    assert result["changed"] is True
    assert all(dry_run for _manifest, dry_run in fake_cluster.applied)  # check mode writes nothing
    _assert_no_key(material, text, log)


def test_an_answer_that_echoes_the_key_is_masked(fake_cluster, material, caplog, capsys):
    fake_cluster.echo = True
    args = dict(name="web", namespace="shop", cert_content=material["cert"], key_content=material["key"], host="https://127.0.0.1:1")
    result, text, log = _run(_action(mtls_secret_action.ActionModule, args), caplog, capsys)
    assert result["failed"] is True and result["changed"] is False
    assert result["msg"].startswith("admission webhook denied the request")
    _assert_no_key(material, text, log)


def test_bad_key_fails_like_the_module_without_echoing_it(fake_cluster, material, caplog, capsys):
    other = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        .decode()
    )
    args = dict(name="web", namespace="shop", cert_content=material["cert"], key_content=other, host="https://127.0.0.1:1")
    result, text, log = _run(_action(mtls_secret_action.ActionModule, args), caplog, capsys)
    assert result["failed"] is True and result["changed"] is False
    assert result["msg"].startswith("key_content does not match the certificate in cert_content")
    assert other not in text and "PRIVATE KEY" not in text and other not in log


def test_mesh_policy_in_process_reports_warnings_and_failures_as_the_module_does(fake_cluster, caplog, capsys):
    args = dict(namespaces=["shop", "billing"], mode="STRICT", host="https://127.0.0.1:1")
    result, _text, _log = _run(_action(mesh_policy_action.ActionModule, args, diff=True), caplog, capsys)
    assert "failed" not in result, result.get("msg")
    assert result["changed"] is True
    assert [o["action"] for o in result["objects"]] == ["created", "created"]
    assert result["pods_without_sidecar"] == []

    bad = _run(_action(mesh_policy_action.ActionModule, dict(args, parallel=0)), caplog, capsys)[0]
    assert bad["failed"] is True and bad["changed"] is False
    assert bad["msg"] == "parallel 0 is out of range; use 1 to 64."

    unknown = _run(_action(mesh_policy_action.ActionModule, dict(args, bogus=1)), caplog, capsys)[0]
    assert unknown["failed"] is True and "Unsupported parameters for (zerotrust.mtls.mesh_policy)" in unknown["msg"]


def test_preflight_failure_names_the_pods(monkeypatch, fake_cluster, caplog, capsys):
    pod = {
        "metadata": {"name": "legacy-0", "namespace": "shop", "annotations": {}, "labels": {}},
        "spec": {"containers": [{"name": "app"}]},
        "status": {"phase": "Running"},
    }

    list_others = FakeClient.list

    def list_pods(self, kind, namespace=None, label_selector=None):
        if kind.plural == "pods":
            return [dict(pod)] if namespace in (None, "shop") else []
        return list_others(self, kind, namespace, label_selector)

    monkeypatch.setattr(FakeClient, "list", list_pods)
    args = dict(namespace="shop", mode="STRICT", host="https://127.0.0.1:1")
    result = _run(_action(mesh_policy_action.ActionModule, args), caplog, capsys)[0]
    assert result["failed"] is True and result["changed"] is False
    assert result["msg"].startswith("preflight: 1 pod(s) in scope run without the istio-proxy sidecar")
    assert result["pods_without_sidecar"] == ["shop/legacy-0"]
    assert not [m for m, dry_run in fake_cluster.applied if not dry_run]

    warned = _run(_action(mesh_policy_action.ActionModule, dict(args, preflight="warn")), caplog, capsys)[0]
    assert warned["changed"] is True
    assert warned["warnings"] == ["preflight: STRICT applied while 1 pod(s) have no sidecar: shop/legacy-0"]


# The modules import the kubernetes client at their first connection; these action plugins
# import it when they load, in the main process that forks every task's worker, so that
# the in-process calls pay it once per ansible-playbook run, not once per task.
@pytest.mark.parametrize("action", ["mtls_secret", "mesh_policy"])
def test_loading_an_in_process_action_imports_the_kubernetes_client(action):
    assert "kubernetes.client" in kubernetes_modules_after_importing("action." + action)
