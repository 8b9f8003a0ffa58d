"""Which keys of a Secret or ConfigMap hold certificates, and the private-key guard.

Every object that comes from the API server goes through `strip_secret` or
`strip_configmap` first: they build a new, minimal record holding only the configured
certificate keys. Everything else (tls.key, ca-key.pem, annotations such as
kubectl's last-applied-configuration, which can embed a whole Secret) is left behind
in the page or event, which is dropped right after. Values are base64-decoded only for
the certificate keys kept here; a private key value is never decoded.
"""

from __future__ import annotations

import base64
import binascii
import sys
from dataclasses import dataclass, field

SECRET_TYPE_TLS = "kubernetes.io/tls"
SECRET_TYPE_OPAQUE = "Opaque"
SECRET_TYPE_ISTIO = "istio.io/key-and-cert"

DEFAULT_SECRET_TYPES = (SECRET_TYPE_TLS, SECRET_TYPE_OPAQUE, SECRET_TYPE_ISTIO)
TLS_SECRET_KEYS = ("tls.crt", "ca.crt")
ISTIO_KEY_AND_CERT_KEYS = ("cert-chain.pem", "root-cert.pem")
# Opaque Secrets are read only at these keys: Istio `cacerts` (ca-cert.pem,
# cert-chain.pem, root-cert.pem, and its CRL ca-crl.pem) and the collection's ca_bundle
# layout (ca.crt, and its CRL ca.crl as ingress-nginx reads it).
DEFAULT_OPAQUE_SECRET_KEYS = ("ca-cert.pem", "cert-chain.pem", "root-cert.pem", "ca.crt", "tls.crt", "bundle.crt", "ca.crl", "ca-crl.pem")
# ConfigMaps: istio-ca-root-cert, kube-root-ca.crt, trust-manager bundles, and istio-ca-crl
# (the ca-crl.pem istiod distributes from cacerts).
DEFAULT_CONFIGMAP_KEYS = ("root-cert.pem", "ca.crt", "ca-bundle.crt", "trust-bundle.pem", "ca-crl.pem")

_PRIVATE_KEY_NAMES = frozenset({"tls.key", "ca-key.pem", "key.pem", "private.key", "ssh-privatekey"})
_PRIVATE_KEY_SUFFIXES = (".key", "-key.pem", "_key.pem", "key.pem", "-key", "_key", "privatekey")


def looks_like_private_key(key: str) -> bool:
    """True for data keys that conventionally hold private keys.

    Used to refuse such keys in the configuration: even if an operator lists one, the
    exporter will not read it.
    """
    lowered = key.lower()
    return lowered in _PRIVATE_KEY_NAMES or lowered.endswith(_PRIVATE_KEY_SUFFIXES)


@dataclass(frozen=True, slots=True)
class KeySelection:
    """Certificate keys to read, per Secret type, and for ConfigMaps."""

    secret_keys_by_type: dict[str, tuple[str, ...]] = field(
        default_factory=lambda: {
            SECRET_TYPE_TLS: TLS_SECRET_KEYS,
            SECRET_TYPE_OPAQUE: DEFAULT_OPAQUE_SECRET_KEYS,
            SECRET_TYPE_ISTIO: ISTIO_KEY_AND_CERT_KEYS,
        }
    )
    configmap_keys: tuple[str, ...] = DEFAULT_CONFIGMAP_KEYS

    def __post_init__(self):
        wanted = [k for keys in self.secret_keys_by_type.values() for k in keys]
        wanted += list(self.configmap_keys)
        refused = sorted({k for k in wanted if looks_like_private_key(k)})
        if refused:
            raise ValueError(f"refusing to read key(s) {', '.join(refused)}: they hold private keys, which the exporter never reads")

    def keys_for_secret_type(self, secret_type: str) -> tuple[str, ...]:
        return self.secret_keys_by_type.get(secret_type, ())


@dataclass(frozen=True, slots=True)
class StrippedObject:
    """The only part of a Secret/ConfigMap the exporter keeps: ids and certificate values."""

    kind: str  # "secret" or "configmap"
    namespace: str
    name: str
    uid: str
    resource_version: str
    values: dict[str, bytes | None]  # None: the value did not decode (base64)


def _identity(obj: dict) -> tuple[str, str, str, str]:
    metadata = obj.get("metadata") or {}
    return (
        # One copy of each namespace name, not one per object.
        sys.intern(metadata.get("namespace", "")),
        metadata.get("name", ""),
        metadata.get("uid", ""),
        metadata.get("resourceVersion", ""),
    )


def strip_secret(obj: dict, selection: KeySelection) -> StrippedObject:
    namespace, name, uid, resource_version = _identity(obj)
    wanted = selection.keys_for_secret_type(obj.get("type", SECRET_TYPE_OPAQUE))
    data = obj.get("data") or {}
    values: dict[str, bytes | None] = {}
    for key in wanted:
        encoded = data.get(key)
        if encoded is None:
            continue
        try:
            values[key] = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            values[key] = None
    return StrippedObject("secret", namespace, name, uid, resource_version, values)


def strip_configmap(obj: dict, selection: KeySelection) -> StrippedObject:
    namespace, name, uid, resource_version = _identity(obj)
    data = obj.get("data") or {}
    values: dict[str, bytes | None] = {}
    for key in selection.configmap_keys:
        text = data.get(key)
        if text is not None:
            values[key] = text.encode("utf-8")
    return StrippedObject("configmap", namespace, name, uid, resource_version, values)
