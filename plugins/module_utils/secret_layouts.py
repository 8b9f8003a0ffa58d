# -*- coding: utf-8 -*-
# Copyright: zerotrust.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Secret layouts: which keys a consumer expects, built from PEM material and checked.

Pure helpers for the mtls_secret module: no Kubernetes and no AnsibleModule here. The
material is checked before any Secret is written: the key must match its certificate and
the certificate must chain to the CA that is delivered with it, so that a workload never
loads a pair it cannot use.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.zerotrust.mtls.plugins.module_utils import crl as crl_utils
from ansible_collections.zerotrust.mtls.plugins.module_utils.errors import MtlsError
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki import (
    PkiError,
    _utcnow,
    basic_constraints,
    is_encrypted_pem,
    iso8601,
    key_fingerprint,
    key_matches_certificate,
    load_certificates,
    load_private_key,
    private_key_pem,
    sha256_fingerprint,
    verify_chain,
)

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
except ImportError:  # pragma: no cover - pki.py reports the missing library first
    x509 = None
    serialization = None


SECRET_TYPE_TLS = "kubernetes.io/tls"
SECRET_TYPE_OPAQUE = "Opaque"

# role of every key: "certs" (PEM certificates, fingerprinted in diffs), "key" (a private
# key: only its public fingerprint may ever be shown), "crl", "opaque".
LAYOUTS = {
    # Ingress controllers, Gateway API and cert-manager: leaf + intermediates in tls.crt.
    "tls": {"type": SECRET_TYPE_TLS, "keys": {"tls.crt": "certs", "tls.key": "key", "ca.crt": "certs"}},
    # Istio's plugged-in CA ("cacerts" in istio-system).
    "istio_cacerts": {
        "type": SECRET_TYPE_OPAQUE,
        "keys": {"ca-cert.pem": "certs", "ca-key.pem": "key", "cert-chain.pem": "certs", "root-cert.pem": "certs", "ca-crl.pem": "crl"},
    },
    # trust bundles only: ca.crt may hold several roots during a rotation.
    "ca_bundle": {"type": SECRET_TYPE_OPAQUE, "keys": {"ca.crt": "certs", "ca.crl": "crl"}},
    # SPIRE's disk UpstreamAuthority: cert_file_path -> tls.crt (upstream CA + its
    # intermediates), key_file_path -> tls.key, bundle_file_path -> bundle.crt (roots).
    "spire_upstream": {"type": SECRET_TYPE_OPAQUE, "keys": {"tls.crt": "certs", "tls.key": "key", "bundle.crt": "certs"}},
    "generic": {"type": SECRET_TYPE_OPAQUE, "keys": {}},
}

# Every Secret key that holds certificates in some layout, in LAYOUTS order: the one list
# the audit reads (the exporter and the cert_exporter role keep their own copies, proven
# equal to it by tests/estate/test_exporter_agreement.py, since they ship apart from the
# collection's Python).
CERTIFICATE_KEYS = tuple(dict.fromkeys(key for layout in LAYOUTS.values() for key, role in layout["keys"].items() if role == "certs"))
# The keys whose certificates are the trusted roots a consumer is given (tls, ca_bundle:
# ca.crt; istio_cacerts: root-cert.pem; spire_upstream: bundle.crt).
ROOT_BUNDLE_KEYS = ("ca.crt", "root-cert.pem", "bundle.crt")

# which source options each layout needs, and which it may use
REQUIRED_SOURCES = {
    "tls": ("cert", "key"),
    "istio_cacerts": ("cert", "key", "ca"),
    "ca_bundle": ("ca",),
    "spire_upstream": ("cert", "key", "ca"),
    "generic": ("data",),
}
ALLOWED_SOURCES = {
    "tls": ("cert", "key", "chain", "ca"),
    "istio_cacerts": ("cert", "key", "chain", "ca", "crl"),
    "ca_bundle": ("ca", "crl"),
    "spire_upstream": ("cert", "key", "chain", "ca"),
    "generic": ("data",),
}


class SecretLayoutError(MtlsError):
    """Bad material for a layout; str() is one sentence naming the field."""


class Material(object):
    """Source bytes per role, with the option name each came from (for messages)."""

    def __init__(self):
        self._values = {}
        self._fields = {}

    def add(self, role, value, field):
        if value is not None:
            self._values[role] = value
            self._fields[role] = field

    def has(self, role):
        return role in self._values

    def get(self, role):
        return self._values.get(role)

    def field(self, role):
        return self._fields.get(role, role + "_path")

    def roles(self):
        return set(self._values)

    def unlock_key(self, passphrase, passphrase_field):
        """Replace an encrypted key by its unencrypted PKCS#8 form, in memory.

        Consumers read the Secret's key as it is, so it must arrive unencrypted; the file it
        came from stays encrypted at rest. A plain key is left as it is.
        """
        pem = self._values.get("key")
        if pem is None or not is_encrypted_pem(pem):
            return
        field = self.field("key")
        if not passphrase:
            raise SecretLayoutError("%s is encrypted; give its passphrase in %s." % (field, passphrase_field), field=passphrase_field)
        try:
            key = load_private_key(pem, field, passphrase, passphrase_field=passphrase_field)
        except PkiError as error:
            raise SecretLayoutError(str(error), field=getattr(error, "field", None) or passphrase_field)
        self._values["key"] = private_key_pem(key)


def check_sources(layout, material):
    """Refuse missing and unexpected sources before anything is parsed."""
    if layout not in LAYOUTS:
        raise SecretLayoutError("layout %s is unknown; use one of %s." % (layout, ", ".join(sorted(LAYOUTS))), field="layout")
    for role in REQUIRED_SOURCES[layout]:
        if not material.has(role):
            if role == "data":
                raise SecretLayoutError("layout generic needs data (a map of key to content); set data.", field="data")
            raise SecretLayoutError("layout %s needs %s_path or %s_content; set one of them." % (layout, role, role), field=role + "_path")
    for role in sorted(material.roles()):
        if role not in ALLOWED_SOURCES[layout]:
            raise SecretLayoutError(
                "%s is not used by layout %s; remove it or choose a layout that carries it (%s)." % (material.field(role), layout, _layouts_with(role)),
                field=material.field(role),
            )


def _layouts_with(role):
    return ", ".join(sorted(name for name, allowed in ALLOWED_SOURCES.items() if role in allowed))


def _pem(certs):
    return b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in certs)


def _normalized(data):
    data = data.strip()
    return data + b"\n" if data else data


def _certs(material, role):
    try:
        certs = load_certificates(material.get(role), material.field(role))
    except PkiError as error:
        raise SecretLayoutError(str(error), field=getattr(error, "field", None) or material.field(role))
    if not certs:
        raise SecretLayoutError("%s holds no PEM certificate; give it the certificate file in PEM form." % material.field(role), field=material.field(role))
    return certs


def _is_self_signed(cert):
    return cert.issuer == cert.subject


def _check_order(certs, field):
    for child, parent in zip(certs, certs[1:]):
        if child.issuer != parent.subject:
            raise SecretLayoutError(
                "%s is not in order: %s is followed by %s instead of its issuer; list the "
                "leaf first, then each issuer." % (field, child.subject.rfc4514_string(), parent.subject.rfc4514_string()),
                field=field,
            )


def _validate_pair(material, leaf, intermediates, roots, leaf_must_be_ca):
    """Key matches the certificate and the certificate chains to the delivered roots."""
    try:
        key = load_private_key(material.get("key"), material.field("key"))
    except PkiError as error:
        raise SecretLayoutError(str(error), field=getattr(error, "field", None) or material.field("key"))
    if not key_matches_certificate(key, leaf):
        raise SecretLayoutError(
            "%s does not match the certificate in %s (key %s); give the key that was "
            "issued with that certificate." % (material.field("key"), material.field("cert"), key_fingerprint(key)),
            field=material.field("key"),
        )
    if leaf_must_be_ca and not basic_constraints(leaf)[0]:
        raise SecretLayoutError(
            "%s is not a CA certificate (basicConstraints CA:TRUE is missing); this layout "
            "carries an intermediate CA, issue one with mtls_ca." % material.field("cert"),
            field=material.field("cert"),
        )
    if roots is not None:
        try:
            verify_chain(leaf, intermediates, roots, material.field("chain") if material.has("chain") else material.field("cert"))
        except PkiError as error:
            raise SecretLayoutError(str(error), field=getattr(error, "field", None) or material.field("cert"))


def _chain_without(leaf, chain):
    return [cert for cert in chain if cert != leaf]


def build_secret_data(layout, material):
    """The Secret's data (key -> bytes) for ``layout``, after every check passed.

    Raises SecretLayoutError with one sentence naming the offending field.
    """
    check_sources(layout, material)
    if layout == "generic":
        return _generic_data(material)

    data = {}
    roots = _certs(material, "ca") if material.has("ca") else None
    # The CAs a CRL in this Secret may come from, and those that must each have one.
    crl_issuers = crl_required = list(roots or [])
    if layout == "ca_bundle":
        data["ca.crt"] = _pem(roots)
    else:
        cert_certs = _certs(material, "cert")
        leaf = cert_certs[0]
        # Intermediates may arrive appended to the certificate file or in chain_path.
        intermediates = _chain_without(leaf, cert_certs[1:] + (_certs(material, "chain") if material.has("chain") else []))
        # A chain file that ends in the root is common (mtls_ca's chain_path): the root
        # belongs to the trust bundle, not to the presented chain.
        presented = [cert for cert in intermediates if not _is_self_signed(cert)]
        _check_order([leaf] + presented, material.field("chain") if material.has("chain") else material.field("cert"))
        _validate_pair(material, leaf, presented, roots, leaf_must_be_ca=layout in ("istio_cacerts", "spire_upstream"))
        if layout == "tls":
            data["tls.crt"] = _pem([leaf] + presented)
            data["tls.key"] = _normalized(material.get("key"))
            if roots is not None:
                data["ca.crt"] = _pem(_issuing_root_first([leaf] + presented, roots))
        elif layout == "istio_cacerts":
            issuing_root = _issuing_root([leaf] + presented, roots)
            data["ca-cert.pem"] = _pem([leaf])
            data["ca-key.pem"] = _normalized(material.get("key"))
            # Istio wants the chain from its CA up to and including the root.
            data["cert-chain.pem"] = _pem([leaf] + presented + ([issuing_root] if issuing_root else []))
            data["root-cert.pem"] = _pem(roots)
            # Istio's own chain needs a CRL of each CA on it; other roots of a rotation do not.
            crl_issuers = [leaf] + presented + list(roots)
            crl_required = [leaf] + presented + ([issuing_root] if issuing_root else [])
        elif layout == "spire_upstream":
            data["tls.crt"] = _pem([leaf] + presented)
            data["tls.key"] = _normalized(material.get("key"))
            data["bundle.crt"] = _pem(roots)
    if material.has("crl"):
        crl_key = "ca-crl.pem" if layout == "istio_cacerts" else "ca.crl"
        data[crl_key] = _checked_crl(material, crl_issuers, crl_required)
    return data


def _issuing_root_first(chain, roots):
    """``roots`` with the one that issued ``chain`` first. cert-manager's CA issuer builds its
    chain from tls.crt and the first certificate of ca.crt alone, and refuses to sign when
    that is another root (during a root rotation ca.crt holds the old and the new root)."""
    issuing = _issuing_root(chain, roots)
    return ([issuing] if issuing is not None else []) + [root for root in roots if root != issuing]


def _issuing_root(chain, roots):
    top = chain[-1]
    if _is_self_signed(top):
        return None
    for root in roots or []:
        if root.subject == top.issuer:
            return root
    return None


def _checked_crl(material, issuers, required, now=None):
    """The CRL blob, after checking it against the CAs delivered with it.

    Each CRL must be signed by one of ``issuers`` and not be past its nextUpdate, and every
    CA in ``required`` must have one: nginx (ssl_crl sets CRL_CHECK_ALL) and Envoy refuse
    every certificate of a chain in which one CA has no CRL, and every certificate of a CA
    whose CRL is stale, so such a Secret would lock every client out.
    """
    field = material.field("crl")
    raw = _normalized(material.get("crl"))
    if b"-----BEGIN" not in raw:
        try:
            x509.load_der_x509_crl(material.get("crl"))
        except ValueError:
            raise SecretLayoutError("%s is not a PEM certificate revocation list; give the CRL in PEM form." % field, field=field)
        raise SecretLayoutError("%s is a DER CRL; convert it to PEM (openssl crl -inform DER -outform PEM)." % field, field=field)
    try:
        crls = crl_utils.load_crls(raw, field)
    except PkiError:
        raise SecretLayoutError("%s is not a PEM certificate revocation list; give the CRL in PEM form." % field, field=field)
    now = now or _utcnow()
    covered = set()
    for crl in crls:
        named = [ca for ca in issuers if ca.subject == crl.issuer]
        if not named:
            raise SecretLayoutError(
                "%s holds a CRL issued by %s, which is not a CA delivered in this Secret; deliver "
                "each CRL with the CA that signed it." % (field, crl.issuer.rfc4514_string()),
                field=field,
            )
        signers = [ca for ca in named if crl_utils.signed_by(crl, ca)]
        if not signers:
            raise SecretLayoutError(
                "%s holds a CRL of %s whose signature does not verify with the key of that CA "
                "(another CA of the same name, or a re-keyed CA); re-sign it with mtls_crl." % (field, crl.issuer.rfc4514_string()),
                field=field,
            )
        next_update = crl.next_update_utc
        if next_update is not None and next_update <= now:
            raise SecretLayoutError(
                "%s holds a CRL of %s that passed its nextUpdate on %s, so every certificate of "
                "that CA would be refused; refresh it with mtls_crl before delivering it." % (field, crl.issuer.rfc4514_string(), iso8601(next_update)),
                field=field,
            )
        covered.update(sha256_fingerprint(ca) for ca in signers)
    for ca in required:
        if basic_constraints(ca)[0] and sha256_fingerprint(ca) not in covered:
            raise SecretLayoutError(
                "%s has no CRL of %s, a CA delivered in this Secret; nginx and Envoy then refuse "
                "every certificate below it, so add that CA's CRL (mtls_crl) to %s." % (field, ca.subject.rfc4514_string(), field),
                field=field,
            )
    return raw


_KEY_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


def _generic_data(material):
    data = {}
    for key, value in sorted((material.get("data") or {}).items()):
        if not key or not set(key) <= _KEY_NAME_CHARS or key in (".", ".."):
            raise SecretLayoutError("data key %r is not a valid Secret key; use letters, digits, '-', '_' and '.'." % key, field="data")
        if value is None:
            raise SecretLayoutError("data.%s has no value; give it a string or remove it." % key, field="data")
        data[key] = value if isinstance(value, bytes) else str(value).encode("utf-8")
    if not data:
        raise SecretLayoutError("data is empty; give at least one key.", field="data")
    return data
