# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Layout building and the checks that run before any Secret is written."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible_collections.zerotrust.mtls.plugins.module_utils.secret_layouts import (
    Material,
    SecretLayoutError,
    build_secret_data,
)
from ansible_collections.zerotrust.mtls.plugins.module_utils.secret_objects import (
    decoded_data,
    secret_manifest,
    summarize_data,
    write_needed,
)

NOW = datetime.datetime.now(datetime.timezone.utc)


def _cert(common_name, key, issuer_cert=None, issuer_key=None, ca=False, days=30):
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_cert.subject if issuer_cert else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(minutes=5))
        .not_valid_after(NOW + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    return builder.sign(issuer_key or key, hashes.SHA256())


def _pem(*certs):
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def _key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


class Pki(object):
    """root -> intermediate -> leaf, plus an unrelated root."""

    def __init__(self):
        self.root_key = ec.generate_private_key(ec.SECP256R1())
        self.root = _cert("Test Root", self.root_key, ca=True, days=3650)
        self.inter_key = ec.generate_private_key(ec.SECP256R1())
        self.inter = _cert("Cluster A CA", self.inter_key, self.root, self.root_key, ca=True)
        self.leaf_key = ec.generate_private_key(ec.SECP256R1())
        self.leaf = _cert("web.shop.svc", self.leaf_key, self.inter, self.inter_key)
        self.other_key = ec.generate_private_key(ec.SECP256R1())
        self.other_root = _cert("Other Root", self.other_key, ca=True)


@pytest.fixture(scope="module")
def pki():
    return Pki()


def material(**sources):
    m = Material()
    for role, value in sources.items():
        m.add(role, value, role + "_path")
    return m


def test_tls_layout_puts_leaf_and_intermediates_in_tls_crt(pki):
    data = build_secret_data("tls", material(cert=_pem(pki.leaf), key=_key_pem(pki.leaf_key), chain=_pem(pki.inter), ca=_pem(pki.root)))
    assert sorted(data) == ["ca.crt", "tls.crt", "tls.key"]
    certs = x509.load_pem_x509_certificates(data["tls.crt"])
    assert [c.subject for c in certs] == [pki.leaf.subject, pki.inter.subject]
    assert x509.load_pem_x509_certificates(data["ca.crt"])[0] == pki.root


def test_tls_layout_puts_the_issuing_root_first_in_ca_crt(pki):
    # cert-manager's CA issuer appends only the first certificate of ca.crt to tls.crt and
    # refuses to sign when the chain does not link: mid-rotation ca.crt holds two roots.
    data = build_secret_data("tls", material(cert=_pem(pki.inter), key=_key_pem(pki.inter_key), ca=_pem(pki.other_root, pki.root)))
    assert x509.load_pem_x509_certificates(data["ca.crt"]) == [pki.root, pki.other_root]


def test_tls_layout_without_ca_has_no_ca_crt(pki):
    data = build_secret_data("tls", material(cert=_pem(pki.leaf, pki.inter), key=_key_pem(pki.leaf_key)))
    assert sorted(data) == ["tls.crt", "tls.key"]


def test_root_at_end_of_chain_moves_to_the_bundle(pki):
    data = build_secret_data("tls", material(cert=_pem(pki.leaf), key=_key_pem(pki.leaf_key), chain=_pem(pki.inter, pki.root), ca=_pem(pki.root)))
    assert len(x509.load_pem_x509_certificates(data["tls.crt"])) == 2


def test_istio_cacerts_layout(pki):
    data = build_secret_data("istio_cacerts", material(cert=_pem(pki.inter), key=_key_pem(pki.inter_key), ca=_pem(pki.root, pki.other_root)))
    assert sorted(data) == ["ca-cert.pem", "ca-key.pem", "cert-chain.pem", "root-cert.pem"]
    chain = x509.load_pem_x509_certificates(data["cert-chain.pem"])
    # ca-cert first, then its issuer: the root that signed it, not the other one
    assert chain == [pki.inter, pki.root]
    assert len(x509.load_pem_x509_certificates(data["root-cert.pem"])) == 2


def test_istio_cacerts_refuses_a_leaf_as_ca(pki):
    with pytest.raises(SecretLayoutError) as error:
        build_secret_data("istio_cacerts", material(cert=_pem(pki.leaf), key=_key_pem(pki.leaf_key), chain=_pem(pki.inter), ca=_pem(pki.root)))
    assert "cert_path is not a CA certificate" in str(error.value)


def test_key_that_does_not_match_is_refused_without_key_bytes(pki):
    with pytest.raises(SecretLayoutError) as error:
        build_secret_data("tls", material(cert=_pem(pki.leaf), key=_key_pem(pki.other_key)))
    message = str(error.value)
    assert message.startswith("key_path does not match the certificate in cert_path")
    assert "PRIVATE KEY" not in message
    assert error.value.field == "key_path"


def test_chain_that_does_not_verify_to_the_ca_is_refused(pki):
    with pytest.raises(SecretLayoutError) as error:
        build_secret_data("tls", material(cert=_pem(pki.leaf), key=_key_pem(pki.leaf_key), chain=_pem(pki.inter), ca=_pem(pki.other_root)))
    assert "does not verify" in str(error.value)


def test_chain_out_of_order_is_refused(pki):
    third_key = ec.generate_private_key(ec.SECP256R1())
    sub = _cert("Sub CA", third_key, pki.inter, pki.inter_key, ca=True)
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = _cert("api", leaf_key, sub, third_key)
    with pytest.raises(SecretLayoutError) as error:
        build_secret_data("tls", material(cert=_pem(leaf), key=_key_pem(leaf_key), chain=_pem(pki.inter, sub), ca=_pem(pki.root)))
    assert "chain_path is not in order" in str(error.value)


@pytest.mark.parametrize(
    "layout, sources, fragment",
    [
        ("tls", {"cert": None}, "layout tls needs key_path or key_content"),
        ("istio_cacerts", {"cert": None, "key": None}, "layout istio_cacerts needs ca_path"),
        ("ca_bundle", {}, "layout ca_bundle needs ca_path"),
        ("generic", {}, "layout generic needs data"),
        ("ca_bundle", {"ca": None, "key": None}, "key_path is not used by layout ca_bundle"),
        ("tls", {"cert": None, "key": None, "crl": None}, "crl_path is not used by layout tls"),
        ("nonsense", {}, "layout nonsense is unknown"),
    ],
)
def test_sources_are_checked_per_layout(pki, layout, sources, fragment):
    filled = dict((role, _pem(pki.root)) for role in sources)
    with pytest.raises(SecretLayoutError) as error:
        build_secret_data(layout, material(**filled))
    assert fragment in str(error.value)


def test_garbage_certificate_names_the_field(pki):
    with pytest.raises(SecretLayoutError) as error:
        build_secret_data("ca_bundle", material(ca=b"not a certificate"))
    assert str(error.value).startswith("ca_path")


def test_ca_bundle_keeps_every_root(pki):
    data = build_secret_data("ca_bundle", material(ca=_pem(pki.root, pki.other_root)))
    assert x509.load_pem_x509_certificates(data["ca.crt"]) == [pki.root, pki.other_root]


def test_spire_upstream_layout(pki):
    data = build_secret_data("spire_upstream", material(cert=_pem(pki.inter), key=_key_pem(pki.inter_key), ca=_pem(pki.root)))
    assert sorted(data) == ["bundle.crt", "tls.crt", "tls.key"]
    assert x509.load_pem_x509_certificates(data["bundle.crt"]) == [pki.root]


def test_generic_layout_and_key_names():
    m = Material()
    m.add("data", {"token": "abc", "config.yaml": "a: 1"}, "data")
    assert build_secret_data("generic", m) == {"token": b"abc", "config.yaml": b"a: 1"}
    bad = Material()
    bad.add("data", {"no/slash": "x"}, "data")
    with pytest.raises(SecretLayoutError) as error:
        build_secret_data("generic", bad)
    assert "data key 'no/slash' is not a valid Secret key" in str(error.value)


def test_summary_shows_fingerprints_and_never_key_bytes(pki):
    key_pem = _key_pem(pki.leaf_key)
    data = build_secret_data("tls", material(cert=_pem(pki.leaf), key=key_pem, ca=_pem(pki.inter)))
    summary = summarize_data("tls", data)
    assert summary["tls.key"].startswith("sha256:")
    assert len(summary["tls.crt"]) == 1 and summary["tls.crt"][0].count(":") == 31
    assert key_pem.decode() not in repr(summary)
    assert base64.b64encode(key_pem).decode() not in repr(summary)


def test_manifest_is_base64_and_typed(pki):
    manifest = secret_manifest("web", "shop", "tls", {"tls.crt": b"x", "tls.key": b"y"}, {"a": "b"}, None)
    assert manifest["type"] == "kubernetes.io/tls"
    assert manifest["data"] == {"tls.crt": "eA==", "tls.key": "eQ=="}
    assert manifest["metadata"] == {"name": "web", "namespace": "shop", "labels": {"a": "b"}}
    assert decoded_data(manifest) == {"tls.crt": b"x", "tls.key": b"y"}
    assert secret_manifest("b", "n", "ca_bundle", {"ca.crt": b"z"})["type"] == "Opaque"


def _existing(manifest, owned_labels=(), owned_data=(), extra_data=None):
    existing = {"type": manifest["type"], "data": dict(manifest["data"], **(extra_data or {})), "metadata": dict(manifest["metadata"])}
    return existing, {"f:data": dict(("f:" + k, {}) for k in owned_data), "f:metadata": {"f:labels": dict(("f:" + k, {}) for k in owned_labels)}}


def test_write_needed_decisions():
    desired = secret_manifest("web", "shop", "tls", {"tls.crt": b"x", "tls.key": b"y"}, {"team": "a"})
    assert write_needed(None, desired, {}) == "created"
    same, owned = _existing(desired, ["team"], ["tls.crt", "tls.key"])
    assert write_needed(same, desired, owned) is None
    # another manager's extra key is left alone by server-side apply: not a change
    extra, owned = _existing(desired, ["team"], ["tls.crt", "tls.key"], {"other": "eg=="})
    assert write_needed(extra, desired, owned) is None
    changed = dict(same, data={"tls.crt": "eg==", "tls.key": "eQ=="})
    assert write_needed(changed, desired, owned) == "data"
    # a label we set earlier and no longer declare must be removed
    dropped, owned = _existing(desired, ["team", "old"], ["tls.crt", "tls.key"])
    assert write_needed(dropped, desired, owned) == "labels"
    relabelled = dict(same, metadata=dict(same["metadata"], labels={"team": "b"}))
    assert write_needed(relabelled, desired, owned) == "labels"
    retyped = dict(same, type="Opaque")
    assert write_needed(retyped, desired, owned) == "type"


# ------------------------------------------------------------------ encrypted keys at rest


def _encrypted_key_pem(key, passphrase):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(passphrase.encode()))


def test_encrypted_key_is_delivered_unencrypted_and_identical_to_the_plain_form(pki):
    m = material(cert=_pem(pki.inter), key=_encrypted_key_pem(pki.inter_key, "intermediate pass"), ca=_pem(pki.root))
    m.unlock_key("intermediate pass", "key_passphrase")
    data = build_secret_data("istio_cacerts", m)
    # Byte for byte what a plain key file gives: converting the file at rest does not
    # change the Secret, so consumers see no update.
    assert data["ca-key.pem"] == _key_pem(pki.inter_key)
    assert b"ENCRYPTED" not in data["ca-key.pem"]


def test_plain_key_with_a_passphrase_is_delivered_as_it_is(pki):
    m = material(cert=_pem(pki.leaf), key=_key_pem(pki.leaf_key), chain=_pem(pki.inter), ca=_pem(pki.root))
    m.unlock_key("not used", "key_passphrase")
    assert build_secret_data("tls", m)["tls.key"] == _key_pem(pki.leaf_key)


@pytest.mark.parametrize(
    "passphrase, fragment",
    [
        (None, "key_path is encrypted; give its passphrase in key_passphrase."),
        ("", "key_path is encrypted; give its passphrase in key_passphrase."),
        ("wrong passphrase", "key_path cannot be decrypted with the given passphrase (key_passphrase)"),
    ],
)
def test_encrypted_key_without_the_right_passphrase_names_the_option(pki, passphrase, fragment):
    m = material(cert=_pem(pki.inter), key=_encrypted_key_pem(pki.inter_key, "intermediate pass"))
    with pytest.raises(SecretLayoutError) as error:
        m.unlock_key(passphrase, "key_passphrase")
    assert str(error.value).startswith(fragment)
    assert error.value.field == "key_passphrase"
    assert "PRIVATE KEY" not in str(error.value)


# ---------------------------------------------------------------------------- CRLs


def _crl(cert, key, revoked=(), days=7, ago=1):
    from ansible_collections.zerotrust.mtls.plugins.module_utils import crl as crl_utils
    from ansible_collections.zerotrust.mtls.plugins.module_utils import pki as pki_utils

    issuer = pki_utils.Issuer(cert, key)
    now = NOW.replace(microsecond=0)
    entries = dict((serial, ("key_compromise", now)) for serial in revoked)
    return crl_utils.crl_pem(crl_utils.build_crl(issuer, entries, 1, now - datetime.timedelta(days=ago), now + datetime.timedelta(days=days)))


def test_ca_bundle_carries_a_crl_of_every_delivered_ca(pki):
    crl = _crl(pki.root, pki.root_key) + _crl(pki.inter, pki.inter_key, [pki.leaf.serial_number])
    data = build_secret_data("ca_bundle", material(ca=_pem(pki.inter, pki.root), crl=crl))
    assert data["ca.crl"] == crl and data["ca.crt"] == _pem(pki.inter, pki.root)


def test_istio_cacerts_crl_covers_its_chain_not_other_roots(pki):
    crl = _crl(pki.root, pki.root_key) + _crl(pki.inter, pki.inter_key)
    data = build_secret_data("istio_cacerts", material(cert=_pem(pki.inter), key=_key_pem(pki.inter_key), ca=_pem(pki.root, pki.other_root), crl=crl))
    assert data["ca-crl.pem"] == crl and "ca.crl" not in data


@pytest.mark.parametrize(
    "case, fragment",
    [
        ("missing root CRL", "has no CRL of CN=Test Root, a CA delivered in this Secret"),
        ("foreign CRL", "CRL issued by CN=Other Root, which is not a CA delivered in this Secret"),
        ("forged CRL", "whose signature does not verify with the key of that CA"),
        ("stale CRL", "passed its nextUpdate"),
        ("not a CRL", "is not a PEM certificate revocation list"),
    ],
)
def test_crl_refusals_name_the_field(pki, case, fragment):
    forger = ec.generate_private_key(ec.SECP256R1())
    crls = {
        "missing root CRL": _crl(pki.inter, pki.inter_key),
        "foreign CRL": _crl(pki.root, pki.root_key) + _crl(pki.inter, pki.inter_key) + _crl(pki.other_root, pki.other_key),
        "forged CRL": _crl(pki.root, pki.root_key) + _crl(pki.inter, forger),
        "stale CRL": _crl(pki.root, pki.root_key) + _crl(pki.inter, pki.inter_key, days=-1, ago=8),
        "not a CRL": b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n",
    }
    with pytest.raises(SecretLayoutError) as error:
        build_secret_data("ca_bundle", material(ca=_pem(pki.inter, pki.root), crl=crls[case]))
    assert fragment in str(error.value) and str(error.value).startswith("crl_path ")
    assert error.value.field == "crl_path"
