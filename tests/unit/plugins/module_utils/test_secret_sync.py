# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""secret_sync: how many requests a delivery costs, and which writes are proven by a dry
run first. The client is a recording stand-in; the integration target mtls_secret runs
the same code against the real API server."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


import pytest

from ansible_collections.zerotrust.mtls.plugins.module_utils import secret_sync
from ansible_collections.zerotrust.mtls.plugins.module_utils.kube_access import (
    object_admission,
    rule_covers,
    uniform_rbac,
)
from ansible_collections.zerotrust.mtls.plugins.module_utils.kube_errors import KubeError
from ansible_collections.zerotrust.mtls.tests.unit.plugins import kube_fakes

SECRET_RULES = {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "create", "patch"]}


class RecordingClient(kube_fakes.RecordingClient):
    """Answers like an API server holding ``secrets`` {(namespace, name): object}."""

    def __init__(self, secrets=None, namespaces=(), list_forbidden=False, webhooks=(), rules=(SECRET_RULES,), incomplete=False):
        super(RecordingClient, self).__init__()
        self.secrets = dict(secrets or {})
        self.namespaces = set(namespaces)
        self.list_forbidden = list_forbidden
        self.webhooks = list(webhooks)
        self.rules = list(rules)
        self.incomplete = incomplete

    def list(self, kind, namespace=None, label_selector=None):
        self._record("list", kind.plural, namespace)
        if kind.plural == "secrets":
            if self.list_forbidden:
                raise KubeError("forbidden", status=403)
            return [obj for (ns, _name), obj in self.secrets.items() if ns == namespace]
        if kind.plural == "validatingwebhookconfigurations":
            return self.webhooks
        return []

    def get(self, kind, name, namespace=None):
        self._record("get", kind.plural, namespace, name)
        return self.secrets.get((namespace, name))

    def namespace_exists(self, namespace):
        self._record("namespace", namespace)
        return namespace in self.namespaces

    def request(self, method, path, verb, kind, **kwargs):
        self._record("review", kwargs["body"]["spec"]["namespace"])
        return {"status": {"incomplete": self.incomplete, "resourceRules": self.rules}}

    def apply(self, manifest, dry_run=False, force_conflicts=False):
        namespace = manifest["metadata"]["namespace"]
        self._record("dry-run" if dry_run else "apply", namespace, manifest["metadata"]["name"])
        if namespace not in self.namespaces:
            raise KubeError("not found (404): namespaces %s not found" % namespace, status=404)
        return manifest

    def delete(self, kind, name, namespace=None, dry_run=False):
        self._record("dry-delete" if dry_run else "delete", namespace, name)
        return True


def _planned(count):
    return [("s%d" % index, {"ca.crt": b"-----BEGIN CERTIFICATE-----\n"}, {}, {}) for index in range(count)]


def _params(**extra):
    params = dict(layout="ca_bundle", state="present", parallel=4, force_conflicts=False)
    params.update(extra)
    return params


def _delivered(client, namespaces, planned):
    """Secrets as the server would hold them after a delivery."""
    for namespace in namespaces:
        for name, data, labels, annotations in planned:
            manifest = secret_sync.secret_manifest(name, namespace, "ca_bundle", data, labels, annotations)
            manifest["metadata"]["managedFields"] = [
                {"manager": "zerotrust.mtls", "operation": "Apply", "fieldsV1": {"f:data": {"f:ca.crt": {}}, "f:type": {}}}
            ]
            client.secrets[(namespace, name)] = manifest


def test_first_write_lists_each_namespace_and_dry_runs_one_creation_per_namespace():
    namespaces = ["ns%d" % index for index in range(5)]
    client = RecordingClient(namespaces=namespaces)
    result = secret_sync.sync(client, _params(), namespaces, _planned(10))
    assert result["changed"] is True
    assert client.count("list") == 5 + 4  # one per namespace, one per admission kind
    assert client.count("get") == 0
    assert client.count("namespace") == 0  # the dry runs prove the namespaces
    assert client.count("review") == 5
    assert client.count("dry-run") == 5
    assert client.count("apply") == 50


def test_no_change_rerun_costs_one_list_per_namespace_and_nothing_else():
    namespaces = ["ns%d" % index for index in range(5)]
    client = RecordingClient(namespaces=namespaces)
    _delivered(client, namespaces, _planned(10))
    result = secret_sync.sync(client, _params(), namespaces, _planned(10))
    assert result["changed"] is False
    assert client.calls and set(call[0] for call in client.calls) == {"list"}
    assert client.count("list") == 5


def test_single_secret_per_namespace_is_a_get_and_list_forbidden_falls_back_to_gets():
    client = RecordingClient(namespaces=["a"])
    secret_sync.sync(client, _params(), ["a"], _planned(1))
    assert [call[0] for call in client.calls][:1] == ["get"]
    forbidden = RecordingClient(namespaces=["a"], list_forbidden=True)
    secret_sync.sync(forbidden, _params(), ["a"], _planned(3))
    assert forbidden.count("get") == 3


@pytest.mark.parametrize(
    "client_options, why",
    [
        (
            {
                "webhooks": [
                    {"metadata": {"name": "policy"}, "webhooks": [{"rules": [{"apiGroups": [""], "resources": ["secrets"], "operations": ["CREATE"]}]}]}
                ]
            },
            "a webhook selects Secrets",
        ),
        ({"rules": [dict(SECRET_RULES, resourceNames=["s0"])]}, "RBAC names the Secrets"),
        ({"incomplete": True}, "the rules review is incomplete"),
        ({"rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["patch"]}]}, "create is not granted"),
    ],
)
def test_every_creation_is_dry_run_when_one_could_be_judged_apart(client_options, why):
    client = RecordingClient(namespaces=["a", "b"], **client_options)
    secret_sync.sync(client, _params(), ["a", "b"], _planned(3))
    assert client.count("dry-run") == 6, why


def test_updates_are_each_dry_run_and_check_mode_writes_nothing():
    client = RecordingClient(namespaces=["a"])
    _delivered(client, ["a"], _planned(3))
    changed = [(name, {"ca.crt": b"-----BEGIN CERTIFICATE-----\nnew\n"}, labels, annotations) for name, _data, labels, annotations in _planned(3)]
    result = secret_sync.sync(client, _params(), ["a"], changed, check_mode=True)
    assert result["changed"] is True
    assert client.count("dry-run") == 3 and client.count("apply") == 0


def test_a_missing_namespace_stops_before_any_write():
    client = RecordingClient(namespaces=["a"])
    with pytest.raises(KubeError) as error:
        secret_sync.sync(client, _params(), ["a", "gone"], _planned(2))
    assert str(error.value) == ("namespace gone does not exist; create it first or remove it from namespace/namespaces.")
    assert client.count("apply") == 0 and client.count("namespace") == 1


def test_admission_rules_and_rbac_helpers():
    assert rule_covers({"apiGroups": ["*"], "resources": ["*"], "operations": ["*"]}, "", "secrets", "CREATE")
    assert rule_covers({"apiGroups": [""], "resources": ["secrets/*"], "operations": ["CREATE"]}, "", "secrets", "CREATE")
    assert not rule_covers({"apiGroups": [""], "resources": ["configmaps"], "operations": ["*"]}, "", "secrets", "CREATE")
    assert not rule_covers({"apiGroups": ["apps"], "resources": ["*"], "operations": ["*"]}, "", "secrets", "CREATE")
    assert object_admission(RecordingClient(), "", "secrets", "CREATE") == []
    assert uniform_rbac(RecordingClient(), "a", "", "secrets", ("create", "patch")) is True
    assert uniform_rbac(RecordingClient(rules=[{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]), "a", "", "secrets", ("create", "patch")) is True
