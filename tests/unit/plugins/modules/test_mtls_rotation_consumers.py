# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""mtls_rotation_consumers against a loopback server that answers like the API server, with
a stand-in for cert-manager: a PUT of a Certificate's status with Issuing=True is answered
by re-issuing its Secret from the CA the test names (as the controller would)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import copy
import json

import pytest

from ansible_collections.zerotrust.mtls.plugins.module_utils import consumer_sync, pki
from ansible_collections.zerotrust.mtls.plugins.modules import mtls_rotation_consumers
from ansible_collections.zerotrust.mtls.tests.unit.plugins import kube_fakes, pki_cases

MODULE = mtls_rotation_consumers


def _b64(pem):
    return base64.b64encode(pem).decode()


def _config_map(namespace, name, key, pem):
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"namespace": namespace, "name": name}, "data": {key: pem.decode()}}


class EstateServer(kube_fakes.LoopbackApiServer):
    """ConfigMaps, Secrets and Certificates by path; ``reissue_from``: the Issuer that the
    stand-in cert-manager signs with when a re-issue is triggered (None: it never does)."""

    def __init__(self):
        self.objects = {}
        self.status_puts = []
        self.reissue_from = None
        super(EstateServer, self).__init__()

    def put_object(self, path, obj):
        self.objects[path] = obj

    def certificate(self, namespace, name, secret_name, issuer_name="mtls-ca", ready=True):
        self.objects["/apis/cert-manager.io/v1/namespaces/%s/certificates/%s" % (namespace, name)] = {
            "apiVersion": "cert-manager.io/v1",
            "kind": "Certificate",
            "metadata": {"namespace": namespace, "name": name},
            "spec": {"secretName": secret_name, "issuerRef": {"name": issuer_name, "kind": "ClusterIssuer", "group": "cert-manager.io"}},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
        }

    def secret(self, namespace, name, leaf_pem):
        self.objects["/api/v1/namespaces/%s/secrets/%s" % (namespace, name)] = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"namespace": namespace, "name": name},
            "data": {"tls.crt": _b64(leaf_pem), "tls.key": "!!! never decoded !!!"},
        }

    def answer(self, request):
        path = request["path"].split("?")[0]
        if request["method"] == "PUT" and path.endswith("/status"):
            return self._status_put(path[: -len("/status")], json.loads(request["body"]))
        if path == "/apis/cert-manager.io/v1/certificates":
            items = [obj for key, obj in sorted(self.objects.items()) if "/certificates/" in key]
            return 200, {"items": items}, None
        if path in self.objects:
            return 200, self.objects[path], None
        name = path.rsplit("/", 1)[-1]
        kind = path.rsplit("/", 2)[-2]
        return 404, {"kind": "Status", "code": 404, "details": {"name": name, "kind": kind}, "message": "%s %s not found" % (kind, name)}, None

    def _status_put(self, path, body):
        self.status_puts.append((path, body))
        if self.reissue_from is not None:
            spec, namespace = body["spec"], body["metadata"]["namespace"]
            self.secret(namespace, spec["secretName"], pki.certificate_pem(pki_cases.leaf(self.reissue_from, "reissued")))
        self.objects[path] = dict(body, status={"conditions": [{"type": "Ready", "status": "True"}]})
        return 200, body, None


@pytest.fixture
def estate(tmp_path):
    """(server, files, old intermediate, new intermediate): a cluster in phase 3 of a root
    rotation - the trust file holds both roots, the active CA is the new intermediate."""
    old_root, old_intermediate = pki_cases.ca_hierarchy("Old root", "Old intermediate")
    new_root, new_intermediate = pki_cases.ca_hierarchy("New root", "New intermediate")
    both = pki.certificate_pem(old_root.cert) + pki.certificate_pem(new_root.cert)
    (tmp_path / "bundle.pem").write_bytes(both)
    (tmp_path / "ca.crt").write_bytes(pki.certificate_pem(new_intermediate.cert))
    server = EstateServer()
    server.put_object("/api/v1/namespaces/istio-system/configmaps/istio-ca-root-cert", _config_map("istio-system", "istio-ca-root-cert", "root-cert.pem", both))
    server.put_object("/api/v1/namespaces/spire/configmaps/spire-bundle", _config_map("spire", "spire-bundle", "bundle.crt", both))
    server.certificate("apps", "api", "api-tls")
    server.secret("apps", "api-tls", pki.certificate_pem(pki_cases.leaf(old_intermediate, "api")))
    server.certificate("apps", "other", "other-tls", issuer_name="someone-else")
    server.secret("apps", "other-tls", pki.certificate_pem(pki_cases.leaf(old_intermediate, "other")))
    yield server, tmp_path, old_intermediate, new_intermediate
    server.close()


def _args(server, tmp_path, **extra):
    args = dict(
        host=server.url,
        trusted_roots_path=str(tmp_path / "bundle.pem"),
        signing_ca_path=str(tmp_path / "ca.crt"),
        cert_manager_issuer={"name": "mtls-ca"},
        istio_root_namespaces=["istio-system"],
        spire_bundle={"namespace": "spire"},
        timeout=5,
        poll_interval=0.05,
    )
    args.update(extra)
    return args


def test_check_mode_names_the_stale_certificate_of_our_issuer_and_changes_nothing(estate, run):
    server, tmp_path, _old, _new = estate
    result = run(check_mode=True, **_args(server, tmp_path))
    assert result["changed"] is True
    assert result["renewed"] == ["apps/api"], "only our issuer's Certificate is renewed"
    assert result["pending"] == ["apps/api"]
    assert server.status_puts == []
    done = dict((item["name"], item["done"]) for item in result["consumers"])
    assert done == {"istio-system/istio-ca-root-cert": True, "spire/spire-bundle": True, "apps/api": False}


def test_a_stale_certificate_is_renewed_once_and_the_wait_ends_when_it_is_reissued(estate, run):
    server, tmp_path, _old, new = estate
    server.reissue_from = new
    result = run(**_args(server, tmp_path))
    assert result["changed"] is True and result["renewed"] == ["apps/api"] and result["pending"] == []
    assert len(server.status_puts) == 1
    path, body = server.status_puts[0]
    assert path.endswith("/namespaces/apps/certificates/api")
    issuing = [c for c in body["status"]["conditions"] if c["type"] == "Issuing"]
    assert issuing and issuing[0]["status"] == "True" and issuing[0]["reason"] == "ManuallyTriggered"
    assert [c["type"] for c in body["status"]["conditions"]] == ["Ready", "Issuing"], "the other conditions are kept"
    again = run(**_args(server, tmp_path))
    assert again["changed"] is False and again["renewed"] == [] and len(server.status_puts) == 1


def test_a_consumer_that_stays_behind_fails_naming_it_and_the_fix(estate, run, tmp_path):
    server, tmp_path, old, _new = estate
    server.reissue_from = old  # a controller that keeps signing with the old CA
    stale_roots = (tmp_path / "bundle.pem").read_bytes().split(b"-----END CERTIFICATE-----\n")[0] + b"-----END CERTIFICATE-----\n"
    server.put_object(
        "/api/v1/namespaces/istio-system/configmaps/istio-ca-root-cert", _config_map("istio-system", "istio-ca-root-cert", "root-cert.pem", stale_roots)
    )
    result = run(**_args(server, tmp_path, timeout=0))
    assert result["failed"] is True and result["field"] == "timeout"
    assert "istiod istio-system/istio-ca-root-cert: 1 root(s) published, 1 of the 2 expected" in result["msg"]
    assert "cert-manager apps/api: Secret api-tls holds a certificate of another CA" in result["msg"]
    assert "never decoded" not in json.dumps(result)


def test_spire_may_keep_a_retired_root_but_must_hold_every_expected_one(estate, run):
    server, tmp_path, _old, _new = estate
    narrowed = copy.deepcopy(server.objects["/api/v1/namespaces/spire/configmaps/spire-bundle"])
    server.put_object("/api/v1/namespaces/spire/configmaps/spire-bundle", narrowed)
    first = (tmp_path / "bundle.pem").read_bytes().split(b"-----END CERTIFICATE-----\n")[1] + b"-----END CERTIFICATE-----\n"
    (tmp_path / "new-only.pem").write_bytes(first)
    result = run(check_mode=True, **_args(server, tmp_path, trusted_roots_path=str(tmp_path / "new-only.pem"), cert_manager_issuer=None, signing_ca_path=None))
    done = dict((item["name"], item["done"]) for item in result["consumers"])
    assert done["spire/spire-bundle"] is True, "more roots than expected is fine for SPIRE"
    assert done["istio-system/istio-ca-root-cert"] is False, "istiod must publish exactly the expected roots"


@pytest.mark.parametrize(
    "extra, field",
    [
        ({"istio_root_namespaces": ["Bad_NS"]}, "istio_root_namespaces"),
        ({"trusted_roots_path": "/nonexistent/bundle.pem"}, "trusted_roots_path"),
        ({"poll_interval": 0}, "timeout"),
    ],
)
def test_bad_input_fails_naming_the_field_before_any_request(estate, run, extra, field):
    server, tmp_path, _old, _new = estate
    result = run(**_args(server, tmp_path, **extra))
    assert result["failed"] is True and result["field"] == field and server.status_puts == []


def test_cert_manager_issuer_requires_the_signing_ca(estate, run):
    server, tmp_path, _old, _new = estate
    result = run(**_args(server, tmp_path, signing_ca_path=None))
    assert result["failed"] is True and "signing_ca_path" in result["msg"]


def test_a_consumer_that_never_ran_is_not_waited_for_unless_asked(estate, run):
    server, tmp_path, _old, _new = estate
    del server.objects["/api/v1/namespaces/spire/configmaps/spire-bundle"]
    result = run(check_mode=True, **_args(server, tmp_path, cert_manager_issuer=None, signing_ca_path=None))
    spire = [item for item in result["consumers"] if item["consumer"] == "spire"][0]
    assert spire["done"] is True and spire["detail"].startswith("not deployed")
    result = run(**_args(server, tmp_path, cert_manager_issuer=None, signing_ca_path=None, wait_for_absent=True, timeout=0))
    assert result["failed"] is True and "spire spire/spire-bundle: no ConfigMap spire/spire-bundle yet" in result["msg"]


def test_an_istiod_that_does_not_use_this_pki_is_not_waited_for_but_named(estate, run):
    server, tmp_path, _old, _new = estate
    foreign = pki.certificate_pem(pki_cases.ca_hierarchy("istiod self-signed", "x")[0].cert)
    server.put_object(
        "/api/v1/namespaces/istio-system/configmaps/istio-ca-root-cert", _config_map("istio-system", "istio-ca-root-cert", "root-cert.pem", foreign)
    )
    result = run(**_args(server, tmp_path, cert_manager_issuer=None, signing_ca_path=None, timeout=0))
    assert not result.get("failed") and result["pending"] == [], result
    istiod = [item for item in result["consumers"] if item["consumer"] == "istiod"][0]
    assert istiod["done"] is True and istiod["detail"].startswith("publishes none of the expected roots"), istiod
    # The run's warning (module.warn) names it: the backend's list of them.
    assert consumer_sync.warnings([istiod]) == ["istiod istio-system/istio-ca-root-cert " + istiod["detail"] + "."]
