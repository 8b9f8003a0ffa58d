# -*- coding: utf-8 -*-
# Copyright: zerotrust.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kubernetes API access for the collection's modules: the client.

One :class:`KubeClient` per module run: it holds a single ``ApiClient`` (one urllib3
connection pool, reused by every request and safe to share between threads), speaks
server-side apply with the field manager ``zerotrust.mtls``, implements check mode as a
server-side dry run, retries what is worth retrying, and turns every failure into one
sentence an operator can act on (kube_errors). Where it connects is kube_connection's
business; nothing in here imports AnsibleModule.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import time
from collections import namedtuple

from ansible_collections.zerotrust.mtls.plugins.module_utils.kube_connection import (
    is_connection_error,
    open_api_client,
)
from ansible_collections.zerotrust.mtls.plugins.module_utils.kube_errors import (
    KubeError,
    api_error_sentence,
    status_body,
    unreachable_sentence,
)

FIELD_MANAGER = "zerotrust.mtls"
APPLY_PATCH_CONTENT_TYPE = "application/apply-patch+yaml"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "zerotrust.mtls"

# Statuses that say "try again": throttling and transient server trouble. 409 and 422
# are answers about the object, never retried.
RETRYABLE_STATUSES = frozenset([429, 500, 502, 503, 504])
DEFAULT_ATTEMPTS = 4
DEFAULT_BACKOFF_SECONDS = 0.2
MAX_RETRY_AFTER_SECONDS = 5.0
DEFAULT_TIMEOUT = (5, 30)  # (connect, read) seconds

ResourceKind = namedtuple("ResourceKind", ["api_version", "kind", "plural", "namespaced", "provided_by"])

SECRET = ResourceKind("v1", "Secret", "secrets", True, None)
NAMESPACE = ResourceKind("v1", "Namespace", "namespaces", False, None)
POD = ResourceKind("v1", "Pod", "pods", True, None)
CONFIG_MAP = ResourceKind("v1", "ConfigMap", "configmaps", True, None)
PEER_AUTHENTICATION = ResourceKind("security.istio.io/v1", "PeerAuthentication", "peerauthentications", True, "Istio")
ISTIO_AUTHORIZATION_POLICY = ResourceKind("security.istio.io/v1", "AuthorizationPolicy", "authorizationpolicies", True, "Istio")
DESTINATION_RULE = ResourceKind("networking.istio.io/v1", "DestinationRule", "destinationrules", True, "Istio")
LINKERD_SERVER = ResourceKind("policy.linkerd.io/v1beta3", "Server", "servers", True, "Linkerd")
LINKERD_AUTHORIZATION_POLICY = ResourceKind("policy.linkerd.io/v1alpha1", "AuthorizationPolicy", "authorizationpolicies", True, "Linkerd")
MESH_TLS_AUTHENTICATION = ResourceKind("policy.linkerd.io/v1alpha1", "MeshTLSAuthentication", "meshtlsauthentications", True, "Linkerd")

KNOWN_KINDS = (
    SECRET,
    NAMESPACE,
    POD,
    CONFIG_MAP,
    PEER_AUTHENTICATION,
    ISTIO_AUTHORIZATION_POLICY,
    DESTINATION_RULE,
    LINKERD_SERVER,
    LINKERD_AUTHORIZATION_POLICY,
    MESH_TLS_AUTHENTICATION,
)


def kind_for(api_version, kind):
    """The ResourceKind of a manifest, for the kinds this collection writes."""
    for known in KNOWN_KINDS:
        if known.api_version == api_version and known.kind == kind:
            return known
    raise KubeError("%s %s is not a kind this collection manages." % (api_version, kind))


def resource_path(kind, namespace=None, name=None):
    base = "/api/v1" if kind.api_version == "v1" else "/apis/" + kind.api_version
    if kind.namespaced and namespace:
        base += "/namespaces/" + namespace
    base += "/" + kind.plural
    if name:
        base += "/" + name
    return base


class KubeClient(object):
    """One connection pool for the whole module run."""

    def __init__(self, settings, attempts=DEFAULT_ATTEMPTS, backoff=DEFAULT_BACKOFF_SECONDS, timeout=DEFAULT_TIMEOUT, sleep=time.sleep, pool_size=16):
        self.settings = settings
        self.api_client, self.server, self.source = open_api_client(settings, pool_size)
        self.attempts = attempts
        self.backoff = backoff
        self.timeout = timeout
        self._sleep = sleep

    def close(self):
        try:
            self.api_client.close()
        except Exception:  # closing is best effort at the end of a run
            pass

    # -- transport -------------------------------------------------------------------
    def request(self, method, path, verb, kind, name=None, namespace=None, query=None, body=None, content_type="application/json", allow_404=False):
        """Send one request with bounded retries; the decoded JSON answer, or None on an
        allowed 404. Raises KubeError with one sentence otherwise."""
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        params = self.api_client.param_serialize(
            method=method, resource_path=path, query_params=list(query or []), header_params=headers, body=body, auth_settings=["BearerToken"]
        )
        last_error = None
        for attempt in range(self.attempts):
            delay = self.backoff * (2**attempt)
            try:
                response = self.api_client.call_api(*params, _request_timeout=self.timeout)
                raw = response.read()
            except Exception as error:  # urllib3 connection errors, SSL errors, resets
                if not is_connection_error(error):
                    raise
                last_error = unreachable_sentence(self.server, self.source, error)
                if attempt + 1 < self.attempts:
                    self._sleep(delay)
                    continue
                raise KubeError(last_error)
            status = response.status
            if 200 <= status < 300:
                return json.loads(raw) if raw else {}
            if status == 404 and allow_404:
                return self._absent(raw, verb, kind, name, namespace)
            if status in RETRYABLE_STATUSES and attempt + 1 < self.attempts:
                self._sleep(_retry_delay(response, delay))
                continue
            raise KubeError(api_error_sentence(status, status_body(raw), verb, kind, name, namespace, self.server, self.source), status=status)
        raise KubeError(last_error or "the request to %s failed." % self.server)

    def _absent(self, raw, verb, kind, name, namespace):
        """None for a 404 that says "this object is absent"; a missing kind or namespace
        is still an error the caller must hear about."""
        decoded = status_body(raw)
        details = decoded.get("details") or {}
        if details.get("name") == name and details.get("kind") == kind.plural:
            return None
        raise KubeError(api_error_sentence(404, decoded, verb, kind, name, namespace, self.server, self.source), status=404)

    # -- verbs ---------------------------------------------------------------------------
    def get(self, kind, name, namespace=None):
        """The object, or None when it does not exist."""
        return self.request("GET", resource_path(kind, namespace, name), "get", kind, name, namespace, allow_404=True)

    def list(self, kind, namespace=None, label_selector=None):
        """The items of one LIST (a missing namespace answers an empty list)."""
        query = [("labelSelector", label_selector)] if label_selector else []
        answer = self.request("GET", resource_path(kind, namespace), "list", kind, None, namespace, query=query)
        return answer.get("items") or []

    def apply(self, manifest, dry_run=False, force_conflicts=False):
        """Server-side apply as field manager zerotrust.mtls; returns the server's object."""
        kind = kind_for(manifest["apiVersion"], manifest["kind"])
        metadata = manifest["metadata"]
        query = [("fieldManager", FIELD_MANAGER)]
        if force_conflicts:
            query.append(("force", "true"))
        if dry_run:
            query.append(("dryRun", "All"))
        return self.request(
            "PATCH",
            resource_path(kind, metadata.get("namespace"), metadata["name"]),
            "patch",
            kind,
            metadata["name"],
            metadata.get("namespace"),
            query=query,
            body=manifest,
            content_type=APPLY_PATCH_CONTENT_TYPE,
        )

    def delete(self, kind, name, namespace=None, dry_run=False):
        """Delete; True when something was (or in dry run would be) deleted."""
        options = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
        if dry_run:
            # With a DeleteOptions body the server ignores query parameters, so dryRun
            # must be in the body: a dryRun=All query here would delete for real.
            options["dryRun"] = ["All"]
        answer = self.request("DELETE", resource_path(kind, namespace, name), "delete", kind, name, namespace, body=options, allow_404=True)
        return answer is not None

    def namespace_exists(self, namespace):
        """True/False, or None when this user may not read namespaces (then the write
        itself will tell)."""
        try:
            return self.get(NAMESPACE, namespace) is not None
        except KubeError as error:
            if error.status == 403:
                return None
            raise


def _retry_delay(response, backoff):
    """The server's Retry-After (bounded) where it sends one, else the backoff."""
    try:
        return min(float(response.getheader("Retry-After")), MAX_RETRY_AFTER_SECONDS)
    except (TypeError, ValueError):
        return backoff
