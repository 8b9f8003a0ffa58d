"""mtls_cert_chain_valid applies the rules of the collection's verify_chain: pathlen, name
constraints, CA basicConstraints, keyCertSign and issuer dates, not signatures alone."""

from __future__ import annotations

import pytest
from cryptography import x509

from chain_cases import build_cases, exporter_accepts, leaf, make
from conftest import b64, pem, secret_json
from mtls_exporter import certs, chains
from mtls_exporter.objects import KeySelection, strip_secret
from mtls_exporter.store import CertificateStore

CASES = build_cases()


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_the_exporter_judges_each_chain_as_verify_chain_does(case):
    assert exporter_accepts(case) is case.valid


def test_the_cases_cover_what_the_old_check_let_through():
    # A pathlen and a name-constraints violation at least: signatures alone accepted them.
    rejected = [case.name for case in CASES if case.old_check_accepted and not case.valid]
    assert any("pathlen" in name for name in rejected) and any("name constraints" in name for name in rejected)


def test_a_secret_whose_chain_breaks_pathlen_exports_chain_valid_0():
    root = make("pathlen 0 root", path_length=0)
    intermediate = make("intermediate", root)
    store = CertificateStore(chains.TrustAnchors(certs.parse_pem_bundle(pem(root.certificate))))
    workload = leaf(intermediate, x509.DNSName("api.shop.svc"))
    secret = secret_json("shop", "api-tls", {"tls.crt": b64(pem(workload.certificate, intermediate.certificate))})
    store.upsert(strip_secret(secret, KeySelection()), "secrets")
    (key,) = store.get("secret", "shop", "api-tls").keys
    # The intermediate itself is within pathlen 0; the leaf below it is not.
    assert key.chain_valid == (False, True)


def test_the_bundle_fingerprint_is_printed_as_the_modules_print_fingerprints():
    anchors = chains.TrustAnchors(certs.parse_pem_bundle(pem(make("root").certificate, make("other root").certificate)))
    groups = anchors.bundle_fingerprint.split(":")
    assert len(groups) == 32 and all(len(g) == 2 and g == g.upper() for g in groups)
