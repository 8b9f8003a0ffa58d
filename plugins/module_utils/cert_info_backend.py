# -*- coding: utf-8 -*-
# Copyright: zerotrust.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backend of mtls_cert_info: certificates and CRLs from files, PEM text and a Secret, described.

plugins/modules/mtls_cert_info.py builds its AnsibleModule from ``argument_spec()`` and
runs this file through module_backend.run_as_module. Read-only; private keys are never
decoded, not even those stored in the same Secret.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii

from ansible_collections.zerotrust.mtls.plugins.module_utils import args_kube_auth, backend_results, kube, kube_connection, kube_validation
from ansible_collections.zerotrust.mtls.plugins.module_utils import crl as crl_utils
from ansible_collections.zerotrust.mtls.plugins.module_utils.errors import read_file
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_certs import basic_constraints, certificate_summary, load_certificates
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_renewal import needs_renewal
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_support import PkiError, check_cryptography
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_time import parse_renew_before, utcnow
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_verify import verify_chain


def is_crl_key(name):
    """ca.crl (ingress-nginx), ca-crl.pem (Istio cacerts): read as CRLs, never as certificates."""
    lowered = name.lower()
    return lowered.endswith(".crl") or "crl" in lowered


def default_secret_key(name):
    """Certificate- or CRL-looking data keys; anything that may hold a private key is left alone."""
    lowered = name.lower()
    if "key" in lowered:
        return False
    return lowered.endswith((".crt", ".pem", ".cert")) or is_crl_key(name)


def secret_sources(params):
    """([(source label, certificates)], [(source label, CRLs)]) from the Secret named in the parameters."""
    name, namespace = params["secret_name"], params["secret_namespace"]
    kube_validation.validate_object_name(name, "secret_name")
    kube_validation.validate_namespace_name(namespace, "secret_namespace")
    client = kube.KubeClient(kube_connection.ConnectionSettings.from_params(params))
    try:
        secret = client.get(kube.SECRET, name, namespace)
    finally:
        client.close()
    if secret is None:
        raise PkiError("secret_name", "secret_name %s does not exist in namespace %s; check the name and secret_namespace." % (name, namespace))
    data = secret.get("data") or {}
    wanted = params["secret_keys"] or sorted(key for key in data if default_secret_key(key))
    if not wanted:
        raise PkiError(
            "secret_keys",
            "secret_keys: Secret %s/%s has no certificate-looking keys (%s); name the "
            "keys to read in secret_keys." % (namespace, name, ", ".join(sorted(data)) or "no data"),
        )
    sources, crl_sources = [], []
    for key in wanted:
        field = "secret_keys"
        if key not in data:
            raise PkiError(
                field, "secret_keys entry %r is not a key of Secret %s/%s (it has %s); fix secret_keys." % (key, namespace, name, ", ".join(sorted(data)))
            )
        try:
            pem = base64.b64decode(data[key], validate=True)
        except (binascii.Error, ValueError, TypeError):
            raise PkiError(field, "secret_keys entry %r of Secret %s/%s is not valid base64; fix the Secret." % (key, namespace, name))
        label = "secret/%s/%s/%s" % (namespace, name, key)
        try:
            if is_crl_key(key):
                crl_sources.append((label, crl_utils.load_crls(pem, "secret_keys entry %r" % key)))
                continue
            certs = load_certificates(pem, "secret_keys entry %r" % key)
        except PkiError as exc:
            raise PkiError(field, str(exc))
        sources.append((label, certs))
    return sources, crl_sources


def describe(cert, now, renew_before, intermediates, roots):
    """The summary of one certificate with its expiry and chain state."""
    summary = certificate_summary(cert)
    seconds_left = int((cert.not_valid_after_utc - now).total_seconds())
    summary.update(
        seconds_left=seconds_left,
        days_left=seconds_left // 86400,
        expired=seconds_left <= 0,
        renewal_due=needs_renewal(cert, renew_before, now),
        chain_valid=None,
        chain_error=None,
    )
    if roots is not None:
        try:
            verify_chain(cert, intermediates, roots, "certificate", at=now)
            summary["chain_valid"] = True
        except PkiError as exc:
            summary["chain_valid"] = False
            summary["chain_error"] = str(exc)
    return summary


def usable_crls(crls):
    """{issuer name: [CRL]} of the CRLs that may decide revocation.

    A CRL whose issuer certificate we have must carry its signature (a forged CRL that
    "un-revokes" nothing is harmless, but a forged one listing a healthy certificate would
    be a false alarm); without that certificate it is taken as given.
    """
    by_issuer = {}
    for crl, summary in crls:
        if summary["signature_valid"] is False:
            continue
        by_issuer.setdefault(crl.issuer, []).append(crl)
    return by_issuer


def revocation_status(cert, by_issuer):
    crls = by_issuer.get(cert.issuer)
    if not crls:
        return None, None
    for crl in crls:
        entry = crl_utils.revocation_of(crl, cert)
        if entry is not None:
            return True, entry
    return False, None


def _sources(params):
    """([(source label, certificates)], [(source label, CRLs)]) of every source given."""
    sources = []
    for index, path in enumerate(params["paths"]):
        field = "paths[%d]" % index
        sources.append((path, load_certificates(read_file(path, field), field)))
    if params["content"]:
        sources.append(("content", load_certificates(params["content"], "content")))
    crl_sources = []
    for index, path in enumerate(params["crl_paths"]):
        field = "crl_paths[%d]" % index
        crl_sources.append((path, crl_utils.load_crls(read_file(path, field), field)))
    if params["crl_content"]:
        crl_sources.append(("crl_content", crl_utils.load_crls(params["crl_content"], "crl_content")))
    if params["secret_name"]:
        secret_certs, secret_crls = secret_sources(params)
        sources.extend(secret_certs)
        crl_sources.extend(secret_crls)
    return sources, crl_sources


def _trust(params):
    """(extra intermediates, trusted roots or None when no trust bundle was given)."""
    extra_chain = []
    if params["chain_path"]:
        extra_chain = load_certificates(read_file(params["chain_path"], "chain_path"), "chain_path")
    roots = None
    if params["trust_bundle_path"] or params["trust_bundle_content"]:
        roots = []
        if params["trust_bundle_path"]:
            roots += load_certificates(read_file(params["trust_bundle_path"], "trust_bundle_path"), "trust_bundle_path")
        if params["trust_bundle_content"]:
            roots += load_certificates(params["trust_bundle_content"], "trust_bundle_content")
    return extra_chain, roots


def _crl_results(crl_sources, ca_certs, now):
    """(the summary of every CRL, [(CRL, its summary)])."""
    crl_results, parsed = [], []
    for source, crls in crl_sources:
        for index, crl in enumerate(crls):
            candidates = [cert for cert in ca_certs if cert.subject == crl.issuer]
            summary = crl_utils.summary(crl, now, issuer_certs=candidates)
            summary.update(source=source, index=index)
            crl_results.append(summary)
            parsed.append((crl, summary))
    return crl_results, parsed


def run_module(module):
    """Reads every source of ``module.params`` and describes it; changes nothing."""
    check_cryptography()
    params = module.params
    if not params["paths"] and not params["content"] and not params["secret_name"] and not params["crl_paths"] and not params["crl_content"]:
        raise PkiError("paths", "paths, content, crl_paths, crl_content or secret_name is required; give certificates or CRLs to inspect.")
    renew_before = parse_renew_before(params["renew_before"], "renew_before")
    sources, crl_sources = _sources(params)
    extra_chain, roots = _trust(params)
    now = utcnow()
    # Every CA certificate the module was given may have signed a CRL.
    ca_certs = [cert for cert in (roots or []) + extra_chain + [c for _s, certs in sources for c in certs] if basic_constraints(cert)[0]]
    crl_results, parsed = _crl_results(crl_sources, ca_certs, now)
    by_issuer = usable_crls(parsed)
    results = []
    for source, certs in sources:
        for index, cert in enumerate(certs):
            entry = describe(cert, now, renew_before, certs[index + 1 :] + extra_chain, roots)
            entry["revoked"], entry["revocation"] = revocation_status(cert, by_issuer)
            entry.update(source=source, index=index)
            results.append(entry)
    all_valid = None if roots is None else all(entry["chain_valid"] for entry in results)
    return dict(changed=False, certificates=results, crls=crl_results, all_chains_valid=all_valid)


def argument_spec():
    spec = dict(args_kube_auth.KUBE_AUTH_SPEC)
    spec.update(
        paths=dict(type="list", elements="path", default=[]),
        content=dict(type="str"),
        chain_path=dict(type="path"),
        trust_bundle_path=dict(type="path"),
        trust_bundle_content=dict(type="str"),
        renew_before=dict(type="str"),
        crl_paths=dict(type="list", elements="path", default=[]),
        crl_content=dict(type="str"),
        secret_name=dict(type="str"),
        secret_namespace=dict(type="str", default="default", no_log=False),
        secret_keys=dict(type="list", elements="str", default=[], no_log=False),
    )
    return spec


VALIDATION_RULES = {}

# Bad input, unreadable sources and API errors (errors.MtlsError, KubeError among them): one sentence each.
KNOWN_ERRORS = backend_results.KNOWN_ERRORS
failure_result, unexpected_failure_result = backend_results.failure_results("mtls_cert_info")
