# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""trust_bundle.py: what the estate trusts at each moment of a root CA rotation."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import json
import os

import pytest

from ansible_collections.zerotrust.mtls.plugins.module_utils import crl as crl_utils
from ansible_collections.zerotrust.mtls.plugins.module_utils import pki
from ansible_collections.zerotrust.mtls.plugins.module_utils import rotation as rot
from ansible_collections.zerotrust.mtls.plugins.module_utils import trust_bundle as trust

DAY = datetime.timedelta(days=1)
NOW = datetime.datetime(2026, 12, 3, 10, 0, tzinfo=datetime.timezone.utc)
ROTATION_ID = "20261203T100000Z"


def _write(path, content, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(content)
    os.chmod(path, mode)


def _generation(base, name, age_days, crl=False):
    """root/ and clusters/prod/ under ``base``; the root ``age_days`` old. Returns (root, intermediate)."""
    root_key = pki.generate_private_key()
    root = pki.build_ca(root_key, name + " root", 3650 * DAY, path_length=1, now=NOW - age_days * DAY)
    _write(os.path.join(base, "root", "ca.crt"), pki.certificate_pem(root))
    _write(os.path.join(base, "root", "ca.key"), pki.private_key_pem(root_key), 0o600)
    issuer = pki.load_issuer(pki.certificate_pem(root), pki.private_key_pem(root_key), "root", "root key")
    int_key = pki.generate_private_key()
    inter = pki.build_ca(int_key, name + " intermediate", 365 * DAY, issuer=issuer, path_length=0, now=NOW - age_days * DAY)
    _write(os.path.join(base, "clusters", "prod", "ca.crt"), pki.certificate_pem(inter))
    if crl:
        for cert, key, directory in ((root, root_key, "root"), (inter, int_key, os.path.join("clusters", "prod"))):
            signer = pki.load_issuer(pki.certificate_pem(cert), pki.private_key_pem(key), "ca", "key")
            built = crl_utils.build_crl(signer, {}, 1, NOW - DAY, NOW + 6 * DAY)
            _write(os.path.join(base, directory, "ca.crl"), crl_utils.crl_pem(built))
    return root, inter


def _state(pki_dir, phase, status="in_progress"):
    path = os.path.join(pki_dir, "rotation", "root_ca.state.json")
    _write(path, json.dumps({"rotation": "root_ca", "id": ROTATION_ID, "phase_completed": phase, "status": status}).encode())


def _switch(pki_dir):
    """What phase 3 does to the files: the old CA (and its CRL) to <id>/previous, the new one in place."""
    previous = os.path.join(pki_dir, "rotation", "root_ca", ROTATION_ID, "previous")
    for rel in ("root", os.path.join("clusters", "prod")):
        os.makedirs(os.path.join(previous, rel))
        for name in ("ca.crt", "ca.crl"):
            os.rename(os.path.join(pki_dir, rel, name), os.path.join(previous, rel, name))
        with open(os.path.join(pki_dir, "rotation", "root_ca", "next", rel, "ca.crt"), "rb") as handle:
            _write(os.path.join(pki_dir, rel, "ca.crt"), handle.read())


def _fingerprints(certs):
    return [pki.sha256_fingerprint(cert) for cert in certs]


@pytest.fixture
def estate(tmp_path):
    """An active generation (old), and a rotation's next one (new) under rotation/root_ca/next."""
    pki_dir = str(tmp_path / "pki")
    old = _generation(pki_dir, "old", 10, crl=True)
    new = _generation(os.path.join(pki_dir, "rotation", "root_ca", "next"), "new", 1)
    return pki_dir, old, new


def test_outside_a_rotation_the_active_root_alone(estate):
    pki_dir, old, _new = estate
    found, state = trust.generations(pki_dir, "clusters/prod")
    assert state is None and [g.name for g in found] == ["active"]
    assert _fingerprints(trust.trusted_roots(found)) == _fingerprints([old[0]])
    assert _fingerprints(trust.trusted_chains(found)) == _fingerprints([old[1], old[0]])


def test_a_started_rotation_before_phase_one_still_trusts_the_active_root_alone(estate):
    pki_dir, old, _new = estate
    _state(pki_dir, 0)
    found, _state_read = trust.generations(pki_dir, "clusters/prod")
    assert _fingerprints(trust.trusted_roots(found)) == _fingerprints([old[0]])


@pytest.mark.parametrize("phase", [1, 2, 4])
def test_from_phase_one_both_roots_oldest_first(estate, phase):
    pki_dir, old, new = estate
    _state(pki_dir, phase)
    found, state = trust.generations(pki_dir, "clusters/prod")
    assert trust.overlap_active(state)
    assert _fingerprints(trust.trusted_roots(found)) == _fingerprints([old[0], new[0]])
    assert _fingerprints(trust.trusted_chains(found)) == _fingerprints([old[1], old[0], new[1], new[0]])


def test_after_promotion_the_order_is_unchanged_and_the_old_crls_come_from_previous(estate):
    """Phase 3 moves the old CA (and its CRLs) to <id>/previous and installs the new one:
    the bundles hold the same certificates in the same order, so no Secret changes."""
    pki_dir, old, new = estate
    _state(pki_dir, 2)
    before_roots = _fingerprints(trust.trusted_roots(trust.generations(pki_dir, "clusters/prod")[0]))
    before_crls = trust.trusted_crls(trust.generations(pki_dir, "clusters/prod")[0])
    _switch(pki_dir)
    _state(pki_dir, 3)
    found, _unused = trust.generations(pki_dir, "clusters/prod")
    assert _fingerprints(trust.trusted_roots(found)) == before_roots == _fingerprints([old[0], new[0]])
    assert _fingerprints(trust.trusted_chains(found)) == _fingerprints([old[1], old[0], new[1], new[0]])
    assert trust.trusted_crls(found) == before_crls and before_crls.count(b"BEGIN X509 CRL") == 2


def test_a_completed_rotation_trusts_the_new_root_alone(estate):
    pki_dir, _old, new = estate
    for rel in ("root", os.path.join("clusters", "prod")):
        with open(os.path.join(pki_dir, "rotation", "root_ca", "next", rel, "ca.crt"), "rb") as handle:
            _write(os.path.join(pki_dir, rel, "ca.crt"), handle.read())
        os.remove(os.path.join(pki_dir, rel, "ca.crl"))
    _state(pki_dir, 5, status="complete")
    found, state = trust.generations(pki_dir, "clusters/prod")
    assert not trust.overlap_active(state)
    assert _fingerprints(trust.trusted_roots(found)) == _fingerprints([new[0]])
    assert trust.trusted_crls(found) == b""


def test_no_root_is_one_sentence(tmp_path):
    found, _state_read = trust.generations(str(tmp_path), "clusters/prod")
    with pytest.raises(rot.RotationError, match=r"there is no root CA at .*/root/ca.crt; run the ca role"):
        trust.trusted_roots(found)


def test_promote_carries_the_crls_of_the_replaced_ca_to_the_archive(tmp_path):
    pki_dir = str(tmp_path / "pki")
    _generation(pki_dir, "old", 10, crl=True)
    next_dir = str(tmp_path / "next")
    _generation(next_dir, "new", 1)
    archive = str(tmp_path / "previous" / "root")
    with open(os.path.join(pki_dir, "root", "ca.crl"), "rb") as handle:
        old_crl = handle.read()
    pair = {"cert": os.path.join(pki_dir, "root", "ca.crt"), "key": os.path.join(pki_dir, "root", "ca.key")}
    source = {"cert": os.path.join(next_dir, "root", "ca.crt"), "key": os.path.join(next_dir, "root", "ca.key")}
    changed = rot.promote_pair(source, pair, archive, carry_crls=True)
    assert os.path.join(pki_dir, "root", "ca.crl") in changed
    assert not os.path.exists(os.path.join(pki_dir, "root", "ca.crl"))
    with open(os.path.join(archive, "ca.crl"), "rb") as handle:
        assert handle.read() == old_crl
    assert os.path.exists(os.path.join(archive, "ca.key"))


def test_promote_without_carry_leaves_the_crls(tmp_path):
    pki_dir = str(tmp_path / "pki")
    _generation(pki_dir, "old", 10, crl=True)
    next_dir = str(tmp_path / "next")
    _generation(next_dir, "new", 1)
    pair = {"cert": os.path.join(pki_dir, "root", "ca.crt"), "key": os.path.join(pki_dir, "root", "ca.key")}
    source = {"cert": os.path.join(next_dir, "root", "ca.crt"), "key": os.path.join(next_dir, "root", "ca.key")}
    rot.promote_pair(source, pair, str(tmp_path / "archive"))
    assert os.path.exists(os.path.join(pki_dir, "root", "ca.crl"))


def test_after_the_switch_the_staged_copy_of_the_active_ca_is_not_a_generation_of_its_own(estate):
    """After phase 3, next/ holds a copy of the active CA (and maybe a CRL copied at the switch
    and not refreshed since): it must not stand beside the active one."""
    pki_dir, _old, _new = estate
    _state(pki_dir, 3)
    _switch(pki_dir)
    found, _unused = trust.generations(pki_dir, "clusters/prod")
    assert [g.name for g in found] == ["active", "previous"]
