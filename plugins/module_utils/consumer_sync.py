# -*- coding: utf-8 -*-
# Copyright: zerotrust.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backend of mtls_rotation_consumers: make the live consumers follow a CA rotation,
and wait until they have.

A rotation phase is only safe to leave once the programs that consume the PKI hold what
the phase published: istiod distributes the expected roots, SPIRE's bundle holds them, and
every cert-manager Certificate of our issuer carries a certificate of the active CA.
cert-manager re-issues only at a Certificate's renewBefore, so this backend asks it to
re-issue now, the way ``cmctl renew`` does (an ``Issuing`` condition with reason
``ManuallyTriggered`` on the Certificate's status), once per Certificate and run. Then it
polls until every consumer is there or the timeout passes, and fails naming the ones that
are not. Check mode reads only and reports what it would renew.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.zerotrust.mtls.plugins.module_utils import args_kube_auth, backend_results, kube, kube_connection, kube_validation
from ansible_collections.zerotrust.mtls.plugins.module_utils import consumer_state as state
from ansible_collections.zerotrust.mtls.plugins.module_utils.errors import MtlsError, read_file
from ansible_collections.zerotrust.mtls.plugins.module_utils.kube_errors import KubeError
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_certs import load_certificate
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_support import check_cryptography

VALIDATION_RULES = dict(required_by=dict(cert_manager_issuer=("signing_ca_path",)))

KNOWN_ERRORS = backend_results.KNOWN_ERRORS
failure_result, unexpected_failure_result = backend_results.failure_results("mtls_rotation_consumers", changed=False)

RENEW_REASON = "ManuallyTriggered"
RENEW_MESSAGE = "Certificate re-issuance triggered by zerotrust.mtls (CA rotation)"


class ConsumerError(MtlsError):
    """A consumer that did not follow the rotation in time, told as one sentence."""


def argument_spec():
    spec = dict(
        trusted_roots_path=dict(type="path", required=True),
        signing_ca_path=dict(type="path"),
        cert_manager_issuer=dict(
            type="dict",
            options=dict(
                name=dict(type="str", required=True),
                kind=dict(type="str", default="ClusterIssuer", choices=["ClusterIssuer", "Issuer"]),
                group=dict(type="str", default="cert-manager.io"),
            ),
        ),
        cert_manager_namespaces=dict(type="list", elements="str", default=[]),
        renew=dict(type="bool", default=True),
        istio_root_namespaces=dict(type="list", elements="str", default=[]),
        spire_bundle=dict(
            type="dict",
            options=dict(
                namespace=dict(type="str", required=True),
                name=dict(type="str", default="spire-bundle"),
                key=dict(type="str", default="bundle.crt", no_log=False),
            ),
        ),
        wait_for_absent=dict(type="bool", default=False),
        timeout=dict(type="int", default=120),
        poll_interval=dict(type="float", default=2.0),
    )
    spec.update(args_kube_auth.KUBE_AUTH_SPEC)
    return spec


def validate(params):
    for field in ("istio_root_namespaces", "cert_manager_namespaces"):
        for namespace in params[field]:
            kube_validation.validate_namespace_name(namespace, field)
    if params["spire_bundle"]:
        kube_validation.validate_namespace_name(params["spire_bundle"]["namespace"], "spire_bundle.namespace")
        kube_validation.validate_object_name(params["spire_bundle"]["name"], "spire_bundle.name")
    if params["timeout"] < 0 or params["poll_interval"] <= 0:
        raise ConsumerError("timeout must be 0 or more seconds and poll_interval more than 0 seconds.", "timeout")
    roots = state.fingerprints_of_pem(read_file(params["trusted_roots_path"], "trusted_roots_path"), "trusted_roots_path")
    if not roots:
        raise ConsumerError(
            "trusted_roots_path %s holds no PEM certificate; point it at the trust bundle the ca role writes." % params["trusted_roots_path"],
            "trusted_roots_path",
        )
    signing_ca = None
    if params["signing_ca_path"]:
        signing_ca = load_certificate(read_file(params["signing_ca_path"], "signing_ca_path"), "signing_ca_path")
    return roots, signing_ca


def survey(client, params, roots, signing_ca):
    """Every consumer this run watches: [{consumer, name, done, detail}] (plus the
    Certificate object for cert-manager entries, under ``object``)."""
    entries = []
    for namespace in params["istio_root_namespaces"]:
        done, detail = state.istio_root_status(client, namespace, roots, params["wait_for_absent"])
        entries.append(dict(consumer="istiod", name="%s/%s" % (namespace, state.ISTIO_ROOT_CONFIG_MAP), done=done, detail=detail))
    bundle = params["spire_bundle"]
    if bundle:
        done, detail = state.spire_bundle_status(client, bundle["namespace"], bundle["name"], bundle["key"], roots, params["wait_for_absent"])
        entries.append(dict(consumer="spire", name="%s/%s" % (bundle["namespace"], bundle["name"]), done=done, detail=detail))
    if params["cert_manager_issuer"]:
        for certificate in state.our_certificates(client, params["cert_manager_issuer"], params["cert_manager_namespaces"]):
            status, detail = state.certificate_status(client, certificate, signing_ca)
            name = "%s/%s" % (certificate["metadata"]["namespace"], certificate["metadata"]["name"])
            entries.append(dict(consumer="cert-manager", name=name, done=status == state.READY, detail=detail, status=status, object=certificate))
    return entries


def trigger_reissue(client, certificate):
    """What ``cmctl renew`` does: an Issuing=True condition on the Certificate's status.
    False when the object changed meanwhile (409): the next poll tries again."""
    metadata = certificate["metadata"]
    conditions = [item for item in (certificate.get("status") or {}).get("conditions") or [] if item.get("type") != "Issuing"]
    conditions.append(
        dict(type="Issuing", status="True", reason=RENEW_REASON, message=RENEW_MESSAGE, lastTransitionTime=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    )
    body = dict(certificate, status=dict(certificate.get("status") or {}, conditions=conditions))
    path = kube.resource_path(state.CERTIFICATE, metadata["namespace"], metadata["name"]) + "/status"
    try:
        client.request("PUT", path, "update", state.CERTIFICATE, metadata["name"], metadata["namespace"], body=body)
    except KubeError as error:
        if error.status == 409:
            return False
        raise
    return True


def stale_certificates(entries):
    """cert-manager entries whose certificate is of another CA (or missing) and that are not being issued."""
    return [item for item in entries if item.get("status") == state.STALE]


def public(entries):
    return [dict((key, value) for key, value in item.items() if key != "object") for item in entries]


class Waiter(object):
    """The poll loop; ``clock`` and ``sleep`` are injectable for the unit tests."""

    def __init__(self, client, params, roots, signing_ca, clock=time.monotonic, sleep=time.sleep):
        self.client, self.params, self.roots, self.signing_ca = client, params, roots, signing_ca
        self.clock, self.sleep = clock, sleep
        self.renewed = []

    def renew(self, entries):
        for item in stale_certificates(entries):
            if item["name"] not in self.renewed and trigger_reissue(self.client, item["object"]):
                self.renewed.append(item["name"])

    def run(self):
        started = self.clock()
        while True:
            entries = survey(self.client, self.params, self.roots, self.signing_ca)
            if self.params["renew"]:
                self.renew(entries)
            pending = [item for item in entries if not item["done"]]
            if not pending:
                return entries, self.clock() - started
            if self.clock() - started >= self.params["timeout"]:
                raise ConsumerError(timeout_sentence(pending, self.params["timeout"]), "timeout")
            self.sleep(self.params["poll_interval"])


# istiod ignores a root change in cacerts unless told (pilot/pkg/bootstrap/istio_ca.go:
# "Multi root is disabled, updating new ROOT-CA not supported").
ISTIOD_HINT = " (istiod takes a new root from cacerts only when it runs with ISTIO_MULTIROOT_MESH=true)"


def timeout_sentence(pending, timeout):
    named = "; ".join("%s %s: %s%s" % (item["consumer"], item["name"], item["detail"], ISTIOD_HINT if item["consumer"] == "istiod" else "") for item in pending)
    return (
        "consumers did not follow the rotation within timeout (%d s): %s. Check that they run and read what the roles deliver "
        "(a cert-manager Certificate that stays on the old CA: cmctl status certificate), then rerun; the rotation resumes here." % (timeout, named)
    )


def run_module(module):
    """Renews and waits (in check mode: reports what it would renew and what is pending)."""
    check_cryptography()
    params = module.params
    roots, signing_ca = validate(params)
    client = kube.KubeClient(kube_connection.ConnectionSettings.from_params(params))
    try:
        if module.check_mode:
            entries = survey(client, params, roots, signing_ca)
            would = [item["name"] for item in stale_certificates(entries)] if params["renew"] else []
            return dict(
                changed=bool(would), renewed=would, consumers=public(entries), pending=[item["name"] for item in entries if not item["done"]], waited=0.0
            )
        waiter = Waiter(client, params, roots, signing_ca)
        entries, waited = waiter.run()
    finally:
        client.close()
    return dict(
        changed=bool(waiter.renewed), renewed=waiter.renewed, consumers=public(entries), pending=[], waited=round(waited, 1), warnings=warnings(entries)
    )


def warnings(entries):
    """A warning for each consumer that runs but does not use this PKI: it was not waited for."""
    return ["%s %s %s." % (item["consumer"], item["name"], item["detail"]) for item in entries if item["detail"] == state.FOREIGN]
