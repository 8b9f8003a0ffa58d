#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: zerotrust.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: mesh_policy
short_description: Mutual TLS mode, client TLS settings and allowed peers of an Istio or Linkerd mesh
version_added: 0.1.0
author:
  - zerotrust.mtls maintainers (@zerotrust)
description:
  - With O(mesh=istio) (default) writes a C(PeerAuthentication) at mesh level (in
    O(root_namespace) without a selector), namespace level or workload level (with
    O(selector)) with optional port-level modes, a C(DestinationRule) with client TLS
    settings, and an C(AuthorizationPolicy) that allows named principals (SPIFFE IDs) or
    namespaces.
  - With O(mesh=linkerd), whose mTLS is always on, the policy is about who may connect -
    O(mode) sets the namespace annotation C(config.linkerd.io/default-inbound-policy)
    (V(STRICT) gives C(all-authenticated), V(PERMISSIVE) C(all-unauthenticated)),
    O(port_modes) become C(Server) objects with that access policy, and
    O(allow_principals)/O(allow_namespaces) become a C(Server) for O(port), a
    C(MeshTLSAuthentication) and an C(AuthorizationPolicy) (C(policy.linkerd.io)).
  - The meshes' own rules are checked before the API server sees anything - port-level
    modes need a selector, a selector in the root namespace (which Istio ignores) is an
    error, an unknown mode is an error.
  - Before V(STRICT), the preflight lists the pods in scope that have no sidecar and whose
    namespace does not inject one - exactly the workloads STRICT would cut off.
  - Every object carries the labels C(app.kubernetes.io/managed-by=zerotrust.mtls) and
    C(mtls.zerotrust.io/policy-set=<policy_set>), so O(prune) can remove the objects of the
    set that are no longer declared.
extends_documentation_fragment:
  - zerotrust.mtls.attributes
  - zerotrust.mtls.attributes.in_process_action
  - zerotrust.mtls.kube_auth
  - zerotrust.mtls.kube_apply
attributes:
  diff_mode:
    details:
      - Shows the objects (and the Linkerd namespace annotation) before and after.
options:
  mesh:
    description: The service mesh to configure.
    type: str
    choices: [ istio, linkerd ]
    default: istio
  mode:
    description:
      - Mutual TLS mode of the C(PeerAuthentication) (Istio) or the namespace default
        inbound policy (Linkerd; V(DISABLE) is not possible there). V(UNSET) inherits
        from the parent level (Istio) or drops the annotation (Linkerd).
      - Omit it to write only O(destination_rule) or an authorization.
    type: str
    choices: [ STRICT, PERMISSIVE, DISABLE, UNSET ]
  namespace:
    description:
      - Namespace of the policy. The root namespace without O(selector) means mesh-wide.
      - Defaults to O(root_namespace).
    type: str
  namespaces:
    description:
      - Apply the same policy in each of these namespaces in one call (the objects of each
        namespace are the ones O(namespace) would write there). Mutually exclusive with O(namespace).
      - Nothing is written unless every namespace exists and every write is accepted - RBAC,
        admission, schema and field-manager conflicts of any namespace stop the call before the
        first write. The root namespace is refused here; write a mesh-wide policy on its own.
      - The preflight (before V(STRICT)) covers the pods of every namespace and fails once, listing them all.
    type: list
    elements: str
  name:
    description: Name of the objects written (Linkerd port Servers get C(<name>-<port>)).
    type: str
    default: default
  selector:
    description:
      - Workload labels (C(matchLabels)), given as the label map itself or wrapped in a C(matchLabels) key.
    type: dict
  port_modes:
    description:
      - Port-level modes, a map of port number to mode such as V(PERMISSIVE). Needs O(selector).
    type: dict
  root_namespace:
    description: Istio's root namespace, where a selector-less PeerAuthentication applies mesh-wide.
    type: str
    default: istio-system
  destination_rule:
    description: Client-side TLS towards a host (Istio only).
    type: dict
    suboptions:
      host:
        description: The service host, for example C(web.shop.svc.cluster.local).
        type: str
        required: true
      tls_mode:
        description: C(trafficPolicy.tls.mode).
        type: str
        choices: [ ISTIO_MUTUAL, MUTUAL, SIMPLE, DISABLE ]
        default: ISTIO_MUTUAL
      credential_name:
        description: Secret with the client certificate (required for V(MUTUAL)); see M(zerotrust.mtls.mtls_secret).
        type: str
      sni:
        description: SNI to send.
        type: str
      subject_alt_names:
        description: SANs the server certificate must carry.
        type: list
        elements: str
  allow_principals:
    description:
      - SPIFFE IDs (C(spiffe://cluster.local/ns/shop/sa/web)) allowed to connect. Istio gets
        them without the scheme; Linkerd gets the proxy identity
        C(web.shop.serviceaccount.identity.linkerd.cluster.local).
    type: list
    elements: str
    default: []
  allow_namespaces:
    description: Namespaces whose workloads are allowed to connect.
    type: list
    elements: str
    default: []
  port:
    description: Port of the workload the Linkerd authorization protects (mesh linkerd only).
    type: int
  trust_domain:
    description: Trust domain used for Linkerd identities of O(allow_namespaces).
    type: str
    default: cluster.local
  policy_set:
    description: Value of the C(mtls.zerotrust.io/policy-set) label; defaults to O(name).
    type: str
  prune:
    description:
      - Delete the objects of this policy set (in O(namespace)) that this call no longer
        declares, for example the C(AuthorizationPolicy) after O(allow_principals) was emptied.
    type: bool
    default: false
  preflight:
    description:
      - What to do before V(STRICT) when pods in scope run without a sidecar in a namespace
        that does not inject one. V(fail) refuses and lists them (in check mode too), V(warn)
        applies and reports them, V(skip) does not look.
      - Mesh-wide scope skips C(kube-system), C(kube-public), C(kube-node-lease) and the root namespace.
    type: str
    choices: [ fail, warn, skip ]
    default: fail
  state:
    description: V(absent) deletes every object of the policy set in O(namespace) (and releases the Linkerd annotation).
    type: str
    choices: [ present, absent ]
    default: present
"""

EXAMPLES = r"""
- name: STRICT mTLS for the whole mesh
  zerotrust.mtls.mesh_policy:
    name: default
    namespace: istio-system
    mode: STRICT

- name: Staging stays PERMISSIVE while its workloads are migrated
  zerotrust.mtls.mesh_policy:
    namespace: staging
    mode: PERMISSIVE
    preflight: skip

- name: The same STRICT policy in every tenant namespace, in one call
  zerotrust.mtls.mesh_policy:
    namespaces: "{{ tenant_namespaces }}"
    mode: STRICT
    allow_namespaces: [istio-ingress]

- name: Payments STRICT, but the metrics port of the api stays plain
  zerotrust.mtls.mesh_policy:
    name: api
    namespace: payments
    selector:
      app: api
    mode: STRICT
    port_modes:
      9090: PERMISSIVE

- name: Only the checkout service account may call payments
  zerotrust.mtls.mesh_policy:
    name: payments-callers
    namespace: payments
    selector:
      app: api
    allow_principals:
      - spiffe://cluster.local/ns/shop/sa/checkout
    prune: true

- name: Egress to a partner with our client certificate
  zerotrust.mtls.mesh_policy:
    name: partner
    namespace: shop
    destination_rule:
      host: api.partner.example
      tls_mode: MUTUAL
      credential_name: partner-client-tls

- name: Linkerd - authenticated clients only in payments, only checkout on port 8443
  zerotrust.mtls.mesh_policy:
    mesh: linkerd
    name: api
    namespace: payments
    mode: STRICT
- name: Linkerd - port 8443 of the api admits checkout only
  zerotrust.mtls.mesh_policy:
    mesh: linkerd
    name: api-callers
    namespace: payments
    selector:
      app: api
    port: 8443
    allow_principals:
      - spiffe://cluster.local/ns/shop/sa/checkout
"""

RETURN = r"""
objects:
  description: What happened to each object of the policy set.
  returned: always
  type: list
  elements: dict
  contains:
    kind:
      description: Kind of the object (C(Namespace) for the Linkerd annotation).
      type: str
      sample: PeerAuthentication
    namespace:
      description: Namespace of the object.
      type: str
      sample: payments
    name:
      description: Name of the object.
      type: str
      sample: default
    action:
      description: V(created), V(updated), V(unchanged), V(deleted) or V(pruned).
      type: str
      sample: created
  sample:
    - kind: PeerAuthentication
      namespace: payments
      name: default
      action: created
manifests:
  description: The manifests this call declared (after validation), as sent to the API server.
  returned: when O(state=present)
  type: list
  elements: dict
  sample:
    - apiVersion: security.istio.io/v1
      kind: PeerAuthentication
      metadata:
        name: default
        namespace: payments
      spec:
        mtls:
          mode: STRICT
pods_without_sidecar:
  description: C(namespace/pod) of the pods in scope that STRICT would cut off (preflight).
  returned: when the preflight ran
  type: list
  elements: str
  sample: [ "payments/legacy-batch-7d9f" ]
scope:
  description: V(mesh), V(namespace) or V(workload).
  returned: always
  type: str
  sample: namespace
"""

from ansible_collections.zerotrust.mtls.plugins.module_utils import module_backend, policy_apply


def main():
    module_backend.module_main(policy_apply)


if __name__ == "__main__":
    main()
