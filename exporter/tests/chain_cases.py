"""Certificate chains on which the exporter's chain check and the collection's verify_chain
(plugins/module_utils, pki.verify_chain) must agree, built here with `cryptography`.

`valid` is what verify_chain says of each case. test_chain_rules.py checks that the
exporter says the same; tests/estate/test_exporter_agreement.py checks verify_chain
still does. The invalid cases marked `old_check_accepted` got mtls_cert_chain_valid 1
while the exporter checked signatures and issuer dates only.
"""

from __future__ import annotations

import datetime
import time
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

from mtls_exporter import certs, chains

UTC = datetime.timezone.utc
_SIGNING_CA = dict(content_commitment=False, key_encipherment=False, data_encipherment=False, key_agreement=False, encipher_only=False, decipher_only=False)
CA_USAGE = x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, **_SIGNING_CA)
NO_CERT_SIGN = x509.KeyUsage(digital_signature=True, key_cert_sign=False, crl_sign=True, **_SIGNING_CA)
NOT_A_CA = "not a CA"  # is_ca value that leaves basicConstraints out


@dataclass
class Node:
    certificate: x509.Certificate
    key: object


def make(common_name, issuer: Node | None = None, *, is_ca=True, path_length=None, key_usage=CA_USAGE, permitted=None, sans=(), key_type="ec", hours=(-1, 720)):
    """One certificate; `issuer` None makes it self-signed. `permitted`: NameConstraints subtrees."""
    key = ed25519.Ed25519PrivateKey.generate() if key_type == "ed25519" else ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "zerotrust chain cases"), x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.certificate.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + datetime.timedelta(hours=hours[0]))
        .not_valid_after(now + datetime.timedelta(hours=hours[1]))
    )
    if is_ca is not NOT_A_CA:
        builder = builder.add_extension(x509.BasicConstraints(ca=is_ca, path_length=path_length), critical=True)
    if key_usage is not None:
        builder = builder.add_extension(key_usage, critical=True)
    if permitted:
        builder = builder.add_extension(x509.NameConstraints(permitted_subtrees=permitted, excluded_subtrees=None), critical=True)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    signer = issuer.key if issuer else key
    return Node(builder.sign(signer, None if isinstance(signer, ed25519.Ed25519PrivateKey) else hashes.SHA256()), key)


def leaf(issuer: Node, *sans, **options) -> Node:
    return make("workload", issuer, is_ca=False, key_usage=None, sans=sans or (x509.DNSName("api.example.com"),), **options)


@dataclass
class ChainCase:
    name: str
    certificate: x509.Certificate
    intermediates: list[x509.Certificate]
    root: x509.Certificate
    valid: bool
    old_check_accepted: bool = field(default=False)


def _chain(name, valid, certificate: Node, *issuers: Node, old_check_accepted=False) -> ChainCase:
    """`issuers`: the intermediates, then the root."""
    return ChainCase(name, certificate.certificate, [i.certificate for i in issuers[:-1]], issuers[-1].certificate, valid, old_check_accepted)


def build_cases() -> list[ChainCase]:
    root = make("root")
    intermediate = make("intermediate", root)
    ed_root = make("ed25519 root", key_type="ed25519")
    ed_intermediate = make("ed25519 intermediate", ed_root, key_type="ed25519")
    root0 = make("pathlen 0 root", path_length=0)
    below0 = make("intermediate below pathlen 0", root0)
    root1 = make("pathlen 1 root", path_length=1)
    first1 = make("first intermediate below pathlen 1", root1)
    second1 = make("second intermediate below pathlen 1", first1)
    dns_root = make("example.com root", permitted=[x509.DNSName("example.com")])
    spiffe = make("cluster.local intermediate", root, permitted=[x509.UniformResourceIdentifier("cluster.local")])
    not_ca = make("CA:FALSE intermediate", root, is_ca=False)
    no_constraints = make("intermediate without basicConstraints", root, is_ca=NOT_A_CA)
    no_cert_sign = make("intermediate without keyCertSign", root, key_usage=NO_CERT_SIGN)
    root_not_ca = make("CA:FALSE root", is_ca=False)
    expired = make("expired intermediate", root, hours=(-72, -1))
    impostor = make("intermediate", root)  # same name as `intermediate`, other key
    return [
        _chain("leaf, intermediate, root", True, leaf(intermediate), intermediate, root),
        _chain("Ed25519 keys throughout", True, leaf(ed_intermediate), ed_intermediate, ed_root),
        _chain("pathlen 0 root: its intermediate issues a leaf", False, leaf(below0), below0, root0, old_check_accepted=True),
        _chain("pathlen 0 root: the intermediate itself", True, below0, root0),
        _chain("pathlen 1 root: two intermediates below it", False, leaf(second1), second1, first1, root1, old_check_accepted=True),
        _chain("pathlen 1 root: one intermediate below it", True, leaf(first1), first1, root1),
        _chain("DNS name outside the root's name constraints", False, leaf(dns_root, x509.DNSName("api.example.org")), dns_root, old_check_accepted=True),
        _chain("DNS name inside the root's name constraints", True, leaf(dns_root, x509.DNSName("api.shop.example.com")), dns_root),
        _chain(
            "SPIFFE ID outside the intermediate's URI constraints",
            False,
            leaf(spiffe, x509.UniformResourceIdentifier("spiffe://evil.example/ns/shop/sa/api")),
            spiffe,
            root,
            old_check_accepted=True,
        ),
        _chain(
            "SPIFFE ID inside the intermediate's URI constraints",
            True,
            leaf(spiffe, x509.UniformResourceIdentifier("spiffe://cluster.local/ns/shop/sa/api")),
            spiffe,
            root,
        ),
        _chain("issuer with CA:FALSE", False, leaf(not_ca), not_ca, root, old_check_accepted=True),
        _chain("issuer without basicConstraints", False, leaf(no_constraints), no_constraints, root, old_check_accepted=True),
        _chain("issuer whose keyUsage lacks keyCertSign", False, leaf(no_cert_sign), no_cert_sign, root, old_check_accepted=True),
        _chain("root with CA:FALSE", False, leaf(root_not_ca), root_not_ca, old_check_accepted=True),
        _chain("expired intermediate", False, leaf(expired, hours=(-48, 24)), expired, root),
        _chain("intermediate of the same name, other key", False, leaf(intermediate), impostor, root),
    ]


def exporter_accepts(case: ChainCase) -> bool:
    """mtls_cert_chain_valid of the case's certificate, with the chain in the same object."""
    pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in [case.certificate, *case.intermediates])
    parsed = certs.parse_pem_bundle(pem)
    anchors = chains.TrustAnchors(certs.parse_pem_bundle(case.root.public_bytes(serialization.Encoding.PEM)))
    return chains.chains_to_anchor(parsed[0], parsed, anchors, time.time())
