# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""rotation_configmaps and the ConfigMap side of mtls_rotation_state's backend, against a
fake client: server-side apply as zerotrust.mtls, dry run in check mode, nothing written
when nothing changes."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.zerotrust.mtls.plugins.module_utils import kube, rotation_state
from ansible_collections.zerotrust.mtls.plugins.module_utils import rotation as rot
from ansible_collections.zerotrust.mtls.plugins.module_utils import rotation_configmaps as configmaps

NOW = 1795363200


class FakeClient(object):
    """Answers GETs from ``objects`` and records every write; apply is KubeClient's own,
    so what is recorded is the request the real client sends."""

    def __init__(self, objects=None, namespaces=("mtls-system",)):
        self.objects = dict(objects or {})
        self.namespaces = set(namespaces)
        self.writes = []

    def get(self, kind, name, namespace=None):
        return self.objects.get((namespace, name))

    def namespace_exists(self, namespace):
        return namespace in self.namespaces

    apply = kube.KubeClient.apply

    def request(self, method, path, verb, kind, name=None, namespace=None, query=None, body=None, content_type="application/json", allow_404=False):
        self.writes.append(("request", method, path, list(query), body, content_type))
        return body


class FakeModule(object):
    def __init__(self, params, check_mode=False, diff=False):
        self.params = params
        self.check_mode = check_mode
        self._diff = diff


def _params(**given):
    params = dict((name, spec.get("default")) for name, spec in rotation_state.argument_spec().items())
    params.update(given)
    return params


def test_a_configmap_is_applied_as_the_collection_with_force():
    client = FakeClient()
    configmaps.write_data(client, "mtls-rotation-root-ca", "mtls-system", {"a": "1"}, dry_run=False)
    ((_kind, method, path, query, body, content_type),) = client.writes
    assert method == "PATCH" and path == "/api/v1/namespaces/mtls-system/configmaps/mtls-rotation-root-ca"
    assert query == [("fieldManager", "zerotrust.mtls"), ("force", "true")]
    assert content_type == "application/apply-patch+yaml"
    assert body["data"] == {"a": "1"} and body["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "zerotrust.mtls"}


def test_a_missing_namespace_is_applied_first_but_not_in_check_mode():
    client = FakeClient(namespaces=())
    configmaps.write_data(client, "status", "mtls-system", {}, dry_run=False)
    assert client.writes[0][1:4] == ("PATCH", "/api/v1/namespaces/mtls-system", [("fieldManager", "zerotrust.mtls"), ("force", "true")])
    assert client.writes[0][4]["kind"] == "Namespace"
    client = FakeClient(namespaces=())
    configmaps.write_data(client, "status", "mtls-system", {}, dry_run=True)
    assert [write[0] for write in client.writes] == ["request"]
    assert ("dryRun", "All") in client.writes[0][3]


def test_the_same_data_is_not_written_again():
    client = FakeClient({("mtls-system", "cm"): {"data": {"a": "1"}}})
    assert configmaps.sync_data(client, "cm", "mtls-system", {"a": "1"}, dry_run=False) is False
    assert configmaps.sync_data(client, "cm", "mtls-system", {"a": "2"}, dry_run=True) is True
    assert len(client.writes) == 1 and ("dryRun", "All") in client.writes[0][3]


def test_a_record_keeps_the_other_rotations_keys():
    existing = {"audit.last_success": "1", "audit.failures_total": "0"}
    client = FakeClient({("mtls-system", "status"): {"data": existing}})
    changed, record = configmaps.record_run(client, "status", "mtls-system", "rotate_root_ca", False, NOW, False)
    assert changed and record == {"rotate_root_ca.last_failure": str(NOW), "rotate_root_ca.failures_total": "1"}
    written = client.writes[0][4]["data"]
    assert written["audit.last_success"] == "1" and written["rotate_root_ca.failures_total"] == "1"


@pytest.mark.parametrize("ref", [None, {"name": "x"}, {"namespace": "y"}, "x/y"])
def test_a_configmap_option_needs_name_and_namespace(ref):
    with pytest.raises(rot.RotationError, match="^state_configmap must be a dict with name and namespace.$"):
        configmaps.configmap_ref(ref, "state_configmap")


def test_the_state_mirror_is_predicted_in_check_mode_and_the_file_stays_absent(tmp_path, monkeypatch):
    client = FakeClient()
    monkeypatch.setattr(configmaps, "client_for", lambda params: client)
    state_path = str(tmp_path / "root_ca.state.json")
    params = _params(
        rotation="root_ca",
        operation="start",
        state_path=state_path,
        phase_count=5,
        state_configmap={"name": "mtls-rotation-root-ca", "namespace": "mtls-system"},
    )
    result = rotation_state.run_module(FakeModule(params, check_mode=True, diff=True))
    assert result["changed"] is True and result["state"]["phase_completed"] == 0
    assert not (tmp_path / "root_ca.state.json").exists()
    assert len(client.writes) == 1 and ("dryRun", "All") in client.writes[0][3]
    assert client.writes[0][4]["data"]["status"] == "in_progress"
    assert result["diff"]["before"] == "" and '"phase_completed": 0' in result["diff"]["after"]


def test_an_unchanged_state_and_mirror_report_no_change(tmp_path, monkeypatch):
    state_path = str(tmp_path / "root_ca.state.json")
    state = rot.new_state("root_ca", NOW, 5)
    (tmp_path / "root_ca.state.json").write_bytes(rot.state_json(state))
    client = FakeClient({("mtls-system", "cm"): {"data": rot.state_configmap_data(state)}})
    monkeypatch.setattr(configmaps, "client_for", lambda params: client)
    params = _params(rotation="root_ca", operation="read", state_path=state_path, state_configmap={"name": "cm", "namespace": "mtls-system"})
    result = rotation_state.run_module(FakeModule(params))
    assert result["changed"] is False and result["state"] == state and client.writes == []


def test_record_in_check_mode_is_a_dry_run(monkeypatch):
    client = FakeClient()
    monkeypatch.setattr(configmaps, "client_for", lambda params: client)
    params = _params(rotation="audit", operation="record", success=True, record_configmap={"name": "mtls-rotation-status", "namespace": "mtls-system"})
    result = rotation_state.run_module(FakeModule(params, check_mode=True))
    assert result["changed"] is True and set(result["record"]) == {"audit.last_success", "audit.failures_total"}
    assert result["state"] is None and result["promoted"] == [] and result["archived"] == []
    assert len(client.writes) == 1 and ("dryRun", "All") in client.writes[0][3]
