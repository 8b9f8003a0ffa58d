# -*- coding: utf-8 -*-
# Copyright (c) zerotrust.mtls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the estate trusts at this moment of a root CA rotation.

Every role publishes trust (Istio's root-cert.pem, the SPIRE and cert-manager bundles,
the edge client CA bundles and their CRLs) from the files computed here, and the root
rotation writes them through the same code. So a site.yml run at any moment of a
rotation publishes what the rotation state says - the old and the new root from phase 1
until phase 5 retires the old one - and never narrows trust early.

A *generation* is one root with the CA of the cluster below it: the active one
(root/, clusters/<name>/), the next one a rotation has created but not promoted
(rotation/root_ca/next/) and the previous one a rotation has promoted away from
(rotation/root_ca/<id>/previous/). Only the active generation counts outside a
rotation; while a rotation is in progress (phase 1 done, phase 5 not), all three do.

Nothing in here talks to Kubernetes or to AnsibleModule.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.zerotrust.mtls.plugins.module_utils import backend_results, files
from ansible_collections.zerotrust.mtls.plugins.module_utils import rotation as rot
from ansible_collections.zerotrust.mtls.plugins.module_utils.crl import crl_fingerprint, crl_pem, load_crls
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_certs import certificates_pem, load_certificate
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_fingerprints import sha256_fingerprint
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_support import check_cryptography

ROOT_CA_ROTATION = "root_ca"


class Generation(object):
    """One root and, when asked for, the CA below it (paths; files may be missing)."""

    def __init__(self, name, root_dir, ca_dir=None):
        self.name = name
        self.root_dir = root_dir
        self.ca_dir = ca_dir


def rotation_paths(pki_dir, rotation_dir=None):
    """(state path, next dir, directory holding <id>/previous) of the root rotation."""
    rotation_dir = rotation_dir or os.path.join(pki_dir, "rotation")
    base = os.path.join(rotation_dir, ROOT_CA_ROTATION)
    return os.path.join(rotation_dir, ROOT_CA_ROTATION + ".state.json"), os.path.join(base, "next"), base


def overlap_active(state):
    """True while trust must hold both roots: phase 1 recorded, phase 5 not."""
    return bool(state) and state.get("status") != "complete" and state.get("phase_completed", 0) >= 1


def generations(pki_dir, ca_rel=None, rotation_dir=None):
    """(generations, state): the active generation, and during an overlap the next and previous ones."""
    state_path, next_dir, base = rotation_paths(pki_dir, rotation_dir)
    state = rot.load_state(state_path)

    def _ca(directory):
        return os.path.join(directory, ca_rel) if ca_rel else None

    found = [Generation("active", os.path.join(pki_dir, "root"), _ca(pki_dir))]
    if overlap_active(state):
        previous = os.path.join(base, state["id"], "previous")
        found.append(Generation("previous", os.path.join(previous, "root"), _ca(previous)))
        found.append(Generation("next", os.path.join(next_dir, "root"), _ca(next_dir)))
    return _distinct_roots(found), state


def _distinct_roots(found):
    """Each root's generation once, the active one first: after the switch of phase 3 the
    staged copy under next/ is the active CA, and its files (a CRL copied at the switch
    and not refreshed since) must not stand beside the active ones."""
    seen, kept = set(), []
    for generation in found:
        root = _certificate(os.path.join(generation.root_dir, "ca.crt"), "%s root" % generation.name)
        fingerprint = sha256_fingerprint(root) if root is not None else None
        if fingerprint is None or fingerprint not in seen:
            seen.add(fingerprint)
            kept.append(generation)
    return kept


def _certificate(path, field):
    content = files.read_if_exists(path)
    return load_certificate(content, field) if content is not None else None


def _age_key(cert):
    """Oldest first, ties by fingerprint: the order stays the same through every phase, so
    a published bundle changes only when its set of certificates does."""
    return cert.not_valid_before_utc, sha256_fingerprint(cert)


def _ordered(certs):
    """Each certificate once, oldest first."""
    unique = {}
    for cert in certs:
        unique.setdefault(sha256_fingerprint(cert), cert)
    return sorted(unique.values(), key=_age_key)


def trusted_roots(found):
    roots = [_certificate(os.path.join(g.root_dir, "ca.crt"), "%s root" % g.name) for g in found]
    roots = [cert for cert in roots if cert is not None]
    if not roots:
        raise rot.RotationError("there is no root CA at %s; run the ca role or playbooks/bootstrap_pki.yml first." % os.path.join(found[0].root_dir, "ca.crt"))
    return _ordered(roots)


def trusted_chains(found):
    """The CA below each root followed by its root, generation by generation (oldest first):
    what an edge bundle holds so that clients sending only their leaf verify."""
    pairs = []
    for generation in found:
        ca = _certificate(os.path.join(generation.ca_dir, "ca.crt"), "%s CA" % generation.name)
        root = _certificate(os.path.join(generation.root_dir, "ca.crt"), "%s root" % generation.name)
        if ca is not None and root is not None:
            pairs.append((ca, root))
    if not pairs:
        raise rot.RotationError("there is no CA at %s; run the ca role first." % os.path.join(found[0].ca_dir, "ca.crt"))
    seen = set()
    ordered = []
    for ca, root in sorted(pairs, key=lambda pair: (_age_key(pair[1]), _age_key(pair[0]))):
        for cert in (ca, root):
            fingerprint = sha256_fingerprint(cert)
            if fingerprint not in seen:
                seen.add(fingerprint)
                ordered.append(cert)
    return ordered


def _oldest_first(found):
    """The generations that have a root, oldest root first: the promotion of phase 3 swaps
    which one is active, and the files must not change for that alone."""
    aged = []
    for generation in found:
        root = _certificate(os.path.join(generation.root_dir, "ca.crt"), "%s root" % generation.name)
        if root is not None:
            aged.append((_age_key(root), generation))
    return [generation for _key, generation in sorted(aged, key=lambda pair: pair[0])]


def trusted_crls(found, active_ca_only=False):
    """The PEM CRLs of every CA of the chains (the CA's ca.crl and its root's), each once.

    A verifier that checks CRLs of the whole chain (nginx, Envoy) refuses a client whose
    chain lacks one, so during an overlap the old generation's CRLs stay beside the new.
    ``active_ca_only``: the CRLs of every root but of the active CA below them only - what
    a Secret that delivers that CA alone with the roots (Istio's cacerts) can carry, as
    each CRL is delivered with the CA that signed it."""
    seen = set()
    blocks = []
    for generation in _oldest_first(found):
        ca_dir = generation.ca_dir if generation is found[0] or not active_ca_only else None
        for directory in (ca_dir, generation.root_dir):
            if not directory:
                continue
            content = files.read_if_exists(os.path.join(directory, "ca.crl"))
            if content is None:
                continue
            for crl in load_crls(content, os.path.join(directory, "ca.crl")):
                fingerprint = crl_fingerprint(crl)
                if fingerprint not in seen:
                    seen.add(fingerprint)
                    blocks.append(crl_pem(crl))
    return b"".join(blocks)


def describe(certs):
    return [{"subject": cert.subject.rfc4514_string(), "sha256_fingerprint": sha256_fingerprint(cert)} for cert in certs]


def rotation_summary(state):
    if not state:
        return None
    return {"id": state.get("id"), "status": state.get("status"), "phase_completed": state.get("phase_completed")}


# --------------------------------------------------------------------------- the module's backend
# plugins/modules/mtls_trust_bundle.py runs these through module_backend.run_as_module.

VALIDATION_RULES = {}

# Bad input, unreadable files, a rotation state or PKI directory to fix: MtlsError and its
# subclasses (RotationError), one sentence each.
KNOWN_ERRORS = backend_results.KNOWN_ERRORS
failure_result, unexpected_failure_result = backend_results.failure_results("mtls_trust_bundle", changed=False)


def argument_spec():
    return dict(
        pki_dir=dict(type="path", required=True),
        rotation_dir=dict(type="path"),
        ca_dir=dict(type="str"),
        roots_path=dict(type="path"),
        roots_copies=dict(type="list", elements="path", default=[]),
        chain_path=dict(type="path"),
        crl_path=dict(type="path"),
        active_crl_path=dict(type="path"),
        mode=dict(type="raw", default="0644"),
    )


def _planned_files(params, found):
    """[(path, content or None to remove, what it holds for the diff)] and the result fields."""
    roots = trusted_roots(found)
    roots_pem = certificates_pem(roots)
    planned = [(path, roots_pem, describe(roots)) for path in ([params["roots_path"]] if params["roots_path"] else []) + params["roots_copies"]]
    result = dict(roots=describe(roots), roots_pem=roots_pem.decode("ascii"))
    if params["ca_dir"]:
        chain = trusted_chains(found)
        crls = trusted_crls(found)
        result.update(chain=describe(chain), crl_count=crls.count(b"-----BEGIN X509 CRL-----"))
        if params["chain_path"]:
            planned.append((params["chain_path"], certificates_pem(chain), result["chain"]))
        if params["crl_path"]:
            planned.append((params["crl_path"], crls or None, "%d CRLs" % result["crl_count"]))
        if params["active_crl_path"]:
            active = trusted_crls(found, active_ca_only=True)
            planned.append((params["active_crl_path"], active or None, "%d CRLs" % active.count(b"-----BEGIN X509 CRL-----")))
    return planned, result


def _apply(path, content, mode):
    if content is None:
        files.remove(path)
        return
    # trust/ is new in an estate converged before this module existed.
    if not os.path.isdir(os.path.dirname(path)):
        os.makedirs(os.path.dirname(path), 0o755)
    files.atomic_write(path, content, mode, field=path)


def run_module(module):
    """Writes (or in check mode predicts) the trust files ``module.params`` asks for."""
    check_cryptography()
    params = module.params
    for field in ("chain_path", "crl_path", "active_crl_path"):
        if params[field] and not params["ca_dir"]:
            raise rot.RotationError("%s needs ca_dir, the CA below the root (such as clusters/<name>)." % field)
    mode = files.parse_mode(params["mode"], files.CERT_MODE, "mode")
    found, state = generations(params["pki_dir"], params["ca_dir"], params["rotation_dir"])
    planned, result = _planned_files(params, found)
    changed_paths, before, after = [], {}, {}
    for path, content, holds in planned:
        present = files.read_if_exists(path) is not None
        if (content is None and not present) or (content is not None and not files.needs_write(path, content, mode)):
            continue
        before[path] = "present" if present else "absent"
        after[path] = "absent" if content is None else holds
        changed_paths.append(path)
        if not module.check_mode:
            _apply(path, content, mode)
    result.update(changed=bool(changed_paths), changed_paths=changed_paths, overlap=overlap_active(state), rotation=rotation_summary(state))
    if module._diff:
        result["diff"] = {"before": before, "after": after}
    return result
