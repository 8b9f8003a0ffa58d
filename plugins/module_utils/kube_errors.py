# -*- coding: utf-8 -*-
# Copyright: zerotrust.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What went wrong with a Kubernetes request, told as one sentence an operator can act on.

``KubeError`` is the error of every Kubernetes failure; the functions here turn an API
server's answer (or a connection failure) into its sentence. Pure: no client, no server,
unit-tested on their own. Only the server's own ``message``/``details`` are used, never the
request, so no Secret data can leak into a sentence.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re

from ansible_collections.zerotrust.mtls.plugins.module_utils.errors import MtlsError


class KubeError(MtlsError):
    """A Kubernetes failure told as one sentence; ``status`` is the HTTP status or None."""

    def __init__(self, message, status=None, field=None):
        super(KubeError, self).__init__(message, field)
        self.status = status


def status_body(raw):
    """The decoded Status object of an answer, or {} when it is not one."""
    try:
        body = json.loads(raw)
    except (TypeError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


_FORBIDDEN_PATTERN = re.compile(
    r'User "(?P<user>[^"]*)" cannot (?P<verb>[\w-]+) resource "(?P<resource>[^"]*)"'
    r'(?: in API group "(?P<group>[^"]*)")?'
    r'(?: in the namespace "(?P<namespace>[^"]*)")?'
)


def _object_label(kind, name, namespace):
    if name and namespace:
        return "%s %s/%s" % (kind.kind, namespace, name)
    if name:
        return "%s %s" % (kind.kind, name)
    if namespace:
        return "%s objects in namespace %s" % (kind.kind, namespace)
    return "%s objects" % kind.kind


def _forbidden_sentence(message, verb, target):
    match = _FORBIDDEN_PATTERN.search(message)
    if not match:
        return "forbidden (403) to %s %s: %s." % (verb, target, message.rstrip(".") or "no reason given")
    where = (" in namespace %s" % match.group("namespace")) if match.group("namespace") else " cluster-wide"
    group = match.group("group")
    resource = match.group("resource") + (("." + group) if group else "")
    return "forbidden (403): user %s may not %s %s%s; grant it through RBAC or use a context that has that right." % (
        match.group("user"),
        match.group("verb"),
        resource,
        where,
    )


def _not_found_sentence(message, details, kind, target, namespace):
    if details.get("kind") == "namespaces" or (namespace and 'namespaces "%s" not found' % namespace in message):
        return "namespace %s does not exist; create it first or correct the namespace." % (details.get("name") or namespace)
    if not details.get("name") and "could not find the requested resource" in message:
        return kind_missing_sentence(kind)
    return "%s was not found." % target


def _conflict_sentence(message, details, target):
    causes = details.get("causes") or []
    conflicts = [c.get("message", "") for c in causes if c.get("message")]
    if "conflict" in message.lower() and (conflicts or "manager" in message):
        managers = sorted(set(re.findall(r'conflict with "([^"]+)"', message)))
        fields = sorted(set(c.get("field", "") for c in causes if c.get("field")))
        return "field manager conflict on %s: %s owned by %s; set force_conflicts: true to take them over." % (
            target,
            ", ".join(fields) or "fields",
            ", ".join(managers) or "another manager",
        )
    return "conflict on %s (409): %s." % (target, message.rstrip("."))


def api_error_sentence(status, body, verb, kind, name=None, namespace=None, server=None, source=None):
    """One sentence for a failed API call; ``body`` is the decoded Status object the API
    server answered with (may be empty)."""
    message = (body.get("message") or "").strip()
    details = body.get("details") or {}
    target = _object_label(kind, name, namespace)
    reason = message.rstrip(".") or "no reason given"
    if status == 401:
        return "the API server %s rejected the credentials from %s (401 Unauthorized); refresh the token or client certificate." % (
            server or "",
            source or "the configured connection",
        )
    if status == 403:
        return _forbidden_sentence(message, verb, target)
    if status == 404:
        return _not_found_sentence(message, details, kind, target, namespace)
    if status == 409:
        return _conflict_sentence(message, details, target)
    if status == 422:
        return "the API server rejected %s as invalid: %s." % (target, message.rstrip("."))
    if status == 429:
        return "the API server %s kept throttling (429) the %s of %s; retry later." % (server or "", verb, target)
    if status and status >= 500:
        return "the API server %s failed (%s) to %s %s: %s." % (server or "", status, verb, target, reason)
    return "%s %s failed with HTTP %s: %s." % (verb, target, status, reason)


def kind_missing_sentence(kind):
    if kind.provided_by:
        return "the %s CRD (%s.%s) is not installed — install %s first." % (kind.kind, kind.plural, kind.api_version.split("/")[0], kind.provided_by)
    return "the API server does not serve %s %s." % (kind.api_version, kind.kind)


def unreachable_sentence(server, source, error):
    """The API server could not be reached: ``error`` is the connection failure."""
    return "cannot reach the Kubernetes API server at %s (from %s): %s; check that it is running and that the kubeconfig points to it." % (
        server,
        source,
        _connection_reason(error),
    )


def _connection_reason(error):
    text = str(error)
    for needle, reason in (
        ("Connection refused", "connection refused"),
        ("timed out", "connection timed out"),
        ("Connection reset", "connection reset"),
        ("Name or service not known", "host name does not resolve"),
        ("CERTIFICATE_VERIFY_FAILED", "its TLS certificate is not trusted (set ca_cert)"),
        ("RemoteDisconnected", "the server closed the connection"),
    ):
        if needle in text:
            return reason
    return type(error).__name__
