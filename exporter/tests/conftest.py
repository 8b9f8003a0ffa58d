"""Shared fixtures: a small PKI built in the test with `cryptography`."""

from __future__ import annotations

import base64
import datetime
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

# Tests run against the source tree, whether or not the package is installed.
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

UTC = datetime.timezone.utc


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attributes.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attributes)


def certificate_builder(subject: x509.Name, issuer: x509.Name, key, not_before, not_after) -> x509.CertificateBuilder:
    """A test certificate for key's public half, with a random serial and no extensions yet."""
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )


@dataclass
class Authority:
    """A CA whose private key lives only in test memory, to sign test certificates."""

    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def issue(
        self,
        common_name: str,
        *,
        organization: str | None = "zerotrust",
        not_before: datetime.datetime | None = None,
        not_after: datetime.datetime | None = None,
        is_ca: bool = False,
    ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        now = datetime.datetime.now(UTC)
        key = ec.generate_private_key(ec.SECP256R1())
        not_before = not_before or now - datetime.timedelta(hours=1)
        not_after = not_after or now + datetime.timedelta(days=30)
        builder = certificate_builder(_name(common_name, organization), self.certificate.subject, key, not_before, not_after)
        builder = builder.add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        return builder.sign(self.key, hashes.SHA256()), key

    def intermediate(self, common_name: str) -> "Authority":
        certificate, key = self.issue(common_name, is_ca=True)
        return Authority(certificate, key)


def make_root(common_name: str, organization: str = "zerotrust") -> Authority:
    now = datetime.datetime.now(UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(common_name, organization)
    builder = certificate_builder(name, name, key, now - datetime.timedelta(days=1), now + datetime.timedelta(days=365))
    builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    return Authority(builder.sign(key, hashes.SHA256()), key)


def pem(*certificates: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


def key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def secret_json(namespace, name, data: dict[str, str], *, secret_type="kubernetes.io/tls", uid=None, rv="1", annotations=None):
    """A Secret as the API server returns it in a list page or watch event."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "namespace": namespace,
            "name": name,
            "uid": uid or f"uid-{namespace}-{name}",
            "resourceVersion": rv,
            "annotations": annotations or {},
        },
        "type": secret_type,
        "data": data,
    }


@pytest.fixture(scope="session")
def root_ca() -> Authority:
    return make_root("zerotrust test root")


@pytest.fixture(scope="session")
def foreign_ca() -> Authority:
    return make_root("somebody else's root", organization="elsewhere")


ROLE_TESTS = Path(__file__).resolve().parents[2] / "roles" / "cert_exporter" / "tests"


@pytest.fixture(scope="session")
def promtool() -> str:
    """Runs the role's rule check script (building promtool when missing); returns promtool's path.

    The script's own `promtool check rules` and `promtool test rules` must pass here too.
    """
    result = subprocess.run(["bash", str(ROLE_TESTS / "check-rules.sh")], capture_output=True, text=True, timeout=3600, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert result.stdout.count("SUCCESS") == 1 + len(list((ROLE_TESTS / "rules").glob("*.test.yml")))
    return result.stdout.strip().splitlines()[-1].split("promtool: ", 1)[1]
