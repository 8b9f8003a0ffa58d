# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""mtls_cert_info against real certificates: expiry, renewal and chain validity."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import datetime

import pytest

from ansible_collections.zerotrust.mtls.plugins.module_utils import pki
from ansible_collections.zerotrust.mtls.plugins.modules import mtls_cert_info
from ansible_collections.zerotrust.mtls.tests.unit.plugins import kube_fakes, pki_cases

DAY = datetime.timedelta(days=1)


MODULE = mtls_cert_info


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    base = tmp_path_factory.mktemp("info")
    root, inter = pki_cases.ca_hierarchy("Info Root", "Info Intermediate")
    fresh = pki_cases.leaf(inter, "fresh", dns_names=["fresh.example.com"], valid_for="30d")
    # Issued 25 days ago with 30 days of life: 5 days left, inside the default renewal window.
    aging = pki_cases.leaf(inter, "aging", issued_ago=25 * DAY, uris=["spiffe://td/aging"], valid_for="30d")
    foreign_key = pki.generate_private_key()
    foreign = pki.build_ca(foreign_key, "Foreign Root", 100 * DAY)
    (base / "root.crt").write_bytes(pki.certificate_pem(root.cert))
    (base / "int.crt").write_bytes(pki.certificate_pem(inter.cert))
    (base / "fresh.full.crt").write_bytes(pki.certificates_pem([fresh, inter.cert]))
    (base / "aging.crt").write_bytes(pki.certificate_pem(aging))
    (base / "foreign.crt").write_bytes(pki.certificate_pem(foreign))
    return base


def test_reports_expiry_renewal_and_chain(chain, run):
    result = run(paths=[str(chain / "fresh.full.crt"), str(chain / "aging.crt")], chain_path=str(chain / "int.crt"), trust_bundle_path=str(chain / "root.crt"))
    assert result["changed"] is False
    fresh, inter, aging = result["certificates"]
    assert (fresh["common_name"], fresh["index"], inter["index"]) == ("fresh", 0, 1)
    assert fresh["dns_names"] == ["fresh.example.com"] and fresh["issuer"] == "CN=Info Intermediate"
    assert fresh["days_left"] in (29, 30) and fresh["renewal_due"] is False and fresh["expired"] is False
    assert inter["is_ca"] is True and inter["chain_valid"] is True
    assert aging["days_left"] in (4, 5) and aging["renewal_due"] is True and aging["uris"] == ["spiffe://td/aging"]
    assert all(entry["chain_valid"] for entry in result["certificates"]) and result["all_chains_valid"] is True


def test_renew_before_changes_the_verdict(chain, run):
    result = run(paths=[str(chain / "aging.crt")], renew_before="2d")
    assert result["certificates"][0]["renewal_due"] is False
    assert result["certificates"][0]["chain_valid"] is None and result["all_chains_valid"] is None


def test_foreign_trust_bundle_fails_the_chain(chain, run):
    result = run(content=(chain / "fresh.full.crt").read_text(), trust_bundle_content=(chain / "foreign.crt").read_text())
    entry = result["certificates"][0]
    assert entry["source"] == "content" and entry["chain_valid"] is False
    assert "does not verify" in entry["chain_error"] and result["all_chains_valid"] is False


def test_chain_missing_intermediate_fails(chain, run):
    result = run(paths=[str(chain / "aging.crt")], trust_bundle_path=str(chain / "root.crt"))
    assert result["certificates"][0]["chain_valid"] is False
    assert "missing intermediate" in result["certificates"][0]["chain_error"]


@pytest.mark.parametrize(
    "args, field",
    [
        (dict(paths=["/nonexistent.crt"]), "paths[0]"),
        (dict(content="garbage"), "content"),
        (dict(), "paths"),
        (dict(content="x", trust_bundle_content="nope"), "content"),
        (dict(paths=[], content=None, renew_before="sometime"), "paths"),
    ],
)
def test_bad_input_names_the_field(run, args, field):
    result = run(**args)
    assert result["failed"] is True and result["field"] == field
    assert result["msg"].startswith(field)


def test_garbage_trust_bundle(chain, run):
    result = run(paths=[str(chain / "aging.crt")], trust_bundle_content="nope")
    assert result["failed"] and result["field"] == "trust_bundle_content"


def _secret(namespace, name, secret_type, data):
    """A Secret as the API server returns it: bytes values of ``data`` base64-encoded, str
    values as they are (not base64 at all: decoding one would fail the run, so success
    proves it is never read)."""
    data = dict((key, base64.b64encode(value).decode() if isinstance(value, bytes) else value) for key, value in data.items())
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace}, "type": secret_type, "data": data}


class _SecretServer(kube_fakes.LoopbackApiServer):
    """Answers like the API server for the Secrets it holds (see _secret)."""

    def __init__(self, *secrets):
        self.secrets = dict(((secret["metadata"]["namespace"], secret["metadata"]["name"]), secret) for secret in secrets)
        super(_SecretServer, self).__init__()

    def answer(self, request):
        parts = request["path"].split("?")[0].strip("/").split("/")
        # api/v1/namespaces/<ns>/secrets/<name>
        key = (parts[3], parts[5]) if len(parts) == 6 else None
        if key in self.secrets:
            return 200, self.secrets[key], None
        not_found = {
            "kind": "Status",
            "status": "Failure",
            "reason": "NotFound",
            "code": 404,
            "details": {"name": parts[-1], "kind": "secrets"},
            "message": 'secrets "%s" not found' % parts[-1],
        }
        return 404, not_found, None


@pytest.fixture
def secret_server(chain):
    data = {
        "tls.crt": (chain / "fresh.full.crt").read_bytes(),
        "ca.crt": (chain / "root.crt").read_bytes(),
        "tls.key": "!!! private key material that must never be decoded !!!",
    }
    server = _SecretServer(_secret("prod", "web-tls", "kubernetes.io/tls", data))
    yield server
    server.close()


def test_secret_source_reads_certificates_but_never_the_key(chain, secret_server, run):
    result = run(secret_name="web-tls", secret_namespace="prod", host=secret_server.url, trust_bundle_path=str(chain / "root.crt"))
    sources = [(entry["source"], entry["common_name"]) for entry in result["certificates"]]
    assert sources == [
        ("secret/prod/web-tls/ca.crt", "Info Root"),
        ("secret/prod/web-tls/tls.crt", "fresh"),
        ("secret/prod/web-tls/tls.crt", "Info Intermediate"),
    ]
    assert result["all_chains_valid"] is True


def test_secret_errors_name_the_field(secret_server, run):
    missing = run(secret_name="nope", secret_namespace="prod", host=secret_server.url)
    assert missing["failed"] and missing["field"] == "secret_name" and "does not exist" in missing["msg"]
    wrong_key = run(secret_name="web-tls", secret_namespace="prod", secret_keys=["tls.pem"], host=secret_server.url)
    assert wrong_key["failed"] and wrong_key["field"] == "secret_keys" and "ca.crt, tls.crt, tls.key" in wrong_key["msg"]
    bad_name = run(secret_name="Bad_Name", host=secret_server.url)
    assert bad_name["failed"] and "secret_name" in bad_name["msg"]


# ---------------------------------------------------------------------------- CRLs


@pytest.fixture(scope="module")
def crl_chain(tmp_path_factory):
    from ansible_collections.zerotrust.mtls.plugins.module_utils import crl as crl_utils

    base = tmp_path_factory.mktemp("info_crl")
    now = pki.utcnow()
    root, inter = pki_cases.ca_hierarchy("Info CRL Root", "Info CRL Intermediate")
    revoked = pki_cases.leaf(inter, "revoked", usage="client")
    sibling = pki_cases.leaf(inter, "sibling", usage="client")
    entries = {revoked.serial_number: ("key_compromise", pki.x509_time(now - DAY))}
    fresh = crl_utils.build_crl(inter, entries, 7, now - DAY, now + 6 * DAY)
    # Past its nextUpdate: stale.
    stale = crl_utils.build_crl(inter, entries, 3, now - 8 * DAY, now - DAY)
    # Signed by the wrong key under the intermediate's name: a forgery that must not count.
    forged_key = pki.generate_private_key()
    forged = crl_utils.build_crl(_forger(inter, forged_key), {sibling.serial_number: ("key_compromise", pki.x509_time(now))}, 99, now - DAY, now + DAY)
    root_crl = crl_utils.build_crl(root, {}, 1, now - DAY, now + 6 * DAY)
    (base / "root.crt").write_bytes(pki.certificate_pem(root.cert))
    (base / "int.crt").write_bytes(pki.certificate_pem(inter.cert))
    (base / "revoked.crt").write_bytes(pki.certificate_pem(revoked))
    (base / "sibling.crt").write_bytes(pki.certificate_pem(sibling))
    (base / "edge.crl").write_bytes(crl_utils.crl_pem(root_crl) + crl_utils.crl_pem(fresh))
    (base / "stale.crl").write_bytes(crl_utils.crl_pem(stale))
    (base / "forged.crl").write_bytes(crl_utils.crl_pem(forged))
    return dict(path=base, revoked="%X" % revoked.serial_number, sibling="%X" % sibling.serial_number)


def _forger(inter, key):
    """An Issuer with the intermediate's name and key identifier but another key."""
    issuer = pki.Issuer(inter.cert, inter.key)
    issuer.key = key
    issuer.hash_algorithm = pki.signature_hash_for(key)
    return issuer


def test_crls_are_read_and_decide_revocation(crl_chain, run):
    p = crl_chain["path"]
    result = run(
        paths=[str(p / "revoked.crt"), str(p / "sibling.crt")],
        crl_paths=[str(p / "edge.crl")],
        chain_path=str(p / "int.crt"),
        trust_bundle_path=str(p / "root.crt"),
    )
    root_crl, int_crl = result["crls"]
    assert (root_crl["issuer"], root_crl["crl_number"], root_crl["revoked"]) == ("CN=Info CRL Root", 1, [])
    assert (int_crl["issuer"], int_crl["crl_number"]) == ("CN=Info CRL Intermediate", 7)
    assert int_crl["revoked"] == [crl_chain["revoked"]] and int_crl["revoked_entries"][0]["reason"] == "key_compromise"
    assert int_crl["stale"] is False and int_crl["refresh_due"] is False and int_crl["signature_valid"] is True
    assert root_crl["signature_valid"] is True and (root_crl["source"], root_crl["index"], int_crl["index"]) == (str(p / "edge.crl"), 0, 1)
    revoked, sibling = result["certificates"]
    assert revoked["revoked"] is True and revoked["revocation"]["serial"] == crl_chain["revoked"]
    assert sibling["revoked"] is False and sibling["revocation"] is None


def test_stale_crl_and_no_crl_of_the_issuer(crl_chain, run):
    p = crl_chain["path"]
    result = run(paths=[str(p / "revoked.crt"), str(p / "int.crt")], crl_paths=[str(p / "stale.crl")])
    assert result["crls"][0]["stale"] is True and result["crls"][0]["seconds_left"] < 0
    assert result["crls"][0]["refresh_due"] is True
    # The intermediate's own issuer (the root) gave no CRL: unknown, not "not revoked".
    assert result["certificates"][0]["revoked"] is True and result["certificates"][1]["revoked"] is None


def test_forged_crl_is_not_used(crl_chain, run):
    p = crl_chain["path"]
    result = run(paths=[str(p / "sibling.crt")], crl_paths=[str(p / "forged.crl")], chain_path=str(p / "int.crt"))
    assert result["crls"][0]["signature_valid"] is False
    assert result["certificates"][0]["revoked"] is None


def test_crl_only_and_bad_crl_input(crl_chain, run):
    p = crl_chain["path"]
    only = run(crl_content=(p / "stale.crl").read_text())
    assert only["certificates"] == [] and only["crls"][0]["signature_valid"] is None
    bad = run(crl_paths=[str(p / "root.crt")])
    assert bad["failed"] and bad["field"] == "crl_paths[0]" and "not a certificate revocation list" in bad["msg"]


def test_secret_crl_keys_are_read_as_crls(crl_chain, run):
    p = crl_chain["path"]
    data = {
        "ca-cert.pem": (p / "int.crt").read_bytes(),
        "root-cert.pem": (p / "root.crt").read_bytes(),
        "ca-crl.pem": (p / "edge.crl").read_bytes(),
        "ca-key.pem": "!!! never decoded !!!",
    }
    server = _SecretServer(_secret("istio-system", "cacerts", "Opaque", data))
    try:
        result = run(secret_name="cacerts", secret_namespace="istio-system", host=server.url)
    finally:
        server.close()
    assert [c["source"] for c in result["crls"]] == ["secret/istio-system/cacerts/ca-crl.pem"] * 2
    assert all(c["signature_valid"] for c in result["crls"])
    assert sorted(c["source"] for c in result["certificates"]) == ["secret/istio-system/cacerts/ca-cert.pem", "secret/istio-system/cacerts/root-cert.pem"]
    assert result["certificates"][0]["revoked"] is False
