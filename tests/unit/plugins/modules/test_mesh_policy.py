# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""mesh_policy input handling: Istio's rules refused before the cluster is contacted.

Every call points at a closed loopback port, so a test that got past validation would
fail with "cannot reach": the assertions prove the rule check came first."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.zerotrust.mtls.plugins.module_utils import policy_apply
from ansible_collections.zerotrust.mtls.plugins.modules import mesh_policy
from ansible_collections.zerotrust.mtls.tests.unit.plugins import kube_fakes


def run_module(capsys, **args):
    return kube_fakes.run_module(mesh_policy, capsys, **args)


@pytest.mark.parametrize(
    "args, fragment",
    [
        ({"namespace": "shop", "mode": "STRICT", "port_modes": {"8080": "DISABLE"}}, "port_modes needs selector"),
        ({"mode": "STRICT", "selector": {"app": "web"}}, "selector is set on a policy in the root namespace istio-system"),
        ({"namespace": "shop", "mode": "STRIKT"}, "value of mode must be one of"),
        ({"namespace": "shop", "selector": {"app": "web"}, "port_modes": {"80": "STRIKT"}}, "port_modes.80 mode 'STRIKT' is unknown"),
        ({"namespace": "shop", "mesh": "linkerd", "mode": "DISABLE"}, "mode DISABLE cannot be expressed with mesh linkerd"),
        ({"namespace": "shop"}, "nothing to apply"),
        ({"namespaces": [], "mode": "STRICT"}, "namespaces is empty"),
        ({"namespaces": ["shop", "Bad_NS"], "mode": "STRICT"}, "namespaces[1] 'Bad_NS' is not a valid namespace name"),
        ({"namespaces": ["shop", "istio-system"], "mode": "STRICT"}, "namespaces lists the root namespace istio-system"),
        ({"namespaces": ["shop"], "namespace": "shop", "mode": "STRICT"}, "mutually exclusive"),
        ({"namespaces": ["shop"], "mode": "STRICT", "parallel": 0}, "parallel 0 is out of range"),
    ],
)
def test_rules_refused_before_the_cluster(capsys, args, fragment):
    result = run_module(capsys, **args)
    assert result["failed"] is True
    assert fragment in result["msg"]
    assert "cannot reach" not in result["msg"]


def test_valid_policy_then_meets_the_unreachable_server(capsys):
    port = kube_fakes.closed_port()
    result = run_module(capsys, namespace="shop", mode="STRICT", host="http://127.0.0.1:%d" % port)
    assert result["msg"].startswith("cannot reach the Kubernetes API server at http://127.0.0.1:%d (from the host option)" % port)


def test_namespace_defaults_to_the_root_namespace():
    policy = policy_apply.policy_from_params(FakeModule(root_namespace="mesh-root", allow_namespaces=[]).params)
    assert policy.namespace == "mesh-root"
    assert policy.scope == "mesh"
    assert policy.policy_set == "default"


# -- run(): requests of a call across namespaces, with a recording stand-in client -------


class FakeModule(object):
    """The module's params as AnsibleModule fills them (every option, with its default),
    for a STRICT policy that allows istio-system, over four requests at a time."""

    def __init__(self, check_mode=False, diff=False, **params):
        self.params = dict((name, option.get("default")) for name, option in policy_apply.argument_spec().items())
        self.params.update(mode="STRICT", allow_namespaces=["istio-system"], parallel=4)
        self.params.update(params)
        self.check_mode = check_mode
        self._diff = diff
        self.warnings = []

    def fail_json(self, **kwargs):
        raise AssertionError("fail_json: %s" % kwargs["msg"])

    def warn(self, message):
        self.warnings.append(message)


class RecordingClient(kube_fakes.RecordingClient):
    """Answers like an API server holding ``objects`` {(plural, namespace, name): object}."""

    def __init__(self, namespaces, objects=None, cluster_list_forbidden=False, namespaced_rights_only=False, quotas=()):
        super(RecordingClient, self).__init__()
        self.namespaced_rights_only = namespaced_rights_only
        self.quotas = list(quotas)
        self.namespaces = set(namespaces)
        self.cluster_list_forbidden = cluster_list_forbidden
        self.objects = dict(objects or {})

    def get(self, kind, name, namespace=None):
        self._record("get", kind.plural, namespace, name)
        if kind.plural == "namespaces":
            return {"metadata": {"name": name}} if name in self.namespaces else None
        return self.objects.get((kind.plural, namespace, name))

    def namespace_exists(self, namespace):
        self._record("namespace", namespace)
        return namespace in self.namespaces

    def list(self, kind, namespace=None, label_selector=None):
        self._record("list", kind.plural, namespace)
        if kind.plural == "namespaces":
            if self.cluster_list_forbidden:
                raise policy_apply.KubeError("forbidden", status=403)
            return [{"metadata": {"name": name}} for name in sorted(self.namespaces)]
        if kind.plural == "resourcequotas":
            return [{"metadata": {"name": "q", "namespace": ns}} for ns in self.quotas]
        if kind.plural == "pods" or "admission" in kind.api_version:
            return []
        return [obj for (plural, ns, _n), obj in self.objects.items() if plural == kind.plural and ns == namespace]

    def request(self, method, path, verb, kind, **kwargs):
        if verb == "list":  # across the cluster, by name
            self._record("list-all", kind.plural)
            if self.cluster_list_forbidden:
                raise policy_apply.KubeError("forbidden", status=403)
            name = dict(kwargs["query"])["fieldSelector"].split("=", 1)[1]
            return {"items": [obj for (plural, _ns, n), obj in self.objects.items() if plural == kind.plural and n == name]}
        if kind.plural == "selfsubjectaccessreviews":
            attributes = kwargs["body"]["spec"]["resourceAttributes"]
            self._record("access", attributes["resource"], attributes["verb"])
            return {"status": {"allowed": not self.namespaced_rights_only}}
        self._record("review", kwargs["body"]["spec"]["namespace"])
        return {"status": {"resourceRules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]}}

    def apply(self, manifest, dry_run=False, force_conflicts=False):
        metadata = manifest["metadata"]
        self._record("dry-run" if dry_run else "apply", manifest["kind"], metadata["namespace"])
        stored = dict(manifest, metadata=dict(metadata, managedFields=[{"manager": "zerotrust.mtls", "operation": "Apply", "fieldsV1": _fields(manifest)}]))
        if not dry_run:
            plural = policy_apply.kind_for(manifest["apiVersion"], manifest["kind"]).plural
            self.objects[(plural, metadata["namespace"], metadata["name"])] = stored
        return stored

    def delete(self, kind, name, namespace=None, dry_run=False):
        self._record("dry-delete" if dry_run else "delete", kind.plural, namespace)
        return True


def _fields(node, top=True):
    out = {}
    for key, value in node.items():
        if top and key in ("apiVersion", "kind"):
            continue
        if key in ("name", "namespace") and not isinstance(value, dict):
            continue
        out["f:" + key] = _fields(value, False) if isinstance(value, dict) and value else {}
    return out


NAMESPACES = ["t%d" % index for index in range(5)]


def _policies(module):
    return policy_apply.policies_from_params(module.params)


def test_first_write_across_namespaces_proves_every_creation_then_writes():
    client = RecordingClient(NAMESPACES)
    module = FakeModule(namespaces=NAMESPACES, diff=True)
    result = policy_apply.run(module, client, _policies(module))
    assert result["changed"] is True
    assert [o["action"] for o in result["objects"]] == ["created"] * 10
    assert client.count("dry-run") == 10 and client.count("apply") == 10
    # One LIST per kind across the cluster, one of the namespaces, the pods of each.
    assert client.count("list-all") == 2 and client.count("get") == 0 and client.count("namespace") == 0
    assert client.count("list") == 1 + 5
    assert len(result["diff"]["after"]) == 10
    assert result["pods_without_sidecar"] == []


def test_without_cluster_wide_list_rights_each_object_and_namespace_is_read_alone():
    client = RecordingClient(NAMESPACES, cluster_list_forbidden=True)
    module = FakeModule(namespaces=NAMESPACES)
    result = policy_apply.run(module, client, _policies(module))
    assert [o["action"] for o in result["objects"]] == ["created"] * 10
    # A GET per object, and the preflight's namespace GET proves each namespace.
    assert client.count("get") == 10 + 5 and client.count("namespace") == 0
    client.calls = []
    module = FakeModule(namespaces=NAMESPACES, preflight="skip")
    assert policy_apply.run(module, client, _policies(module))["changed"] is False
    assert client.count("get") == 10 and client.count("dry-run") == 0


def test_no_change_rerun_reads_and_nothing_else():
    client = RecordingClient(NAMESPACES)
    module = FakeModule(namespaces=NAMESPACES, preflight="skip")
    policy_apply.run(module, client, _policies(module))
    client.calls = []
    result = policy_apply.run(module, client, _policies(module))
    assert result["changed"] is False
    assert set(o["action"] for o in result["objects"]) == set(["unchanged"])
    assert client.count("list-all") == 2 and client.count("list") == 1
    assert len(client.calls) == 3


def test_a_changed_mode_is_proven_and_written_in_every_namespace_check_mode_writes_nothing():
    client = RecordingClient(NAMESPACES)
    policy_apply.run(FakeModule(namespaces=NAMESPACES), client, _policies(FakeModule(namespaces=NAMESPACES)))
    client.calls = []
    module = FakeModule(namespaces=NAMESPACES, mode="PERMISSIVE", check_mode=True)
    result = policy_apply.run(module, client, _policies(module))
    assert result["changed"] is True
    assert [o["action"] for o in result["objects"]].count("updated") == 5
    assert client.count("dry-run") == 5 and client.count("apply") == 0


def test_a_missing_namespace_stops_before_any_dry_run_or_write():
    client = RecordingClient(NAMESPACES[:-1])
    module = FakeModule(namespaces=NAMESPACES, preflight="skip")
    with pytest.raises(policy_apply.KubeError) as caught:
        policy_apply.run(module, client, _policies(module))
    assert str(caught.value) == "namespace t4 does not exist; create it first or correct namespaces."
    assert client.count("dry-run") == 0 and client.count("apply") == 0


def _linkerd_ports(namespaces):
    return FakeModule(
        mesh="linkerd",
        mode=None,
        allow_namespaces=[],
        namespaces=namespaces,
        selector={"app": "api"},
        port_modes={"80": "STRICT", "81": "PERMISSIVE", "82": "STRICT"},
    )


@pytest.mark.parametrize("client_options", [{"namespaced_rights_only": True}, {"quotas": ["t3"]}])
def test_repeated_creations_of_one_kind_are_proven_once_per_namespace(client_options):
    # Rights granted per namespace only, or a quota in one of them: the copies in different
    # namespaces may be judged apart, so each namespace proves its own.
    client = RecordingClient(NAMESPACES, **client_options)
    module = _linkerd_ports(NAMESPACES)
    result = policy_apply.run(module, client, _policies(module))
    assert [o["action"] for o in result["objects"]] == ["created"] * 15
    assert client.count("review") == 5
    assert client.count("dry-run") == 5 and client.count("apply") == 15


def test_copies_alike_in_every_namespace_are_proven_by_one_dry_run_of_each_body():
    namespaces = ["t%d" % index for index in range(20)]
    client = RecordingClient(namespaces)
    module = FakeModule(namespaces=namespaces, preflight="skip")
    result = policy_apply.run(module, client, _policies(module))
    assert [o["action"] for o in result["objects"]] == ["created"] * 40
    # One dry run per kind (the bodies differ only in their namespace), create and patch
    # reviewed once each per kind, no per-namespace review.
    assert client.count("dry-run") == 2 and client.count("apply") == 40
    assert client.count("access") == 4 and client.count("review") == 0
    # Few creations: the proof would cost more than it saves, so each is dry-run.
    client = RecordingClient(NAMESPACES)
    module = FakeModule(namespaces=NAMESPACES, preflight="skip")
    policy_apply.run(module, client, _policies(module))
    assert client.count("dry-run") == 10 and client.count("access") == 0


def test_a_terminating_namespace_is_not_proven_by_its_neighbours():
    client = RecordingClient(NAMESPACES)
    original = client.list

    def list_with_phase(kind, namespace=None, label_selector=None):
        items = original(kind, namespace, label_selector)
        if kind.plural == "namespaces":
            items[0]["status"] = {"phase": "Terminating"}
        return items

    client.list = list_with_phase
    module = _linkerd_ports(NAMESPACES)
    policy_apply.run(module, client, _policies(module))
    assert client.count("dry-run") == 5 and client.count("access") == 0
