# -*- coding: utf-8 -*-
# Copyright (c) zerotrust.mtls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""CRLs of both generations through a root rotation held open between runs (file side).

A PKI with a revoked client (so every CA has a CRL) starts a root rotation and stops after
phase 1: the new CAs get CRLs of their own. The scheduled refresh (revoke.yml with nothing
to revoke) then re-signs the CRLs of the new generation too, not only the active ones.
After the switch of phase 3 the old CAs' CRLs sit under <id>/previous/ with the revoked
serial still listed, and the refresh re-signs those. The rotation then completes.
"""

import json
import os

from cryptography import x509

import harness


def _crl(path):
    with open(path, "rb") as handle:
        crl = x509.load_pem_x509_crl(handle.read())
    number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    return number, sorted(entry.serial_number for entry in crl)


def _refresh(pki, log, valid_for, renew_before):
    # A longer lifetime than the CRLs have and a window wider than what is left of it: due now.
    harness.run_playbook("revoke.yml", pki, "-e", "mtls_crl_valid_for=%s" % valid_for, "-e", "mtls_crl_renew_before=%s" % renew_before, log=log)


def test_the_refresh_keeps_both_generations_crls_signed(tmp_path):
    pki = str(tmp_path / "pki")
    log = str(tmp_path / "playbooks.log")
    harness.bootstrap(pki)
    client = harness.load_certs(os.path.join(pki, "client", "demo-client.crt"))[0]
    harness.run_playbook("revoke.yml", pki, "-e", '{"mtls_revoke": ["demo-client"]}', log=log)
    harness.run_playbook("rotate_root_ca.yml", pki, "-e", "rotation_stop_after_phase=1", log=log)
    next_dir = os.path.join(pki, "rotation", "root_ca", "next")
    staged = dict((rel, _crl(os.path.join(next_dir, rel, "ca.crl"))) for rel in ("root", "intermediate"))
    assert staged == {"root": (1, []), "intermediate": (1, [])}, staged

    _refresh(pki, log, "20d", "19d")
    refreshed = dict((rel, _crl(os.path.join(next_dir, rel, "ca.crl"))) for rel in ("root", "intermediate"))
    assert refreshed == {"root": (2, []), "intermediate": (2, [])}, refreshed

    harness.run_playbook("rotate_root_ca.yml", pki, "-e", "rotation_stop_after_phase=3", log=log)
    with open(os.path.join(pki, "rotation", "root_ca.state.json")) as handle:
        state = json.load(handle)
    previous = os.path.join(pki, "rotation", "root_ca", state["id"], "previous")
    carried_number, carried_serials = _crl(os.path.join(previous, "intermediate", "ca.crl"))
    assert client.serial_number in carried_serials, "the old intermediate CRL lost the revoked serial"
    # The new CAs' CRLs (from phase 1; the rerun of phase 1's step re-signed them once more to
    # its default lifetime) are now beside them.
    new_number, new_serials = _crl(os.path.join(pki, "intermediate", "ca.crl"))
    assert new_number >= 2 and new_serials == [], (new_number, new_serials)

    _refresh(pki, log, "30d", "29d")
    number, serials = _crl(os.path.join(previous, "intermediate", "ca.crl"))
    assert number == carried_number + 1 and client.serial_number in serials, (number, serials)
    assert _crl(os.path.join(previous, "root", "ca.crl"))[0] > 1

    harness.run_playbook("rotate_root_ca.yml", pki, log=log)
    with open(os.path.join(pki, "rotation", "root_ca.state.json")) as handle:
        assert json.load(handle)["status"] == "complete"
