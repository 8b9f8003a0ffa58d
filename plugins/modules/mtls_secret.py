#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: zerotrust.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: mtls_secret
short_description: Deliver certificates and keys into Kubernetes Secrets in the layouts consumers expect
version_added: 0.1.0
description:
  - Writes one Secret, or several (O(secrets)), into one namespace or many (O(namespaces)) in
    one of the layouts that Istio, cert-manager consumers, ingress controllers, Gateway API
    and SPIRE read.
  - Before anything is written it checks that the private key matches the certificate and
    that the certificate chains to the CA delivered with it; bad material fails the task
    with one sentence and no Secret is touched.
  - Existing Secrets are read first (one LIST per namespace holding two or more of them) and
    only those whose data, type, labels or annotations differ are written, with server-side
    apply as field manager C(zerotrust.mtls).
  - All or nothing - before the first write, every update and deletion is sent as a
    server-side dry run (RBAC, admission, field-manager conflicts), and so is every creation,
    or one creation per namespace where nothing can tell one new Secret from another (no
    admission webhook or policy selects Secrets, and RBAC grants create and patch on every
    Secret of the namespace, as a SelfSubjectRulesReview shows).
  - Diffs and return values show certificate and public-key fingerprints, never key bytes.
author:
  - zerotrust.mtls maintainers (@zerotrust)
extends_documentation_fragment:
  - zerotrust.mtls.kube_auth
attributes:
  check_mode:
    support: full
    description: Predicts C(changed) exactly; the writes that would happen are proven by server-side dry runs as in a real run.
  diff_mode:
    support: full
    description: Shows per Secret the data keys with certificate and key fingerprints, labels and annotations.
  idempotent:
    support: full
    description: A second run with the same material reports C(changed=false) and sends no write.
options:
  name:
    description:
      - Name of the Secret. Required unless O(secrets) is given.
    type: str
  namespace:
    description:
      - Namespace to write the Secret(s) to. Exactly one of O(namespace) and O(namespaces).
    type: str
  namespaces:
    description:
      - Write the same Secret(s) to each of these namespaces in one call.
      - All namespaces must exist; a missing one fails the task before anything is written (it is looked up
        where a Secret is to be created).
    type: list
    elements: str
  layout:
    description:
      - V(tls) writes C(tls.crt) (certificate and intermediates), C(tls.key) and, when a CA is
        given, C(ca.crt); the Secret type is C(kubernetes.io/tls).
      - V(istio_cacerts) writes Istio's plugged-in CA files C(ca-cert.pem), C(ca-key.pem),
        C(cert-chain.pem) (CA certificate, intermediates, root), C(root-cert.pem) (may hold
        several roots during a rotation) and with a CRL C(ca-crl.pem).
      - V(ca_bundle) writes C(ca.crt) and with a CRL C(ca.crl).
      - V(spire_upstream) writes C(tls.crt) (the upstream CA and its intermediates, for the
        disk UpstreamAuthority's C(cert_file_path)), C(tls.key) (C(key_file_path)) and
        C(bundle.crt) (the roots, C(bundle_file_path)).
      - V(generic) writes O(data) as it is.
      - Every layout except V(tls) has type C(Opaque).
    type: str
    choices: [ tls, istio_cacerts, ca_bundle, spire_upstream, generic ]
    default: tls
  cert_path:
    description:
      - PEM certificate file; intermediates may follow the certificate in the same file.
      - For V(istio_cacerts) and V(spire_upstream) this is the intermediate CA certificate.
    type: path
  cert_content:
    description: PEM certificate as a string, instead of O(cert_path).
    type: str
  key_path:
    description:
      - PEM private key file of the certificate. An encrypted key needs O(key_passphrase).
      - The Secret always receives the key unencrypted (PKCS#8), because consumers (istiod,
        cert-manager, SPIRE, ingress controllers) read it as it is.
    type: path
  key_content:
    description: PEM private key as a string, instead of O(key_path).
    type: str
  key_passphrase:
    description:
      - Passphrase of an encrypted O(key_path) or O(key_content). The key is decrypted in
        memory only, to be written into the Secret; it is never written to disk unencrypted.
      - A key that is not encrypted is delivered as it is, so one passphrase can be given for
        keys that are encrypted in some places and not yet in others (while they are converted).
    type: str
  chain_path:
    description:
      - PEM intermediates between the certificate and the root, leaf side first. A root at
        the end is accepted and moved to the trust bundle.
    type: path
  chain_content:
    description: Intermediates as a string, instead of O(chain_path).
    type: str
  ca_path:
    description:
      - PEM root certificate(s) the chain must verify to; several roots are allowed (rotation).
    type: path
  ca_content:
    description: Root certificate(s) as a string, instead of O(ca_path).
    type: str
  crl_path:
    description:
      - PEM certificate revocation list(s) (V(istio_cacerts) and V(ca_bundle) only); one file may hold the CRLs of
        several CAs, as M(zerotrust.mtls.mtls_crl) writes them, concatenated.
      - Checked against the CAs delivered in the same Secret before anything is written - each CRL must be signed by
        one of them and not be past its nextUpdate, and each of these CAs (for V(istio_cacerts), the CA and its
        chain up to its root) must have a CRL, because nginx and Envoy refuse every certificate of a chain in
        which one CA has no CRL or a stale one.
    type: path
  crl_content:
    description: PEM CRL as a string, instead of O(crl_path).
    type: str
  data:
    description:
      - Map of Secret key to content for V(generic). Values are never shown; diffs show digests.
    type: dict
  secrets:
    description:
      - Several Secrets in one call, each written to every namespace. Source options not set
        in an item are taken from the top level (for example a shared O(ca_path)); item
        O(secrets[].labels) and O(secrets[].annotations) are added to the top-level ones.
    type: list
    elements: dict
    suboptions:
      name:
        description: Name of the Secret.
        type: str
        required: true
      cert_path:
        description: As O(cert_path).
        type: path
      cert_content:
        description: As O(cert_content).
        type: str
      key_path:
        description: As O(key_path).
        type: path
      key_content:
        description: As O(key_content).
        type: str
      key_passphrase:
        description: As O(key_passphrase).
        type: str
      chain_path:
        description: As O(chain_path).
        type: path
      chain_content:
        description: As O(chain_content).
        type: str
      ca_path:
        description: As O(ca_path).
        type: path
      ca_content:
        description: As O(ca_content).
        type: str
      crl_path:
        description: As O(crl_path).
        type: path
      crl_content:
        description: As O(crl_content).
        type: str
      data:
        description: As O(data).
        type: dict
      labels:
        description: Labels of this Secret, added to O(labels).
        type: dict
      annotations:
        description: Annotations of this Secret, added to O(annotations).
        type: dict
  labels:
    description: Labels to set on the Secret(s), for example so the expiry exporter finds them.
    type: dict
    default: {}
  annotations:
    description: Annotations to set on the Secret(s).
    type: dict
    default: {}
  state:
    description: V(absent) deletes the named Secret(s) from the namespace(s); sources are not needed then.
    type: str
    choices: [ present, absent ]
    default: present
  parallel:
    description:
      - How many requests to keep in flight at once; all share one connection pool.
    type: int
    default: 8
seealso:
  - module: zerotrust.mtls.mtls_cert
  - module: zerotrust.mtls.mtls_ca
'''

EXAMPLES = r'''
- name: Gateway certificate as a kubernetes.io/tls Secret
  zerotrust.mtls.mtls_secret:
    name: gateway-tls
    namespace: istio-ingress
    layout: tls
    cert_path: /etc/pki/mtls/gateway.crt
    key_path: /etc/pki/mtls/gateway.key
    chain_path: /etc/pki/mtls/intermediate.crt
    ca_path: /etc/pki/mtls/root.crt
    labels:
      mtls.zerotrust.io/watch: "true"
    kubeconfig: ~/.kube/prod

- name: Istio plugged-in CA (cacerts) from the cluster intermediate
  zerotrust.mtls.mtls_secret:
    name: cacerts
    namespace: istio-system
    layout: istio_cacerts
    cert_path: /etc/pki/mtls/cluster-a/ca.crt
    key_path: /etc/pki/mtls/cluster-a/ca.key
    ca_path: /etc/pki/mtls/roots.pem

- name: The trust bundle in every application namespace
  zerotrust.mtls.mtls_secret:
    name: mesh-ca
    namespaces: [shop, payments, search]
    layout: ca_bundle
    ca_path: /etc/pki/mtls/roots.pem

- name: Many client certificates into many namespaces in one call
  zerotrust.mtls.mtls_secret:
    namespaces: "{{ tenant_namespaces }}"
    secrets:
      - name: client-a
        cert_path: /etc/pki/mtls/clients/a.crt
        key_path: /etc/pki/mtls/clients/a.key
      - name: client-b
        cert_path: /etc/pki/mtls/clients/b.crt
        key_path: /etc/pki/mtls/clients/b.key
    ca_path: /etc/pki/mtls/roots.pem

- name: Remove the old bundle
  zerotrust.mtls.mtls_secret:
    name: mesh-ca-old
    namespaces: [shop, payments]
    state: absent
'''

RETURN = r'''
secrets:
  description: One entry per Secret and namespace, in the order of O(namespaces) then names.
  returned: always
  type: list
  elements: dict
  contains:
    namespace:
      description: Namespace of the Secret.
      type: str
      sample: istio-system
    name:
      description: Name of the Secret.
      type: str
      sample: cacerts
    action:
      description: V(created), V(updated), V(unchanged), V(deleted) or V(absent) (nothing to delete).
      type: str
      sample: created
    reason:
      description: Why it was written (V(created), V(data), V(type), V(labels), V(annotations)) or V(none).
      type: str
      sample: data
  sample:
    - namespace: istio-system
      name: cacerts
      action: created
      reason: created
fingerprints:
  description:
    - Per Secret name, what each data key holds, as certificate SHA-256 fingerprints, public-key
      fingerprints (C(sha256:...)) for private keys, or a digest of other values.
  returned: when O(state=present)
  type: dict
  sample:
    cacerts:
      ca-cert.pem: ["AB:CD:..."]
      ca-key.pem: "sha256:3f5a..."
secret_type:
  description: The Secret type of the layout.
  returned: when O(state=present)
  type: str
  sample: Opaque
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.zerotrust.mtls.plugins.module_utils.kube import (
    KUBE_AUTH_ARGSPEC,
    ConnectionSettings,
    KubeClient,
    KubeError,
    string_map,
    validate_annotations,
    validate_labels,
    validate_namespace_name,
    validate_object_name,
)
from ansible_collections.zerotrust.mtls.plugins.module_utils.secret_sync import sync
from ansible_collections.zerotrust.mtls.plugins.module_utils.secret_layouts import (
    Material,
    SecretLayoutError,
    build_secret_data,
    LAYOUTS,
)

SOURCE_ROLES = ("cert", "key", "chain", "ca", "crl")
ITEM_KEYS = set(["name", "labels", "annotations", "data", "key_passphrase"] +
                ["%s_%s" % (role, kind) for role in SOURCE_ROLES for kind in ("path", "content")])


class InputError(Exception):
    """Bad module input; one sentence."""


def read_source(path, field):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except (IOError, OSError) as error:
        raise InputError("%s %s cannot be read (%s); give the path of a readable PEM file."
                         % (field, path, error.strerror or type(error).__name__))


def material_for(item, defaults, prefix):
    """Material from one secrets item, falling back to the top-level options."""
    material = Material()
    for role in SOURCE_ROLES:
        path_key, content_key = role + "_path", role + "_content"
        in_item = item.get(path_key) is not None or item.get(content_key) is not None
        source = item if in_item else defaults
        where = prefix if in_item else ""
        path, content = source.get(path_key), source.get(content_key)
        if path is not None and content is not None:
            raise InputError("%s%s and %s%s are both set; give only one of them." % (
                where, path_key, where, content_key))
        if path is not None:
            material.add(role, read_source(path, where + path_key), where + path_key)
        elif content is not None:
            material.add(role, content.encode("utf-8"), where + content_key)
    if material.has("key"):
        own = item.get("key_passphrase") is not None
        material.unlock_key(item["key_passphrase"] if own else defaults.get("key_passphrase"),
                            (prefix if own else "") + "key_passphrase")
    data = item.get("data") if item.get("data") is not None else defaults.get("data")
    if data is not None:
        material.add("data", data, (prefix if item.get("data") is not None else "") + "data")
    return material


def desired_items(params):
    """[(name, labels, annotations, item_prefix, item)] from name or secrets."""
    if params["secrets"] is not None:
        items = []
        seen = set()
        for index, item in enumerate(params["secrets"]):
            prefix = "secrets[%d]." % index
            if not isinstance(item, dict):
                raise InputError("%s is not a mapping; give name and sources per item." %
                                 prefix.rstrip("."))
            unknown = sorted(set(item) - ITEM_KEYS)
            if unknown:
                raise InputError("%s%s is not a known option; use %s." % (
                    prefix, unknown[0], ", ".join(sorted(ITEM_KEYS))))
            if not item.get("name"):
                raise InputError("%sname is missing; give every item a name." % prefix)
            if item["name"] in seen:
                raise InputError("%sname %s appears twice in secrets; give each Secret once."
                                 % (prefix, item["name"]))
            seen.add(item["name"])
            labels = dict(params["labels"] or {}, **(item.get("labels") or {}))
            annotations = dict(params["annotations"] or {}, **(item.get("annotations") or {}))
            items.append((item["name"], labels, annotations, prefix, item))
        if not items:
            raise InputError("secrets is empty; list at least one Secret or use name.")
        return items
    return [(params["name"], params["labels"] or {}, params["annotations"] or {}, "", {})]


def target_namespaces(params):
    names = params["namespaces"] if params["namespaces"] is not None else [params["namespace"]]
    if not names:
        raise InputError("namespaces is empty; list at least one namespace.")
    ordered = []
    for index, namespace in enumerate(names):
        field = "namespaces[%d]" % index if params["namespaces"] is not None else "namespace"
        validate_namespace_name(namespace, field)
        if namespace not in ordered:  # a namespace listed twice is written once
            ordered.append(namespace)
    return ordered


def plan(params):
    """Everything decided without the cluster: [(name, manifest-per-namespace fn, summary)]."""
    layout = params["layout"]
    planned = []
    for name, labels, annotations, prefix, item in desired_items(params):
        validate_object_name(name, prefix + "name" if prefix else "name")
        validate_labels(labels, prefix + "labels" if item.get("labels") else "labels")
        validate_annotations(annotations,
                             prefix + "annotations" if item.get("annotations") else "annotations")
        if params["state"] == "absent":
            planned.append((name, None, None, None))
            continue
        material = material_for(item, params, prefix)
        data = build_secret_data(layout, material)
        planned.append((name, data, string_map(labels), string_map(annotations)))
    return planned


def source_options():
    """Where a Secret's material comes from; the same for one Secret and for each of O(secrets)."""
    return dict(
        cert_path=dict(type="path"),
        cert_content=dict(type="str"),
        key_path=dict(type="path", no_log=False),
        key_content=dict(type="str", no_log=True),
        key_passphrase=dict(type="str", no_log=True),
        chain_path=dict(type="path"),
        chain_content=dict(type="str"),
        ca_path=dict(type="path"),
        ca_content=dict(type="str"),
        crl_path=dict(type="path"),
        crl_content=dict(type="str"),
        data=dict(type="dict", no_log=True),
    )


def main():
    argument_spec = dict(
        name=dict(type="str"),
        namespace=dict(type="str"),
        namespaces=dict(type="list", elements="str"),
        layout=dict(type="str", default="tls", choices=sorted(LAYOUTS)),
        # not secret itself: the key material inside is marked per suboption
        secrets=dict(type="list", elements="dict", no_log=False, options=dict(
            name=dict(type="str", required=True),
            labels=dict(type="dict"),
            annotations=dict(type="dict"),
            **source_options()
        )),
        labels=dict(type="dict", default={}),
        annotations=dict(type="dict", default={}),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        parallel=dict(type="int", default=8),
        **source_options()
    )
    argument_spec.update(KUBE_AUTH_ARGSPEC)
    module = AnsibleModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        mutually_exclusive=[("namespace", "namespaces"), ("name", "secrets")],
        required_one_of=[("namespace", "namespaces"), ("name", "secrets")],
    )
    params = module.params
    if params["parallel"] < 1 or params["parallel"] > 64:
        module.fail_json(msg="parallel %s is out of range; use 1 to 64." % params["parallel"],
                         changed=False)
    client = None
    try:
        namespaces = target_namespaces(params)
        planned = plan(params)
        client = KubeClient(ConnectionSettings.from_params(params),
                            pool_size=max(params["parallel"], 4))
        result = sync(client, params, namespaces, planned, check_mode=module.check_mode, diff=module._diff)
    except (InputError, KubeError, SecretLayoutError) as error:
        module.fail_json(msg=str(error), changed=False)
    finally:
        if client is not None:
            client.close()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
