#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: zerotrust.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: mesh_policy
short_description: Enforce mutual TLS in an Istio or Linkerd mesh
version_added: 0.1.0
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
author:
  - zerotrust.mtls maintainers (@zerotrust)
extends_documentation_fragment:
  - zerotrust.mtls.kube_auth
attributes:
  check_mode:
    support: full
    description:
      - An object whose declared fields all have the declared values, and that carries no field
        zerotrust.mtls set before and no longer declares, is unchanged without a request. Every
        other write is sent as a server-side dry run and compared with the stored object (new
        objects of one kind in one namespace by one dry run when nothing tells them apart), so
        C(changed) is exact.
  diff_mode:
    support: full
    description: Shows the objects (and the Linkerd namespace annotation) before and after.
  idempotent:
    support: full
    description: A second run with the same options reports C(changed=false).
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
        that does not inject one. V(fail) refuses and lists them, V(warn) applies and
        reports them, V(skip) does not look.
      - Mesh-wide scope skips C(kube-system), C(kube-public), C(kube-node-lease) and the root namespace.
    type: str
    choices: [ fail, warn, skip ]
    default: fail
  state:
    description: V(absent) deletes every object of the policy set in O(namespace) (and releases the Linkerd annotation).
    type: str
    choices: [ present, absent ]
    default: present
  parallel:
    description:
      - How many requests to keep in flight at once (reads, dry runs and writes of all
        namespaces); all share one connection pool.
    type: int
    default: 8
'''

EXAMPLES = r'''
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
'''

RETURN = r'''
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
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.zerotrust.mtls.plugins.module_utils.kube import (
    KUBE_AUTH_ARGSPEC,
    NAMESPACE,
    POD,
    ConnectionSettings,
    KubeClient,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    KubeError,
    comparable,
    kind_for,
    owned_fields,
    resource_path,
    validate_namespace_name,
)
from ansible_collections.zerotrust.mtls.plugins.module_utils.kube_batch import (
    creations_proven_across_namespaces,
    creations_to_prove,
    proof_across_namespaces_cost,
    run_parallel,
)
from ansible_collections.zerotrust.mtls.plugins.module_utils.policy import (
    LINKERD_INBOUND_ANNOTATION,
    POLICY_SET_LABEL,
    MeshPolicy,
    PolicyError,
    apply_needed,
    check_names,
    desired_objects,
    linkerd_namespace_patch,
    managed_kinds,
    objects_to_prune,
    pods_without_sidecar,
    validate,
)


def policy_from_params(params, namespace=None):
    return MeshPolicy(
        name=params["name"],
        namespace=namespace or params["namespace"] or params["root_namespace"],
        mode=params["mode"], selector=params["selector"], port_modes=params["port_modes"],
        root_namespace=params["root_namespace"],
        destination_rule=dict(params["destination_rule"]) if params["destination_rule"]
        else None,
        allow_principals=params["allow_principals"], allow_namespaces=params["allow_namespaces"],
        mesh=params["mesh"], policy_set=params["policy_set"], port=params["port"],
        trust_domain=params["trust_domain"])


def policies_from_params(params):
    """One MeshPolicy per target namespace (O(namespaces), or the one O(namespace))."""
    names = params.get("namespaces")
    if names is None:
        return [policy_from_params(params)]
    if not names:
        raise PolicyError("namespaces is empty; list at least one namespace.", field="namespaces")
    ordered = []
    for index, namespace in enumerate(names):
        try:
            validate_namespace_name(namespace, "namespaces[%d]" % index)
        except KubeError as error:
            raise PolicyError(str(error), field="namespaces")
        if namespace == params["root_namespace"]:
            raise PolicyError("namespaces lists the root namespace %s, where a policy without a "
                              "selector is mesh-wide; write the mesh-wide policy in a task of its "
                              "own with namespace." % namespace, field="namespaces")
        if namespace not in ordered:  # a namespace listed twice is written once
            ordered.append(namespace)
    return [policy_from_params(params, namespace) for namespace in ordered]


def preflight_applies(params, policy):
    return params["preflight"] != "skip" and policy.strict_requested()


def preflight(module, policies, found_by_namespace):
    """The pods STRICT would cut off (all namespaces), or None when the preflight does not
    apply; fails the module under preflight: fail."""
    if not preflight_applies(module.params, policies[0]):
        return None
    found = sorted(pod for policy in policies for pod in found_by_namespace[policy.namespace])
    if found and module.params["preflight"] == "fail":
        proxy = "istio-proxy" if policies[0].mesh == "istio" else "linkerd-proxy"
        module.fail_json(
            msg="preflight: %d pod(s) in scope run without the %s sidecar in a namespace that "
                "does not inject one, and STRICT would cut them off: %s; inject the sidecar "
                "and restart them, start with PERMISSIVE, or set preflight: warn." % (
                    len(found), proxy, ", ".join(found[:20]) + (" ..." if len(found) > 20
                                                                else "")),
            pods_without_sidecar=found, changed=False)
    if found:
        module.warn("preflight: STRICT applied while %d pod(s) have no sidecar: %s" % (
            len(found), ", ".join(found[:20])))
    return found


def namespace_view(namespace_obj):
    metadata = (namespace_obj or {}).get("metadata") or {}
    return {"annotations": dict((k, v) for k, v in (metadata.get("annotations") or {}).items()
                                if k == LINKERD_INBOUND_ANNOTATION)}


def object_view(obj):
    if obj is None:
        return None
    view = comparable(obj)
    metadata = view.get("metadata") or {}
    view["metadata"] = dict((k, metadata[k]) for k in ("name", "namespace", "labels")
                            if k in metadata)
    return view


def list_managed(client, policy):
    selector = "%s=%s,%s=%s" % (MANAGED_BY_LABEL, MANAGED_BY_VALUE, POLICY_SET_LABEL,
                                policy.policy_set)
    found = []
    for api_version, kind_name in managed_kinds(policy.mesh):
        kind = kind_for(api_version, kind_name)
        for item in client.list(kind, policy.namespace, selector):
            item.setdefault("apiVersion", api_version)
            item.setdefault("kind", kind_name)
            found.append(item)
    return found


def prefetch(client, params, policies):
    """For a call across namespaces, what one request can read for all of them: the declared
    objects by one LIST per kind and name across the cluster (fieldSelector metadata.name),
    and the namespaces by one LIST. Each is None where this user may not list cluster-wide
    (403): read_namespace then reads per namespace."""
    found = dict(objects=None, namespaces=None)
    if len(policies) < 2:
        return found
    wanted = set(policy.namespace for policy in policies)
    if params["state"] == "present":
        keys = sorted(set((m["apiVersion"], m["kind"], m["metadata"]["name"])
                          for policy in policies for m in desired_objects(policy)))

        def list_named(key):
            api_version, kind_name, name = key
            kind = kind_for(api_version, kind_name)
            answer = client.request("GET", resource_path(kind), "list", kind,
                                    query=[("fieldSelector", "metadata.name=" + name)])
            items = []
            for item in answer.get("items") or []:
                item.setdefault("apiVersion", api_version)
                item.setdefault("kind", kind_name)
                items.append(((kind.plural, item["metadata"].get("namespace"), name), item))
            return items
        try:
            found["objects"] = dict(pair for items in run_parallel(list_named, keys, params["parallel"])
                                    for pair in items if pair[0][1] in wanted)
        except KubeError as error:
            if error.status != 403:
                raise
    try:
        found["namespaces"] = dict((ns["metadata"]["name"], ns) for ns in client.list(NAMESPACE))
    except KubeError as error:
        if error.status != 403:
            raise
    return found


def read_namespace(client, params, policy, found):
    """What one namespace's plan needs, in the fewest requests: the stored objects the policy
    declares (from prefetch, else a GET each), the objects of the set (prune, absent), the
    namespace itself (the preflight, Linkerd's annotation; from prefetch, else a GET) and the
    pods (the preflight). Without prefetch, the namespace is looked up on its own only when
    nothing read proves that it exists."""
    present = params["state"] == "present"
    view = dict(exists=None, namespace_obj=None, existing=[], managed=[], pods_without_sidecar=[])
    if present:
        view["manifests"] = desired_objects(policy)
        for m in view["manifests"]:
            kind = kind_for(m["apiVersion"], m["kind"])
            if found["objects"] is not None:
                existing = found["objects"].get((kind.plural, policy.namespace, m["metadata"]["name"]))
            else:
                existing = client.get(kind, m["metadata"]["name"], policy.namespace)
            view["existing"].append(existing)
    if not present or params["prune"]:
        view["managed"] = list_managed(client, policy)
    needs_namespace = policy.mesh == "linkerd" or (
        present and preflight_applies(params, policy) and policy.scope != "mesh")
    if found["namespaces"] is not None:
        view["namespace_obj"] = found["namespaces"].get(policy.namespace)
        view["exists"] = view["namespace_obj"] is not None
    elif needs_namespace:
        view["namespace_obj"] = client.get(NAMESPACE, policy.namespace)
        view["exists"] = view["namespace_obj"] is not None
    elif any(view["existing"]) or view["managed"]:
        view["exists"] = True
    else:
        view["exists"] = client.namespace_exists(policy.namespace)
    if view["exists"] is not False and present and preflight_applies(params, policy):
        if policy.scope == "mesh":
            pods = client.list(POD)
            namespaces = dict((ns["metadata"]["name"], ns) for ns in client.list(NAMESPACE))
        else:
            pods = client.list(POD, policy.namespace)
            namespaces = {policy.namespace: view["namespace_obj"]}
        view["pods_without_sidecar"] = pods_without_sidecar(policy, pods, namespaces)
    return view


def plan_namespace(params, policy, view):
    """[(manifest, existing, reason)] to apply and [(object, action)] to delete."""
    applies, deletes = [], []
    if params["state"] == "present":
        for manifest, existing in zip(view["manifests"], view["existing"]):
            applies.append((manifest, existing,
                            apply_needed(existing, manifest, owned_fields(existing or {}))))
        namespace_patch = linkerd_namespace_patch(policy)
        if namespace_patch is not None:
            applies.append((namespace_patch, view["namespace_obj"], "namespace"))
        if params["prune"]:
            deletes = [(obj, "pruned") for obj in objects_to_prune(view["managed"],
                                                                   view["manifests"])]
    else:
        deletes = [(obj, "deleted") for obj in view["managed"]]
        if policy.mesh == "linkerd":
            annotations = owned_fields(view["namespace_obj"] or {}).get("f:metadata", {}).get(
                "f:annotations", {})
            if "f:" + LINKERD_INBOUND_ANNOTATION in annotations:
                release = {"apiVersion": "v1", "kind": "Namespace",
                           "metadata": {"name": policy.namespace}}
                applies.append((release, view["namespace_obj"], "release"))
    return applies, deletes


def run(module, client, policies):
    params = module.params
    check_mode = module.check_mode
    force = params["force_conflicts"]
    workers = params["parallel"]
    field = "namespaces" if params.get("namespaces") is not None else "namespace"

    # Read every namespace side by side; nothing is written before all are read and proven.
    found = prefetch(client, params, policies)
    views = run_parallel(lambda policy: read_namespace(client, params, policy, found), policies, workers)
    for policy, view in zip(policies, views):
        if view["exists"] is False:
            raise KubeError("namespace %s does not exist; create it first or correct %s."
                            % (policy.namespace, field), field=field)
    result = dict(changed=False, objects=[], scope=policies[0].scope)
    missing = preflight(module, policies, dict((policy.namespace, view["pods_without_sidecar"])
                                               for policy, view in zip(policies, views)))
    if missing is not None:
        result["pods_without_sidecar"] = missing
    applies, deletes = [], []
    for policy, view in zip(policies, views):
        namespace_applies, namespace_deletes = plan_namespace(params, policy, view)
        applies += namespace_applies
        deletes += namespace_deletes
    if params["state"] == "present":
        result["manifests"] = [m for view in views for m in view["manifests"]]

    # Prove: a server-side dry run of every write whose outcome is not certain (an update,
    # the Linkerd annotation, a deletion) and of the creations that prove all creations
    # (kube_batch.creations_to_prove). Schema (CEL) errors, RBAC, admission and field-manager
    # conflicts stop the call here, in every namespace, before anything is stored. What
    # would change nothing is neither proven nor written.
    creations = []
    for entry in applies:
        if entry[2] == "created":
            kind = kind_for(entry[0]["apiVersion"], entry[0]["kind"])
            creations.append((entry[0]["metadata"]["namespace"],
                              kind.api_version.rpartition("/")[0], kind.plural, entry[0], entry))
    proving = None
    if found["namespaces"] is not None and len(creations) > proof_across_namespaces_cost(creations):
        proving = creations_proven_across_namespaces(client, creations, found["namespaces"], workers)
    if proving is None:
        proving = creations_to_prove(client, [c[:3] + c[4:] for c in creations], workers,
                                     only_repeated=True)
    proven = set(id(entry) for entry in proving)
    to_prove = [entry for entry in applies if entry[2] is not None and
                (entry[2] != "created" or id(entry) in proven)]
    predicted = dict(zip([id(entry) for entry in to_prove], run_parallel(
        lambda entry: client.apply(entry[0], dry_run=True, force_conflicts=force),
        to_prove, workers)))
    run_parallel(lambda item: client.delete(kind_for(item[0]["apiVersion"], item[0]["kind"]),
                                            item[0]["metadata"]["name"],
                                            item[0]["metadata"].get("namespace"), dry_run=True),
                 deletes, workers)

    before, after, writes = [], [], []
    for entry in applies:
        manifest, existing, reason = entry
        metadata = manifest["metadata"]
        outcome = predicted.get(id(entry), manifest if reason == "created" else existing)
        if manifest["kind"] == "Namespace":
            changed = reason == "release" or namespace_view(existing) != namespace_view(outcome)
            action = "updated" if changed else "unchanged"
            if changed:
                before.append({"namespace": metadata["name"], **namespace_view(existing)})
                after.append({"namespace": metadata["name"], **namespace_view(outcome)})
        else:
            changed = reason is not None and comparable(existing) != comparable(outcome)
            action = ("created" if existing is None else "updated") if changed else "unchanged"
            if changed:
                before.append(object_view(existing))
                after.append(object_view(outcome))
        if changed:
            writes.append(manifest)
        result["objects"].append(dict(kind=manifest["kind"],
                                      namespace=metadata.get("namespace", metadata["name"]),
                                      name=metadata["name"], action=action))
        result["changed"] = result["changed"] or changed

    if not check_mode:
        run_parallel(lambda manifest: client.apply(manifest, force_conflicts=force), writes, workers)
        run_parallel(lambda item: client.delete(kind_for(item[0]["apiVersion"], item[0]["kind"]),
                                                item[0]["metadata"]["name"],
                                                item[0]["metadata"].get("namespace")),
                     deletes, workers)
    for obj, action in deletes:
        before.append(object_view(obj))
        result["objects"].append(dict(kind=obj["kind"], namespace=obj["metadata"]["namespace"],
                                      name=obj["metadata"]["name"], action=action))
        result["changed"] = True

    if module._diff:
        result["diff"] = dict(before=before, after=after)
    return result


def main():
    argument_spec = dict(
        mesh=dict(type="str", default="istio", choices=["istio", "linkerd"]),
        mode=dict(type="str", choices=["STRICT", "PERMISSIVE", "DISABLE", "UNSET"]),
        namespace=dict(type="str"),
        namespaces=dict(type="list", elements="str"),
        name=dict(type="str", default="default"),
        selector=dict(type="dict"),
        port_modes=dict(type="dict"),
        root_namespace=dict(type="str", default="istio-system"),
        destination_rule=dict(type="dict", options=dict(
            host=dict(type="str", required=True),
            tls_mode=dict(type="str", default="ISTIO_MUTUAL",
                          choices=["ISTIO_MUTUAL", "MUTUAL", "SIMPLE", "DISABLE"]),
            credential_name=dict(type="str"),
            sni=dict(type="str"),
            subject_alt_names=dict(type="list", elements="str"),
        )),
        allow_principals=dict(type="list", elements="str", default=[]),
        allow_namespaces=dict(type="list", elements="str", default=[]),
        port=dict(type="int"),
        trust_domain=dict(type="str", default="cluster.local"),
        policy_set=dict(type="str"),
        prune=dict(type="bool", default=False),
        preflight=dict(type="str", default="fail", choices=["fail", "warn", "skip"]),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        parallel=dict(type="int", default=8),
    )
    argument_spec.update(KUBE_AUTH_ARGSPEC)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           mutually_exclusive=[("namespace", "namespaces")])
    if not 1 <= module.params["parallel"] <= 64:
        module.fail_json(msg="parallel %s is out of range; use 1 to 64." % module.params["parallel"],
                         changed=False)
    client = None
    try:
        policies = policies_from_params(module.params)
        for policy in policies:
            if module.params["state"] == "present":
                validate(policy)
            else:
                # Removal needs only a valid name and namespace, not a complete policy.
                check_names(policy)
        client = KubeClient(ConnectionSettings.from_params(module.params),
                            pool_size=max(module.params["parallel"], 4))
        result = run(module, client, policies)
    except (PolicyError, KubeError) as error:
        module.fail_json(msg=str(error), changed=False)
    finally:
        if client is not None:
            client.close()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
