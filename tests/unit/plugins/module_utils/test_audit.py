# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""audit.py: certificate rows and the mesh diagnosis, on real certificates and object dicts."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import datetime

from ansible_collections.zerotrust.mtls.plugins.module_utils import audit, pki
from ansible_collections.zerotrust.mtls.tests.unit.plugins import pki_cases

DAY = datetime.timedelta(days=1)


def _hierarchy(name):
    return pki_cases.ca_hierarchy(name + " Root", name + " Int")


def _leaf(inter, days, issued_ago=None):
    return pki_cases.leaf(inter, "web", issued_ago=issued_ago, dns_names=["web.example.com"], valid_for="%dd" % days)


def test_rows_report_days_chain_and_due():
    root, inter = _hierarchy("A")
    other_root, _unused = _hierarchy("B")
    now = pki.utcnow()
    fresh = pki.certificates_pem([_leaf(inter, 30), inter.cert])
    short = pki.certificate_pem(_leaf(inter, 30, issued_ago=25 * DAY))
    (row,) = audit.inspect_pem("fresh.crt", fresh, [root.cert], [], 14 * 86400, now)
    assert row["chain_valid"] is True and row["due"] is False and row["days_left"] in (29, 30)
    (row,) = audit.inspect_pem("short.crt", short, [root.cert], [inter.cert], 14 * 86400, now)
    assert row["chain_valid"] is True and row["due"] is True and row["days_left"] in (4, 5)
    (row,) = audit.inspect_pem("foreign.crt", fresh, [other_root.cert], [], 14 * 86400, now)
    assert row["chain_valid"] is False and row["due"] is True and row["chain_error"]
    (row,) = audit.inspect_pem("junk.crt", b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n", [root.cert], [], 0, now)
    assert row["due"] is True and row["error"]
    lines = audit.table(audit.inspect_pem("fresh.crt", fresh, [root.cert], [], 0, now))
    assert lines[0].startswith("DAYS") and "fresh.crt" in lines[1] and " ok " in lines[1]


def test_secret_keys_holding_private_keys_are_never_read():
    root, _unused = _hierarchy("S")
    pem = pki.certificate_pem(root.cert)
    secret = {
        "kind": "Secret",
        "metadata": {"namespace": "ns", "name": "cacerts"},
        "data": {"root-cert.pem": base64.b64encode(pem).decode(), "ca-key.pem": "c2VjcmV0", "tls.key": "eA=="},
    }
    found = audit.secret_certificates(secret)
    assert found == [("Secret/ns/cacerts[root-cert.pem]", pem)]


def _pa(namespace, mode, selector=None):
    spec = {"mtls": {"mode": mode}}
    if selector:
        spec["selector"] = {"matchLabels": selector}
    return {"metadata": {"namespace": namespace, "name": "default"}, "spec": spec}


def test_effective_modes_follow_istio_precedence():
    modes = audit.effective_modes([_pa("istio-system", "STRICT"), _pa("legacy", "PERMISSIVE"), _pa("app", "DISABLE", selector={"app": "x"})], ["app", "legacy"])
    assert modes["app"][0] == "STRICT" and modes["app"][1].startswith("mesh")
    assert modes["legacy"] == ("PERMISSIVE", "namespace (default)")
    assert audit.effective_modes([], ["app"])["app"] == ("PERMISSIVE", "Istio default")


def test_diagnosis_finds_the_three_contradictions():
    root_a, _unused = _hierarchy("A")
    root_b, _unused = _hierarchy("B")
    rules = [
        {"metadata": {"namespace": "shop", "name": "plain"}, "spec": {"host": "api.pay.svc.cluster.local", "trafficPolicy": {"tls": {"mode": "DISABLE"}}}},
        {"metadata": {"namespace": "shop", "name": "fine"}, "spec": {"host": "api.pay.svc.cluster.local", "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}}},
        {
            "metadata": {"namespace": "shop", "name": "local-plain"},
            "spec": {"host": "cart", "trafficPolicy": {"portLevelSettings": [{"tls": {"mode": "DISABLE"}}]}},
        },
    ]
    pods = [
        {"metadata": {"namespace": "pay", "name": "api-1"}, "spec": {"containers": [{"name": "api"}, {"name": "istio-proxy"}]}},
        {"metadata": {"namespace": "pay", "name": "batch-1"}, "spec": {"containers": [{"name": "batch"}]}},
        {"metadata": {"namespace": "pay", "name": "done-1"}, "spec": {"containers": [{"name": "x"}]}, "status": {"phase": "Succeeded"}},
        {"metadata": {"namespace": "shop", "name": "web-1"}, "spec": {"containers": [{"name": "web"}]}},
    ]
    bundles = {"pay": pki.certificate_pem(root_a.cert), "shop": pki.certificate_pem(root_a.cert), "legacy": pki.certificates_pem([root_a.cert, root_b.cert])}
    result = audit.diagnose_mesh(["pay", "shop", "legacy"], [_pa("pay", "STRICT")], rules, pods, bundles)
    problems = result["problems"]
    assert len(problems) == 3, problems
    assert problems[0].startswith(
        "DestinationRule shop/plain sends plaintext (tls mode DISABLE) to api.pay.svc.cluster.local in namespace pay, which is STRICT"
    )
    assert problems[1].startswith("Namespace pay is STRICT but pod(s) batch-1 have no sidecar")
    fingerprint_a = pki.sha256_fingerprint(root_a.cert)[:11]
    assert "Trust bundles differ between namespaces: legacy (root " in problems[2]
    assert "pay, shop (root %s)" % fingerprint_a in problems[2]
    assert problems[2].split(": ", 1)[1].split(";")[0].count("root ") == 2, "legacy holds two roots"
    assert result["namespaces"]["shop"]["destination_rules"] == {"plain": ["DISABLE"], "fine": ["ISTIO_MUTUAL"], "local-plain": ["DISABLE"]}
    assert result["namespaces"]["shop"]["pods_without_sidecar"] == ["web-1"]


def test_a_consistent_mesh_has_no_problems():
    root, _unused = _hierarchy("A")
    pem = pki.certificate_pem(root.cert)
    result = audit.diagnose_mesh(
        ["a", "b"],
        [_pa("istio-system", "STRICT")],
        [],
        [{"metadata": {"namespace": "a", "name": "p"}, "spec": {"initContainers": [{"name": "istio-proxy"}], "containers": [{"name": "x"}]}}],
        {"a": pem, "b": pem},
    )
    assert result["problems"] == []
