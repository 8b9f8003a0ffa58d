# -*- coding: utf-8 -*-
# Copyright: zerotrust.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The argument specs that go with the doc fragments kube_auth and kube_apply.

Every module that talks to the Kubernetes API takes KUBE_AUTH_SPEC; the modules that write
objects by server-side apply add APPLY_SPEC (who settles field-manager conflicts, how many
requests run at once). kube_connection.ConnectionSettings reads the first.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# doc_fragments/kube_auth.py
KUBE_AUTH_SPEC = dict(
    kubeconfig=dict(type="path"),
    context=dict(type="str"),
    host=dict(type="str"),
    api_key=dict(type="str", no_log=True),
    ca_cert=dict(type="path", aliases=["ssl_ca_cert"]),
    validate_certs=dict(type="bool", default=True, aliases=["verify_ssl"]),
)

# doc_fragments/kube_apply.py
APPLY_SPEC = dict(
    force_conflicts=dict(type="bool", default=False),
    parallel=dict(type="int", default=8),
)
