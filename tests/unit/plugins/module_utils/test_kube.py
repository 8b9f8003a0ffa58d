# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""kube.py and the files split from it (kube_errors, kube_validation, kube_fields): error
sentences, validators, field ownership, and the transport (retries, apply requests) against a
small real HTTP server on 127.0.0.1 that answers like an API server."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import socket

import pytest

from ansible_collections.zerotrust.mtls.plugins.module_utils.kube import (
    PEER_AUTHENTICATION,
    SECRET,
    KubeClient,
    resource_path,
)
from ansible_collections.zerotrust.mtls.plugins.module_utils.kube_connection import ConnectionSettings
from ansible_collections.zerotrust.mtls.plugins.module_utils.kube_errors import KubeError, api_error_sentence
from ansible_collections.zerotrust.mtls.plugins.module_utils.kube_fields import comparable, owned_fields, owned_keys
from ansible_collections.zerotrust.mtls.plugins.module_utils.kube_validation import (
    validate_annotations,
    validate_labels,
    validate_namespace_name,
    validate_object_name,
)
from ansible_collections.zerotrust.mtls.tests.unit.plugins import kube_fakes
from ansible_collections.zerotrust.mtls.tests.unit.plugins.import_probe import kubernetes_modules_after_importing


class ScriptedApiServer(kube_fakes.LoopbackApiServer):
    """Answers each request with the next scripted (status, body, headers) and records
    what it received."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.requests = []
        super(ScriptedApiServer, self).__init__()

    def answer(self, request):
        self.requests.append(request)
        return self.answers.pop(0)


@pytest.fixture
def serve():
    servers = []

    def start(*answers):
        server = ScriptedApiServer(answers)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def client_for(url, sleeps=None):
    return KubeClient(ConnectionSettings(host=url, api_key="t0ken"), backoff=0.01, sleep=(sleeps.append if sleeps is not None else lambda s: None))


def test_apply_sends_server_side_apply_with_field_manager(serve):
    server = serve((200, {"kind": "Secret", "metadata": {"name": "web"}}, None))
    client = client_for(server.url)
    answer = client.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "web", "namespace": "shop"}}, dry_run=True, force_conflicts=True)
    assert answer["metadata"]["name"] == "web"
    request = server.requests[0]
    assert request["method"] == "PATCH"
    assert request["path"] == ("/api/v1/namespaces/shop/secrets/web?fieldManager=zerotrust.mtls&force=true&dryRun=All")
    assert request["headers"]["content-type"] == "application/apply-patch+yaml"
    assert request["headers"]["authorization"] == "Bearer t0ken"
    assert json.loads(request["body"])["metadata"]["namespace"] == "shop"


def test_retries_on_503_and_429_then_succeeds(serve):
    server = serve(
        (503, {"message": "etcd leader changed"}, None),
        (429, {"message": "slow down"}, {"Retry-After": "1"}),
        (200, {"items": [{"metadata": {"name": "a"}}]}, None),
    )
    sleeps = []
    items = client_for(server.url, sleeps).list(SECRET, "shop", "a=b")
    assert [i["metadata"]["name"] for i in items] == ["a"]
    assert len(server.requests) == 3
    assert server.requests[0]["path"] == "/api/v1/namespaces/shop/secrets?labelSelector=a%3Db"
    assert sleeps == [0.01, 1.0]  # backoff, then the server's Retry-After


def test_retries_are_bounded(serve):
    server = serve(*[(500, {"message": "boom"}, None)] * 4)
    with pytest.raises(KubeError) as error:
        client_for(server.url).get(SECRET, "web", "shop")
    assert len(server.requests) == 4
    assert "failed (500) to get Secret shop/web: boom" in str(error.value)


def test_conflict_is_not_retried(serve):
    server = serve(
        (
            409,
            {
                "message": 'Apply failed with 1 conflict: conflict with "kubectl" using v1: .data.tls.crt',
                "reason": "Conflict",
                "details": {"causes": [{"field": ".data.tls.crt", "message": 'conflict with "kubectl"'}]},
            },
            None,
        )
    )
    with pytest.raises(KubeError) as error:
        client_for(server.url).apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "web", "namespace": "shop"}})
    assert len(server.requests) == 1
    assert str(error.value) == ("field manager conflict on Secret shop/web: .data.tls.crt owned by kubectl; set force_conflicts: true to take them over.")


def test_get_missing_object_is_none_but_missing_crd_is_an_error(serve):
    server = serve(
        (404, {"reason": "NotFound", "message": 'secrets "web" not found', "details": {"name": "web", "kind": "secrets"}}, None),
        (404, {"reason": "NotFound", "message": "the server could not find the requested resource", "details": {}}, None),
    )
    client = client_for(server.url)
    assert client.get(SECRET, "web", "shop") is None
    with pytest.raises(KubeError) as error:
        client.get(PEER_AUTHENTICATION, "default", "shop")
    assert str(error.value) == ("the PeerAuthentication CRD (peerauthentications.security.istio.io) is not installed — install Istio first.")


def test_unreachable_server_names_url_and_source():
    with socket.socket() as probe:  # a port that was free a moment ago: nobody listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sleeps = []
    client = client_for("http://127.0.0.1:%d" % port, sleeps)
    with pytest.raises(KubeError) as error:
        client.get(SECRET, "web", "shop")
    assert str(error.value).startswith("cannot reach the Kubernetes API server at http://127.0.0.1:%d (from the host option): connection refused" % port)
    assert len(sleeps) == 3


def test_kubeconfig_problems_are_one_sentence(tmp_path):
    with pytest.raises(KubeError) as error:
        KubeClient(ConnectionSettings(kubeconfig=str(tmp_path / "nope")))
    assert "does not exist; set kubeconfig" in str(error.value)
    config = tmp_path / "config"
    config.write_text(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: "
        "'https://127.0.0.1:1'}\nusers:\n- name: u\n  user: {token: x}\ncontexts:\n- name: a\n"
        "  context: {cluster: c, user: u}\ncurrent-context: a\n"
    )
    with pytest.raises(KubeError) as error:
        KubeClient(ConnectionSettings(kubeconfig=str(config), context="b"))
    assert str(error.value) == ("context b is not in kubeconfig %s; set context to one of the contexts defined there." % config)
    client = KubeClient(ConnectionSettings(kubeconfig=str(config), context="a"))
    assert client.server == "https://127.0.0.1:1"
    assert client.source == "kubeconfig %s (context a)" % config


FORBIDDEN = {
    "kind": "Status",
    "reason": "Forbidden",
    "code": 403,
    "message": 'secrets "web" is forbidden: User "system:serviceaccount:ci:deployer" cannot patch resource "secrets" in API group "" in the namespace "shop"',
}


def test_forbidden_sentence_names_user_verb_resource():
    sentence = api_error_sentence(403, FORBIDDEN, "patch", SECRET, "web", "shop")
    assert sentence == (
        "forbidden (403): user system:serviceaccount:ci:deployer may not patch "
        "secrets in namespace shop; grant it through RBAC or use a context that "
        "has that right."
    )
    crd = dict(
        FORBIDDEN,
        message='peerauthentications.security.istio.io "x" is forbidden: User '
        '"bob" cannot get resource "peerauthentications" in API group '
        '"security.istio.io" in the namespace "a"',
    )
    assert "user bob may not get peerauthentications.security.istio.io in namespace a" in api_error_sentence(403, crd, "get", PEER_AUTHENTICATION, "x", "a")


@pytest.mark.parametrize(
    "status, body, fragment",
    [
        (401, {"message": "Unauthorized"}, "rejected the credentials from kubeconfig /k (401"),
        (404, {"message": 'namespaces "nope" not found', "details": {"name": "nope", "kind": "namespaces"}}, "namespace nope does not exist; create it first"),
        (
            422,
            {"message": 'PeerAuthentication.security.istio.io "x" is invalid: spec: Invalid value: "object": portLevelMtls requires selector'},
            "the API server rejected Secret shop/web as invalid: PeerAuthentication",
        ),
        (418, {}, "patch Secret shop/web failed with HTTP 418: no reason given."),
    ],
)
def test_other_sentences(status, body, fragment):
    assert fragment in api_error_sentence(status, body, "patch", SECRET, "web", "shop", "https://127.0.0.1:6443", "kubeconfig /k")


@pytest.mark.parametrize(
    "function, value, fragment",
    [
        (validate_object_name, "Web", "is not a valid Kubernetes name"),
        (validate_object_name, "a" * 254, "is not a valid Kubernetes name"),
        (validate_namespace_name, "a.b", "is not a valid namespace name"),
        (validate_labels, {"team": "a b"}, "is not a valid label value"),
        (validate_labels, {"-bad": "x"}, "is not a valid key"),
        (validate_annotations, {"ok": None}, "has no value"),
    ],
)
def test_validators(function, value, fragment):
    with pytest.raises(KubeError) as error:
        function(value, "field")
    assert fragment in str(error.value)


def test_validators_accept_good_values():
    validate_object_name("istio-ca.v2", "name")
    validate_namespace_name("istio-system", "namespace")
    validate_labels({"app.kubernetes.io/name": "web", "empty": ""})
    validate_annotations({"example.com/note": "anything at all"})


def test_owned_fields_and_comparable():
    obj = {
        "metadata": {
            "name": "a",
            "resourceVersion": "7",
            "managedFields": [
                {"manager": "kubectl", "operation": "Update", "fieldsV1": {"f:data": {"f:x": {}}}},
                {"manager": "zerotrust.mtls", "operation": "Apply", "fieldsV1": {"f:metadata": {"f:labels": {"f:team": {}}}, "f:data": {"f:tls.crt": {}}}},
            ],
        },
        "data": {},
        "status": {"x": 1},
    }
    owned = owned_fields(obj)
    assert owned_keys(owned, "data") == {"tls.crt"}
    assert owned_keys(owned, "metadata", "labels") == {"team"}
    assert comparable(obj) == {"metadata": {"name": "a"}, "data": {}}
    assert resource_path(PEER_AUTHENTICATION, "a", "b") == "/apis/security.istio.io/v1/namespaces/a/peerauthentications/b"


def test_dry_run_delete_carries_dry_run_in_the_body(serve):
    # The API server ignores query parameters when DeleteOptions come in the body; a
    # dryRun=All query alone deleted for real on kube-apiserver 1.35.
    server = serve(
        (200, {"kind": "Status"}, None),
        (404, {"reason": "NotFound", "message": 'secrets "web" not found', "details": {"name": "web", "kind": "secrets"}}, None),
    )
    client = client_for(server.url)
    assert client.delete(SECRET, "web", "shop", dry_run=True) is True
    body = json.loads(server.requests[0]["body"])
    assert body["dryRun"] == ["All"]
    assert server.requests[0]["method"] == "DELETE"
    assert client.delete(SECRET, "web", "shop") is False  # already gone: nothing deleted
    assert "dryRun" not in json.loads(server.requests[1]["body"])


# Importing a module must not import the kubernetes client (about 0.15 s of CPU per
# module run): kube_connection imports it at the first connection, which runs of
# mtls_cert_info on a file or mtls_rotation_state without ConfigMaps never make.
@pytest.mark.parametrize("module", ["mtls_cert_info", "mtls_rotation_state", "mtls_secret", "mesh_policy", "mtls_audit"])
def test_importing_a_module_leaves_the_kubernetes_client_unimported(module):
    assert kubernetes_modules_after_importing("modules." + module) == []


def test_the_kubernetes_client_is_imported_at_the_first_connection():
    import sys

    from ansible_collections.zerotrust.mtls.plugins.module_utils import kube_connection

    kubernetes = kube_connection.kubernetes_client()
    assert kubernetes.client is sys.modules["kubernetes.client"]
    assert kube_connection.is_connection_error(kubernetes.client.ApiException(status=0))
    assert not kube_connection.is_connection_error(kubernetes.client.ApiException(status=404))
    assert kube_connection.is_connection_error(ConnectionRefusedError())
