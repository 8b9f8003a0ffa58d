# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Policy building and the mesh rules checked before the API server sees a policy."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.zerotrust.mtls.plugins.module_utils.policy import (
    LINKERD_INBOUND_ANNOTATION,
    POLICY_SET_LABEL,
    MeshPolicy,
    PolicyError,
    identity_for_linkerd,
    pods_without_sidecar,
    principal_for_istio,
    validate,
)
from ansible_collections.zerotrust.mtls.plugins.module_utils.policy_manifests import (
    desired_objects,
    linkerd_namespace_patch,
    objects_to_prune,
)


def policy(**options):
    options.setdefault("name", "default")
    options.setdefault("namespace", "shop")
    return validate(MeshPolicy(**options))


def by_kind(objects):
    return dict((o["kind"], o) for o in objects)


def test_namespace_strict_peer_authentication():
    objects = desired_objects(policy(mode="strict"))
    assert len(objects) == 1
    pa = objects[0]
    assert pa["apiVersion"] == "security.istio.io/v1"
    assert pa["spec"] == {"mtls": {"mode": "STRICT"}}
    assert pa["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "zerotrust.mtls", POLICY_SET_LABEL: "default"}


def test_mesh_level_is_the_root_namespace_without_selector():
    mesh = policy(namespace="istio-system", mode="STRICT")
    assert mesh.scope == "mesh"
    assert policy(mode="STRICT").scope == "namespace"
    assert policy(mode="STRICT", selector={"app": "web"}).scope == "workload"


def test_workload_policy_with_port_modes():
    pa = desired_objects(policy(name="api", mode="STRICT", selector={"matchLabels": {"app": "api"}}, port_modes={8080: "permissive", "9090": "DISABLE"}))[0]
    assert pa["spec"] == {
        "selector": {"matchLabels": {"app": "api"}},
        "mtls": {"mode": "STRICT"},
        "portLevelMtls": {"8080": {"mode": "PERMISSIVE"}, "9090": {"mode": "DISABLE"}},
    }


@pytest.mark.parametrize(
    "options, field, fragment",
    [
        ({"mode": "STRICT", "port_modes": {8080: "STRICT"}}, "port_modes", "port_modes needs selector"),
        (
            {"namespace": "istio-system", "mode": "STRICT", "selector": {"app": "x"}},
            "selector",
            "selector is set on a policy in the root namespace istio-system",
        ),
        ({"mode": "STRIKT"}, "mode", "mode 'STRIKT' is unknown"),
        ({"mode": "STRICT", "selector": {"app": "x"}, "port_modes": {8080: "LOOSE"}}, "port_modes", "port_modes.8080 mode 'LOOSE' is unknown"),
        ({"mode": "STRICT", "selector": {"app": "x"}, "port_modes": {70000: "STRICT"}}, "port_modes", "port_modes key 70000 is not a port"),
        ({"mode": "STRICT", "selector": {"app": "x*"}}, "selector", "is not a valid label value"),
        ({}, "mode", "nothing to apply"),
        ({"destination_rule": {"host": "a.b", "tls_mode": "MUTUAL"}}, "destination_rule.credential_name", "credential_name is required for tls_mode MUTUAL"),
        (
            {"destination_rule": {"host": "a.b", "tls_mode": "ISTIO_MUTUAL", "credential_name": "x"}},
            "destination_rule.credential_name",
            "is not used with tls_mode ISTIO_MUTUAL",
        ),
        ({"destination_rule": {"host": "a.b", "tls_mode": "FANCY"}}, "destination_rule.tls_mode", "tls_mode 'FANCY' is unknown"),
        ({"destination_rule": {"tls_mode": "SIMPLE"}}, "destination_rule.host", "host is missing"),
        ({"allow_principals": ["https://x/ns/a/sa/b"]}, "allow_principals[0]", "is not a SPIFFE ID"),
        ({"allow_principals": ["spiffe://cluster.local/web"]}, "allow_principals[0]", "is not a workload SPIFFE ID"),
        ({"allow_namespaces": ["Bad_NS"]}, "allow_namespaces", "is not a valid namespace name"),
        ({"name": "Bad Name", "mode": "STRICT"}, "name", "is not a valid Kubernetes name"),
        ({"mode": "STRICT", "port": 80}, "port", "port is only used with mesh linkerd"),
        ({"mode": "STRICT", "mesh": "consul"}, "mesh", "mesh consul is unknown"),
    ],
)
def test_istio_rules_refused_with_the_field_named(options, field, fragment):
    with pytest.raises(PolicyError) as error:
        policy(**options)
    assert fragment in str(error.value)
    assert error.value.field == field


def test_destination_rule_mutual_with_credential():
    rule = by_kind(
        desired_objects(
            policy(
                name="partner",
                destination_rule={
                    "host": "api.partner.example",
                    "tls_mode": "mutual",
                    "credential_name": "partner-tls",
                    "sni": "api",
                    "subject_alt_names": ["api.partner.example"],
                },
            )
        )
    )
    assert rule["DestinationRule"]["spec"] == {
        "host": "api.partner.example",
        "trafficPolicy": {"tls": {"mode": "MUTUAL", "credentialName": "partner-tls", "sni": "api", "subjectAltNames": ["api.partner.example"]}},
    }


@pytest.mark.parametrize("mode", ["ISTIO_MUTUAL", "SIMPLE", "DISABLE"])
def test_destination_rule_other_modes(mode):
    rule = desired_objects(policy(destination_rule={"host": "web", "tls_mode": mode}))[0]
    assert rule["spec"]["trafficPolicy"]["tls"] == {"mode": mode}


def test_authorization_policy_from_spiffe_ids_and_namespaces():
    objects = by_kind(
        desired_objects(
            policy(name="callers", selector={"app": "api"}, allow_principals=["spiffe://cluster.local/ns/shop/sa/checkout"], allow_namespaces=["ops"])
        )
    )
    spec = objects["AuthorizationPolicy"]["spec"]
    assert spec["action"] == "ALLOW"
    assert spec["selector"] == {"matchLabels": {"app": "api"}}
    assert spec["rules"] == [{"from": [{"source": {"principals": ["cluster.local/ns/shop/sa/checkout"]}}, {"source": {"namespaces": ["ops"]}}]}]
    assert "PeerAuthentication" not in objects


def test_principal_conversions():
    assert principal_for_istio("cluster.local/ns/a/sa/b", "f") == "cluster.local/ns/a/sa/b"
    assert identity_for_linkerd("spiffe://example.org/ns/shop/sa/web", "f") == "web.shop.serviceaccount.identity.linkerd.example.org"
    with pytest.raises(PolicyError):
        identity_for_linkerd("", "allow_principals[0]")


def test_linkerd_namespace_mode_and_port_servers():
    strict = policy(mesh="linkerd", mode="STRICT")
    assert desired_objects(strict) == []
    assert linkerd_namespace_patch(strict) == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "shop", "annotations": {LINKERD_INBOUND_ANNOTATION: "all-authenticated"}},
    }
    permissive = policy(mesh="linkerd", mode="PERMISSIVE")
    assert linkerd_namespace_patch(permissive)["metadata"]["annotations"] == {LINKERD_INBOUND_ANNOTATION: "all-unauthenticated"}
    unset = policy(mesh="linkerd", mode="UNSET")
    assert "annotations" not in linkerd_namespace_patch(unset)["metadata"]
    servers = desired_objects(policy(mesh="linkerd", name="api", selector={"app": "api"}, port_modes={8443: "STRICT", 9090: "PERMISSIVE"}))
    assert [(s["metadata"]["name"], s["spec"]["port"], s["spec"]["accessPolicy"]) for s in servers] == [
        ("api-8443", 8443, "all-authenticated"),
        ("api-9090", 9090, "all-unauthenticated"),
    ]
    assert servers[0]["apiVersion"] == "policy.linkerd.io/v1beta3"


def test_linkerd_authorization_objects():
    objects = by_kind(
        desired_objects(
            policy(
                mesh="linkerd",
                name="callers",
                selector={"app": "api"},
                port=8443,
                allow_principals=["spiffe://cluster.local/ns/shop/sa/checkout"],
                allow_namespaces=["ops"],
            )
        )
    )
    assert objects["Server"]["spec"] == {"podSelector": {"matchLabels": {"app": "api"}}, "port": 8443, "accessPolicy": "deny"}
    assert objects["MeshTLSAuthentication"]["spec"]["identities"] == [
        "checkout.shop.serviceaccount.identity.linkerd.cluster.local",
        "*.ops.serviceaccount.identity.linkerd.cluster.local",
    ]
    assert objects["AuthorizationPolicy"]["apiVersion"] == "policy.linkerd.io/v1alpha1"
    assert objects["AuthorizationPolicy"]["spec"]["targetRef"] == {"group": "policy.linkerd.io", "kind": "Server", "name": "callers"}


@pytest.mark.parametrize(
    "options, fragment",
    [
        ({"mode": "DISABLE"}, "mode DISABLE cannot be expressed with mesh linkerd"),
        ({"destination_rule": {"host": "x"}}, "destination_rule is Istio-only"),
        ({"allow_principals": ["spiffe://cluster.local/ns/a/sa/b"]}, "need selector and port"),
        ({"selector": {"app": "a"}, "port_modes": {80: "DISABLE"}}, "cannot be expressed"),
        ({"mode": "STRICT", "selector": {"app": "a"}}, "mode with a selector is not a Linkerd"),
        ({"selector": {"app": "a"}, "port": 80, "port_modes": {80: "STRICT"}, "allow_namespaces": ["x"]}, "port 80 is also in port_modes"),
    ],
)
def test_linkerd_rules(options, fragment):
    with pytest.raises(PolicyError) as error:
        policy(mesh="linkerd", **options)
    assert fragment in str(error.value)


def _pod(namespace, name, labels=None, containers=("app",), init=(), phase="Running"):
    return {
        "metadata": {"namespace": namespace, "name": name, "labels": labels or {}},
        "spec": {"containers": [{"name": c} for c in containers], "initContainers": [{"name": c} for c in init]},
        "status": {"phase": phase},
    }


def test_preflight_finds_pods_strict_would_cut_off():
    pods = [
        _pod("shop", "web-1", {"app": "web"}),
        _pod("shop", "web-2", {"app": "web"}, ("app", "istio-proxy")),
        _pod("shop", "native", {"app": "web"}, init=("istio-proxy",)),
        _pod("shop", "job", {"app": "web"}, phase="Succeeded"),
        _pod("shop", "db-1", {"app": "db"}),
        _pod("other", "x"),
    ]
    namespaces = {"shop": {"metadata": {"labels": {}}}}
    assert pods_without_sidecar(policy(mode="STRICT"), pods, namespaces) == ["shop/db-1", "shop/web-1"]
    workload = policy(mode="STRICT", selector={"app": "web"})
    assert pods_without_sidecar(workload, pods, namespaces) == ["shop/web-1"]
    injected = {"shop": {"metadata": {"labels": {"istio.io/rev": "1-31"}}}}
    assert pods_without_sidecar(policy(mode="STRICT"), pods, injected) == []


def test_preflight_mesh_scope_skips_system_namespaces():
    pods = [_pod("kube-system", "dns"), _pod("istio-system", "istiod"), _pod("a", "app")]
    mesh = policy(namespace="istio-system", mode="STRICT")
    assert pods_without_sidecar(mesh, pods, {}) == ["a/app"]
    assert mesh.strict_requested()
    assert not policy(mode="PERMISSIVE").strict_requested()
    assert policy(mode="PERMISSIVE", selector={"a": "b"}, port_modes={80: "STRICT"}).strict_requested()


def test_prune_keeps_what_is_declared():
    declared = desired_objects(policy(mode="STRICT"))
    stale = {"kind": "AuthorizationPolicy", "metadata": {"namespace": "shop", "name": "default"}}
    kept = {"kind": "PeerAuthentication", "metadata": {"namespace": "shop", "name": "default"}}
    assert objects_to_prune([stale, kept], declared) == [stale]


# -- apply_needed: what may be decided without a dry run --------------------------------


def _stored(manifest, owned=None, **spec_changes):
    import copy

    stored = copy.deepcopy(manifest)
    stored["spec"].update(spec_changes)
    stored["metadata"].update({"uid": "u1", "resourceVersion": "7"})
    stored["metadata"]["managedFields"] = [{"manager": "zerotrust.mtls", "operation": "Apply", "fieldsV1": owned if owned is not None else OWNED_PA}]
    return stored


OWNED_PA = {"f:metadata": {"f:labels": {"f:app.kubernetes.io/managed-by": {}, "f:" + POLICY_SET_LABEL: {}}}, "f:spec": {"f:mtls": {"f:mode": {}}}}


def test_apply_needed_is_exact_only_where_it_can_be():
    from ansible_collections.zerotrust.mtls.plugins.module_utils.kube_fields import apply_needed, owned_fields

    manifest = desired_objects(policy(mode="STRICT"))[0]
    assert apply_needed(None, manifest, {}) == "created"
    same = _stored(manifest)
    assert apply_needed(same, manifest, owned_fields(same)) is None
    # Fields another manager added, or the server defaulted, do not count.
    extra = _stored(manifest, portLevelMtls={"80": {"mode": "DISABLE"}})
    assert apply_needed(extra, manifest, OWNED_PA) is None
    assert apply_needed(_stored(manifest, mtls={"mode": "PERMISSIVE"}), manifest, OWNED_PA) == "differs"
    # Same values, written by someone else: applying would only take ownership.
    assert apply_needed(same, manifest, {}) is None
    # A field we set before and no longer declare: the apply may remove it, ask the server.
    owned_more = dict(OWNED_PA, **{"f:spec": {"f:mtls": {"f:mode": {}}, "f:portLevelMtls": {"f:80": {}}}})
    assert apply_needed(extra, manifest, owned_more) == "unknown"
    # List items in the owned fields cannot be matched to paths: ask the server.
    assert apply_needed(same, manifest, dict(OWNED_PA, **{"f:spec": {"f:rules": {'k:{"a":1}': {}}}})) == "unknown"


def test_apply_needed_compares_atomic_lists_whole():
    from ansible_collections.zerotrust.mtls.plugins.module_utils.kube_fields import apply_needed

    manifest = desired_objects(policy(allow_namespaces=["a", "b"]))[0]
    owned = {"f:metadata": {"f:labels": {"f:app.kubernetes.io/managed-by": {}, "f:" + POLICY_SET_LABEL: {}}}, "f:spec": {"f:action": {}, "f:rules": {}}}
    assert apply_needed(_stored(manifest, owned), manifest, owned) is None
    reordered = _stored(manifest, owned, rules=[{"from": [{"source": {"namespaces": ["b", "a"]}}]}])
    assert apply_needed(reordered, manifest, owned) == "differs"
