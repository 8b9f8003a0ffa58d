# -*- coding: utf-8 -*-
# Copyright (c) zerotrust.mtls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Zero-downtime proof of playbooks/rotate_root_ca.yml.

A real nginx (ssl_verify_client on) serves localhost.fullchain.crt from the PKI and trusts
trust/bundle.pem, both maintained by the playbooks, and is reloaded when they change. A
client does full mTLS handshakes in a loop with demo-client's certificate, reloading its
files when they change. The rotation runs phase by phase (the gate variable), and not a
single handshake may fail; at the end the server presents a chain from the new root and
the old root is trusted nowhere.
"""

import os

from cryptography.hazmat.primitives import hashes

import harness

# Bounds: the loop stops itself after this long or this many handshakes.
# Generous: on a loaded 2-core machine the five phases took up to 7 minutes; the test
# stops the loop itself when the rotation is done.
MAX_SECONDS = int(os.environ.get("ZERO_DOWNTIME_MAX_SECONDS", "900"))
MAX_HANDSHAKES = 200000


def _roots_in(path):
    return [c.subject.rfc4514_string() for c in harness.load_certs(path)]


def test_root_rotation_loses_no_handshake(tmp_path):
    pki = str(tmp_path / "pki")
    harness.bootstrap(pki)
    old_root = harness.load_certs(os.path.join(pki, "root", "ca.crt"))[0]
    old_root_copy = str(tmp_path / "old-root.pem")
    with open(old_root_copy, "wb") as handle:
        handle.write(open(os.path.join(pki, "root", "ca.crt"), "rb").read())

    nginx = harness.Nginx(pki, str(tmp_path))
    nginx.start()
    client = harness.MtlsClient(pki, nginx.port, MAX_SECONDS, MAX_HANDSHAKES)
    per_phase = []
    try:
        client.start()
        for phase in range(1, 6):
            before = client.successes
            harness.run_playbook("rotate_root_ca.yml", pki, "-e", "rotation_stop_after_phase=%d" % phase, log=str(tmp_path / "rotation.log"))
            # Give the watcher and the client time to pick up what the phase changed,
            # and the loop time to prove the new files work.
            harness.time.sleep(1.5)
            per_phase.append(client.successes - before)
            assert client.successes > before, "no handshake succeeded during phase %d" % phase
            if phase == 2:
                assert len(_roots_in(os.path.join(pki, "trust", "bundle.pem"))) == 2
    finally:
        client.stop()
        nginx.stop()

    print(
        "\nzero-downtime: %d successful mTLS handshakes, %d failed; per phase %s; nginx reloads %d "
        "(configs refused until complete: %d); client reloads %d (rejected mid-write: %d)"
        % (client.successes, len(client.failures), per_phase, nginx.reloads, nginx.refused_configs, client.context_reloads, client.rejected_reloads)
    )
    assert client.failures == [], "failed handshakes:\n" + "\n".join(client.failures[:20])
    assert client.successes >= 100
    assert nginx.reloads >= 3, "nginx was not reloaded for the bundle and certificate changes"

    # The rotation really happened: one root, not the old one, and the server's chain
    # comes from a new intermediate under it.
    new_roots = _roots_in(os.path.join(pki, "trust", "bundle.pem"))
    assert len(new_roots) == 1
    new_root = harness.load_certs(os.path.join(pki, "root", "ca.crt"))[0]
    assert new_root.fingerprint(hashes.SHA256()) != old_root.fingerprint(hashes.SHA256())
    assert any("G" in issuer for issuer in client.server_issuers)
    # The old root alone no longer verifies the server: a stale client would notice.
    nginx.start()
    try:
        stale = harness.context_trusting(
            old_root_copy, os.path.join(pki, "client", "demo-client.fullchain.crt"), os.path.join(pki, "client", "demo-client.key")
        )
        try:
            client.handshake(stale)
        except harness.ssl.SSLCertVerificationError:
            pass
        else:
            raise AssertionError("a client trusting only the old root still verified the server")
        # ...and a fresh client with the maintained bundle still gets in.
        fresh = harness.context_trusting(
            os.path.join(pki, "trust", "bundle.pem"), os.path.join(pki, "client", "demo-client.fullchain.crt"), os.path.join(pki, "client", "demo-client.key")
        )
        client.handshake(fresh)
    finally:
        nginx.stop()
    # The old CA was archived, not deleted.
    archived = [p for p in harness.glob.glob(os.path.join(pki, "archive", "*", "old-root", "ca.key"))]
    assert len(archived) == 1 and os.stat(archived[0]).st_mode & 0o777 == 0o600
