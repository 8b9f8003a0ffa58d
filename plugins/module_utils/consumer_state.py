# -*- coding: utf-8 -*-
# Copyright: zerotrust.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the consumers of the PKI hold right now, read from the Kubernetes API.

During a CA rotation the PKI files change first; the programs that consume them (istiod,
cert-manager, SPIRE) follow on their own schedule. These readers tell, for each consumer,
whether it already publishes or holds what the rotation expects: the root set istiod
distributes (``istio-ca-root-cert``), the roots in SPIRE's bundle ConfigMap (k8sbundle
notifier), and whether each cert-manager Certificate of our issuer is Ready with a
certificate signed by the active CA. Read-only; the backend (consumer_sync) acts on the
answers. Private keys in the Secrets read here are never decoded.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii

from ansible_collections.zerotrust.mtls.plugins.module_utils import kube
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_certs import load_certificates, signed_by
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_fingerprints import sha256_fingerprint
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_support import PkiError

CERTIFICATE = kube.ResourceKind("cert-manager.io/v1", "Certificate", "certificates", True, "cert-manager")

# istiod writes the roots it distributes to every namespace under this name and key.
ISTIO_ROOT_CONFIG_MAP = "istio-ca-root-cert"
ISTIO_ROOT_KEY = "root-cert.pem"


def fingerprints_of_pem(pem, field):
    """The SHA-256 fingerprints of the certificates in ``pem`` (text or bytes), as a set;
    empty when there is no PEM at all."""
    if not pem:
        return set()
    if isinstance(pem, str):
        pem = pem.encode("utf-8")
    try:
        return set(sha256_fingerprint(cert) for cert in load_certificates(pem, field))
    except PkiError:
        return set()


NOT_DEPLOYED = "not deployed (no %s ConfigMap), not waited for"
FOREIGN = "publishes none of the expected roots (a CA of its own, or another estate's), not waited for"


def istio_root_status(client, namespace, roots, wait_for_absent):
    """(done, detail): istiod's root ConfigMap in ``namespace`` holds exactly ``roots``. No
    ConfigMap means istiod never ran there: done, unless ``wait_for_absent``."""
    config_map = client.get(kube.CONFIG_MAP, ISTIO_ROOT_CONFIG_MAP, namespace)
    if config_map is None:
        if not wait_for_absent:
            return True, NOT_DEPLOYED % ISTIO_ROOT_CONFIG_MAP
        return False, "no %s ConfigMap yet" % ISTIO_ROOT_CONFIG_MAP
    published = fingerprints_of_pem((config_map.get("data") or {}).get(ISTIO_ROOT_KEY), "istio-ca-root-cert")
    if published and not published & roots:
        # Not an istiod of this PKI: one with its self-signed CA (cacerts not mounted) or of
        # another estate sharing the cluster. Waiting could never end; the result warns.
        return True, FOREIGN
    if published == roots:
        return True, "%d root(s), as expected" % len(published)
    return False, "%d root(s) published, %d of the %d expected" % (len(published), len(published & roots), len(roots))


def spire_bundle_status(client, namespace, name, key, roots, wait_for_absent):
    """(done, detail): SPIRE's bundle ConfigMap holds every root of ``roots``. SPIRE keeps a
    retired root until it expires, so more roots than expected is fine. No ConfigMap means
    SPIRE never ran: done, unless ``wait_for_absent``."""
    config_map = client.get(kube.CONFIG_MAP, name, namespace)
    if config_map is None:
        if not wait_for_absent:
            return True, NOT_DEPLOYED % name
        return False, "no ConfigMap %s/%s yet" % (namespace, name)
    published = fingerprints_of_pem((config_map.get("data") or {}).get(key), "spire_bundle")
    missing = roots - published
    if not missing:
        return True, "holds the %d expected root(s)" % len(roots)
    return False, "lacks %d of the %d expected root(s)" % (len(missing), len(roots))


def issued_by_our_issuer(certificate, issuer):
    ref = (certificate.get("spec") or {}).get("issuerRef") or {}
    return ref.get("name") == issuer["name"] and (ref.get("kind") or "Issuer") == issuer["kind"] and (ref.get("group") or "cert-manager.io") == issuer["group"]


def condition_status(obj, kind):
    for item in (obj.get("status") or {}).get("conditions") or []:
        if item.get("type") == kind:
            return item.get("status")
    return None


def secret_leaf(client, namespace, secret_name):
    """The first certificate of the Secret's tls.crt, or None when there is none yet."""
    secret = client.get(kube.SECRET, secret_name, namespace)
    encoded = ((secret or {}).get("data") or {}).get("tls.crt")
    if not encoded:
        return None
    try:
        return load_certificates(base64.b64decode(encoded), "tls.crt")[0]
    except (PkiError, binascii.Error, TypeError, ValueError):
        return None


# What certificate_status finds: only STALE asks for a re-issue (one already being issued
# is left to finish).
READY, STALE, ISSUING, NOT_READY = "ready", "stale", "issuing", "not ready"


def certificate_status(client, certificate, signing_ca):
    """(one of READY/STALE/ISSUING/NOT_READY, detail) of one cert-manager Certificate: READY
    is Ready, not issuing, and its Secret's certificate signed by ``signing_ca`` (the active
    intermediate)."""
    metadata, spec = certificate["metadata"], certificate.get("spec") or {}
    issuing = condition_status(certificate, "Issuing") == "True"
    leaf = secret_leaf(client, metadata["namespace"], spec.get("secretName"))
    if leaf is None or not signed_by(leaf, signing_ca):
        what = "has no certificate yet" if leaf is None else "holds a certificate of another CA"
        return (ISSUING if issuing else STALE), "Secret %s %s%s" % (spec.get("secretName"), what, ", being issued" if issuing else "")
    if issuing:
        return ISSUING, "being issued"
    if condition_status(certificate, "Ready") != "True":
        return NOT_READY, "not Ready"
    return READY, "Ready, signed by the active CA"


def our_certificates(client, issuer, namespaces):
    """The Certificates whose issuerRef is ``issuer``, in ``namespaces`` (every namespace
    when empty), sorted by namespace/name."""
    if namespaces:
        found = [item for namespace in namespaces for item in client.list(CERTIFICATE, namespace)]
    else:
        found = client.list(CERTIFICATE)
    ours = [item for item in found if issued_by_our_issuer(item, issuer)]
    return sorted(ours, key=lambda item: (item["metadata"]["namespace"], item["metadata"]["name"]))
