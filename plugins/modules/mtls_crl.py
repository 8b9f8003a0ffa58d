#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) zerotrust.mtls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: mtls_crl
short_description: Revoke certificates - a CRL signed by one of our CAs, kept fresh
version_added: 0.2.0
author:
  - zerotrust.mtls maintainers (@zerotrust)
description:
  - Keeps a certificate revocation list (X.509 v2 CRL, PEM) in O(crl_path), signed by the CA in O(ca_cert_path)
    and O(ca_key_path) - a root (to revoke intermediates) or an intermediate (to revoke leaves).
  - The CRL carries a CRL number, the authority key identifier of the CA and, per revoked certificate, its serial,
    revocation date and (unless V(unspecified)) reason code.
  - B(The CRL number only grows.) A new CRL takes the number of the CRL it replaces plus one - even when the old
    one was signed by another CA - so relying parties never see it go backwards.
  - The CRL is re-signed (with a new number) when the list of revoked certificates changes (RV(reason=revoked_changed)),
    when the file is missing (V(created)), not signed by this CA (V(issuer_changed)), past its nextUpdate (V(expired)),
    within O(renew_before) of its nextUpdate (V(renewal_due)), or when O(valid_for) changed (V(validity_changed)).
    Otherwise nothing is written, so a scheduled run that re-signs before nextUpdate is cheap.
  - Relying parties that check CRLs (nginx C(ssl_crl), OpenSSL C(-crl_check)) reject B(every) certificate of the
    CA once its CRL passes nextUpdate, so run this module on a schedule shorter than O(valid_for) minus
    O(renew_before).
  - Everything is checked before anything is written - the CA must be a CA allowed to sign CRLs, not expired, and
    match its key; each O(revoked[].cert_path) must be a certificate this CA issued; serials, reasons and dates must
    be valid and no serial may be listed twice. A refusal is one sentence naming the option.
  - thisUpdate is set 5 minutes in the past, as certificates' notBefore, to tolerate clock skew between peers.
    nextUpdate is O(valid_for) from now, but never after the CA's own expiry.
extends_documentation_fragment:
  - zerotrust.mtls.attributes
  - zerotrust.mtls.attributes.renews
attributes:
  diff_mode:
    details:
      - The diff shows the CRL number, dates and the revoked serials with reasons and dates.
  idempotent:
    details:
      - Idempotent until the CRL enters its renewal window (O(renew_before) before nextUpdate); then it is re-signed
        once.
options:
  state:
    description:
      - V(present) keeps the CRL; V(absent) removes O(crl_path) (with a copy when O(backup=true)).
    type: str
    choices: [present, absent]
    default: present
  ca_cert_path:
    description: The CA certificate that signs the CRL (PEM). Required when O(state=present).
    type: path
  ca_key_path:
    description: The private key of that CA (PEM). Required when O(state=present).
    type: path
  ca_key_passphrase:
    description: Passphrase of O(ca_key_path) when it is encrypted (the roles encrypt intermediate keys at rest).
    type: str
  crl_path:
    description: The CRL file (PEM).
    type: path
    required: true
  revoked:
    description:
      - The certificates to revoke. With O(crl_mode=generate) (the default) the CRL lists exactly these; with
        O(crl_mode=update) they are added to the entries the current CRL of this CA already has.
    type: list
    elements: dict
    default: []
    suboptions:
      serial:
        description:
          - Serial number of the certificate. A string is read as hex (as M(zerotrust.mtls.mtls_cert) returns it;
            colons and a V(0x) prefix are allowed) - B(quote it), since YAML turns an unquoted all-digit hex serial into
            a number; an integer is taken as the number itself.
          - Exactly one of O(revoked[].serial) and O(revoked[].cert_path).
        type: raw
      cert_path:
        description:
          - The certificate to revoke (PEM); it must have been issued by the CA in O(ca_cert_path).
        type: path
      reason:
        description:
          - The reason code. Defaults to the reason the CRL already lists for this serial, else V(unspecified)
            (which RFC 5280 says to leave out of the CRL, and so it is).
          - One of V(unspecified), V(key_compromise), V(ca_compromise), V(affiliation_changed), V(superseded),
            V(cessation_of_operation), V(certificate_hold), V(privilege_withdrawn), V(aa_compromise); the RFC 5280
            camelCase names (V(keyCompromise)) are accepted too.
          - V(certificate_hold) is the only reason under which removing the entry later is normal.
        type: str
      revocation_date:
        description:
          - When the certificate was revoked, ISO 8601 (V(2026-11-22T15:00:00Z) or V(2026-11-22)); not in the future.
          - Defaults to the date the CRL already lists for this serial, else now.
        type: str
  crl_mode:
    description:
      - V(generate) - the CRL lists exactly O(revoked) (an entry left out is removed, which un-revokes it).
      - V(update) - the entries of the current CRL of this CA are kept, O(revoked) is added (and may change the
        reason or date of an entry already there).
    type: str
    choices: [generate, update]
    default: generate
  valid_for:
    description:
      - How long the CRL is valid (nextUpdate - now), with units C(w), C(d), C(h), C(m), C(s) such as V(7d).
    type: str
    default: 7d
  renew_before:
    description:
      - When an unchanged CRL is re-signed - a duration before its nextUpdate (V(2d)) or a percentage of
        O(valid_for) (V(33%)). By default a third of O(valid_for).
    type: str
  backup:
    description:
      - Keep a timestamped copy (C(<crl_path>.<UTC timestamp>~)) of the CRL that is replaced or removed, returned in
        RV(backup_file).
    type: bool
    default: false
  mode:
    description: File mode of the CRL, as an octal string. A CRL is public.
    type: raw
    default: '0644'
notes:
  - The CRL is written atomically - a temporary file in the same directory, created with its final mode, flushed,
    then renamed over O(crl_path) - so nginx or a reloader never reads half a CRL.
  - To deliver the CRL, M(zerotrust.mtls.mtls_secret) carries it as C(ca.crl) (layout V(ca_bundle), read by
    ingress-nginx) or C(ca-crl.pem) (layout V(istio_cacerts), read by istiod) and checks that the CA delivered with
    it signed it.
requirements:
  - cryptography >= 42.0
seealso:
  - module: zerotrust.mtls.mtls_ca
    description: The CA whose key signs the CRL - a root, or an intermediate.
  - module: zerotrust.mtls.mtls_cert_info
    description: Whether a certificate is revoked, and whether its CRL is still fresh.
  - module: zerotrust.mtls.mtls_secret
    description: Deliver the CRL together with the CA that signed it.
"""

EXAMPLES = r"""
- name: Revoke a leaked client certificate in the intermediate's CRL
  zerotrust.mtls.mtls_crl:
    ca_cert_path: /etc/pki/mtls/clusters/prod-eu1/ca.crt
    ca_key_path: /etc/pki/mtls/clusters/prod-eu1/ca.key
    ca_key_passphrase: "{{ mtls_intermediate_key_passphrase }}"
    crl_path: /etc/pki/mtls/clusters/prod-eu1/ca.crl
    crl_mode: update
    revoked:
      - cert_path: /etc/pki/mtls/clients/ci-runner.crt
        reason: key_compromise
      - serial: "4F:1A:9C:02"
        reason: superseded
        revocation_date: "2026-11-22T15:00:00Z"
  register: crl

- name: Revoke an intermediate CA in the root's CRL (cuts every leaf below it)
  zerotrust.mtls.mtls_crl:
    ca_cert_path: /etc/pki/mtls/root/ca.crt
    ca_key_path: /etc/pki/mtls/root/ca.key
    ca_key_passphrase: "{{ vault_root_passphrase }}"
    crl_path: /etc/pki/mtls/root/ca.crl
    revoked:
      - cert_path: /etc/pki/mtls/clusters/old/ca.crt
        reason: ca_compromise

- name: Scheduled refresh - re-signs only within a third of valid_for before nextUpdate
  zerotrust.mtls.mtls_crl:
    crl_path: /etc/pki/mtls/clusters/prod-eu1/ca.crl
    crl_mode: update
    valid_for: 7d
    ca_cert_path: /etc/pki/mtls/clusters/prod-eu1/ca.crt
    ca_key_path: /etc/pki/mtls/clusters/prod-eu1/ca.key
    ca_key_passphrase: "{{ mtls_intermediate_key_passphrase }}"
"""

RETURN = r"""
reason:
  description:
    - Why the CRL was (or in check mode would be) written - V(created), V(issuer_changed), V(revoked_changed),
      V(expired), V(renewal_due), V(validity_changed), V(files_updated) (only the file mode) - or V(unchanged);
      V(removed) or V(absent) with O(state=absent).
  returned: always
  type: str
  sample: revoked_changed
crl_number:
  description: The CRL number of the CRL now in O(crl_path) (in check mode, the number it would get).
  returned: when O(state=present)
  type: int
  sample: 4
this_update:
  description: thisUpdate of the CRL, ISO 8601 UTC (in check mode, predicted).
  returned: when O(state=present)
  type: str
  sample: '2026-11-22T14:55:00Z'
next_update:
  description: nextUpdate of the CRL, ISO 8601 UTC (in check mode, predicted).
  returned: when O(state=present)
  type: str
  sample: '2026-11-29T15:00:00Z'
revoked:
  description: Serials listed in the CRL, uppercase hex, sorted.
  returned: when O(state=present)
  type: list
  elements: str
  sample: ['4F1A9C02']
revoked_entries:
  description: The entries of the CRL with reason and revocation date.
  returned: when O(state=present)
  type: list
  elements: dict
  contains:
    serial:
      description: Serial, uppercase hex.
      type: str
    reason:
      description: Reason code name.
      type: str
    revocation_date:
      description: ISO 8601 UTC.
      type: str
issuer:
  description: Issuer of the CRL (the CA's subject), RFC 4514.
  returned: when O(state=present)
  type: str
sha256_fingerprint:
  description: SHA-256 of the CRL (DER), uppercase colon-separated hex; null in check mode when it would change.
  returned: when O(state=present)
  type: str
crl_pem:
  description: The CRL, PEM (public data); null in check mode when it would change.
  returned: when O(state=present)
  type: str
backup_file:
  description: The copy of the replaced or removed CRL, when O(backup=true).
  returned: when a copy was made
  type: str
"""

from ansible_collections.zerotrust.mtls.plugins.module_utils import crl_backend, module_backend


def main():
    module_backend.module_main(crl_backend)


if __name__ == "__main__":
    main()
