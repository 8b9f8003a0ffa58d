# -*- coding: utf-8 -*-
# Copyright: zerotrust.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # How the modules reach the Kubernetes API (spec: module_utils/args_kube_auth.py,
    # KUBE_AUTH_SPEC). Same names as kubernetes.core uses, so an inventory written for one
    # works for the other.
    DOCUMENTATION = r"""
options:
  kubeconfig:
    description:
      - Path to a kubeconfig file.
      - When neither O(kubeconfig) nor O(host) is set, C($KUBECONFIG) and then
        C(~/.kube/config) are used, and inside a Pod the in-cluster service account.
    type: path
  context:
    description:
      - Name of the kubeconfig context to use; the kubeconfig's current context when omitted.
    type: str
  host:
    description:
      - URL of the API server, for example C(https://127.0.0.1:6443). Takes precedence
        over the kubeconfig.
    type: str
  api_key:
    description:
      - Bearer token to authenticate with, usually together with O(host).
    type: str
  ca_cert:
    description:
      - Path to the PEM bundle that verifies the API server's certificate.
    type: path
    aliases: [ ssl_ca_cert ]
  validate_certs:
    description:
      - Whether to verify the API server's TLS certificate. Only turn this off for
        throw-away test clusters.
    type: bool
    default: true
    aliases: [ verify_ssl ]
requirements:
  - kubernetes >= 30.1.0 (Python client)
notes:
  - Requests answered with 429 or 5xx, and connection resets, are retried up to four
    times with exponential backoff.
"""
