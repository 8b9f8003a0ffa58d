# -*- coding: utf-8 -*-
# Copyright: zerotrust.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kubernetes API access for the collection's modules.

One :class:`KubeClient` per module run: it builds a single ``ApiClient`` (one urllib3
connection pool, reused by every request and safe to share between threads), speaks
server-side apply with the field manager ``zerotrust.mtls``, implements check mode as a
server-side dry run, retries what is worth retrying, and turns every failure into one
sentence an operator can act on. Nothing in here imports AnsibleModule.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import time
from collections import namedtuple

from ansible_collections.zerotrust.mtls.plugins.module_utils.errors import MtlsError

try:
    import urllib3
    from kubernetes import client as kube_client
    from kubernetes import config as kube_config
    from kubernetes.config.config_exception import ConfigException
    HAS_KUBERNETES = True
    KUBERNETES_IMPORT_ERROR = None
except ImportError as import_error:  # pragma: no cover - reported by the modules
    HAS_KUBERNETES = False
    KUBERNETES_IMPORT_ERROR = import_error

    class ConfigException(Exception):
        """Stand-in so the except clauses stay valid without the client."""

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

ResourceKind = namedtuple(
    "ResourceKind", ["api_version", "kind", "plural", "namespaced", "provided_by"])

SECRET = ResourceKind("v1", "Secret", "secrets", True, None)
NAMESPACE = ResourceKind("v1", "Namespace", "namespaces", False, None)
POD = ResourceKind("v1", "Pod", "pods", True, None)
PEER_AUTHENTICATION = ResourceKind(
    "security.istio.io/v1", "PeerAuthentication", "peerauthentications", True, "Istio")
ISTIO_AUTHORIZATION_POLICY = ResourceKind(
    "security.istio.io/v1", "AuthorizationPolicy", "authorizationpolicies", True, "Istio")
DESTINATION_RULE = ResourceKind(
    "networking.istio.io/v1", "DestinationRule", "destinationrules", True, "Istio")
LINKERD_SERVER = ResourceKind(
    "policy.linkerd.io/v1beta3", "Server", "servers", True, "Linkerd")
LINKERD_AUTHORIZATION_POLICY = ResourceKind(
    "policy.linkerd.io/v1alpha1", "AuthorizationPolicy", "authorizationpolicies", True,
    "Linkerd")
MESH_TLS_AUTHENTICATION = ResourceKind(
    "policy.linkerd.io/v1alpha1", "MeshTLSAuthentication", "meshtlsauthentications", True,
    "Linkerd")

KNOWN_KINDS = (SECRET, NAMESPACE, POD, PEER_AUTHENTICATION, ISTIO_AUTHORIZATION_POLICY,
               DESTINATION_RULE, LINKERD_SERVER, LINKERD_AUTHORIZATION_POLICY,
               MESH_TLS_AUTHENTICATION)

# The admission objects that can judge one object differently from its neighbours; read
# only to decide whether a dry run of every write is needed (see object_admission).
ADMISSION_KINDS = (
    ResourceKind("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration",
                 "validatingwebhookconfigurations", False, None),
    ResourceKind("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration",
                 "mutatingwebhookconfigurations", False, None),
    ResourceKind("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy",
                 "validatingadmissionpolicies", False, None),
    ResourceKind("admissionregistration.k8s.io/v1beta1", "MutatingAdmissionPolicy",
                 "mutatingadmissionpolicies", False, None),
)


def kind_for(api_version, kind):
    """The ResourceKind of a manifest, for the kinds this collection writes."""
    for known in KNOWN_KINDS:
        if known.api_version == api_version and known.kind == kind:
            return known
    raise KubeError("%s %s is not a kind this collection manages." % (api_version, kind))


class KubeError(MtlsError):
    """A Kubernetes failure told as one sentence; ``status`` is the HTTP status or None."""

    def __init__(self, message, status=None, field=None):
        super(KubeError, self).__init__(message, field)
        self.status = status


class ConnectionSettings(object):
    """Where and as whom to connect: the kube_auth doc fragment's options."""

    def __init__(self, kubeconfig=None, context=None, host=None, api_key=None,
                 ca_cert=None, validate_certs=True):
        self.kubeconfig = kubeconfig
        self.context = context
        self.host = host
        self.api_key = api_key
        self.ca_cert = ca_cert
        self.validate_certs = validate_certs

    @classmethod
    def from_params(cls, params):
        return cls(kubeconfig=params.get("kubeconfig"), context=params.get("context"),
                   host=params.get("host"), api_key=params.get("api_key"),
                   ca_cert=params.get("ca_cert"),
                   validate_certs=params.get("validate_certs", True))

    def resolved_kubeconfig(self):
        if self.kubeconfig:
            return os.path.expanduser(self.kubeconfig)
        env = os.environ.get("KUBECONFIG")
        if env:
            return env.split(os.pathsep)[0]
        default = os.path.expanduser("~/.kube/config")
        return default if os.path.exists(default) else None


def _in_cluster():
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and os.path.exists(
        "/var/run/secrets/kubernetes.io/serviceaccount/token")


def build_configuration(settings):
    """A kubernetes ``Configuration`` plus a phrase saying where it came from.

    Order: explicit host (+api_key), then a kubeconfig (option, $KUBECONFIG,
    ~/.kube/config), then the in-cluster service account.
    """
    configuration = kube_client.Configuration()
    if settings.host:
        configuration.host = settings.host.rstrip("/")
        if settings.api_key:
            configuration.api_key = {"authorization": "Bearer " + settings.api_key}
        source = "the host option"
    else:
        kubeconfig = settings.resolved_kubeconfig()
        if kubeconfig:
            if not os.path.exists(kubeconfig):
                raise KubeError(
                    "kubeconfig %s does not exist; set kubeconfig to the path of a readable "
                    "kubeconfig file." % kubeconfig, field="kubeconfig")
            try:
                kube_config.load_kube_config(config_file=kubeconfig, context=settings.context,
                                             client_configuration=configuration,
                                             persist_config=False)
            except ConfigException as error:
                raise KubeError(_config_error_sentence(error, kubeconfig, settings.context),
                                field="context" if settings.context else "kubeconfig")
            except Exception as error:  # yaml errors and the like: the file is unusable
                raise KubeError("kubeconfig %s cannot be read (%s); set kubeconfig to a valid "
                                "kubeconfig file." % (kubeconfig, type(error).__name__),
                                field="kubeconfig")
            source = "kubeconfig %s" % kubeconfig
            if settings.context:
                source += " (context %s)" % settings.context
            if settings.api_key:
                configuration.api_key = {"authorization": "Bearer " + settings.api_key}
        elif _in_cluster():
            kube_config.load_incluster_config(client_configuration=configuration)
            source = "the in-cluster service account"
        else:
            raise KubeError(
                "no Kubernetes connection is configured; set kubeconfig (or $KUBECONFIG), "
                "or host and api_key.", field="kubeconfig")
    if settings.ca_cert:
        if not os.path.exists(settings.ca_cert):
            raise KubeError("ca_cert %s does not exist; point it to the PEM bundle of the API "
                            "server's CA." % settings.ca_cert, field="ca_cert")
        configuration.ssl_ca_cert = settings.ca_cert
    if settings.validate_certs is False:
        configuration.verify_ssl = False
    # Retries are ours (bounded, with backoff, and reported); urllib3 must not add its own.
    configuration.retries = False
    return configuration, source


def _config_error_sentence(error, kubeconfig, context):
    text = str(error)
    if context and "context" in text.lower():
        return ("context %s is not in kubeconfig %s; set context to one of the contexts "
                "defined there." % (context, kubeconfig))
    return "kubeconfig %s is not usable: %s; fix the file or set kubeconfig." % (
        kubeconfig, text.rstrip("."))


def _status_body(raw):
    try:
        body = json.loads(raw)
    except (TypeError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


_FORBIDDEN_PATTERN = re.compile(
    r'User "(?P<user>[^"]*)" cannot (?P<verb>[\w-]+) resource "(?P<resource>[^"]*)"'
    r'(?: in API group "(?P<group>[^"]*)")?'
    r'(?: in the namespace "(?P<namespace>[^"]*)")?')


def _object_label(kind, name, namespace):
    if name and namespace:
        return "%s %s/%s" % (kind.kind, namespace, name)
    if name:
        return "%s %s" % (kind.kind, name)
    if namespace:
        return "%s objects in namespace %s" % (kind.kind, namespace)
    return "%s objects" % kind.kind


def api_error_sentence(status, body, verb, kind, name=None, namespace=None, server=None,
                       source=None):
    """One sentence for a failed API call. Pure: unit-tested without a server.

    ``body`` is the decoded Status object the API server answered with (may be empty).
    Only the server's own ``message``/``details`` are used, never the request, so no
    Secret data can leak into the sentence.
    """
    message = (body.get("message") or "").strip()
    details = body.get("details") or {}
    target = _object_label(kind, name, namespace)
    if status == 401:
        return ("the API server %s rejected the credentials from %s (401 Unauthorized); "
                "refresh the token or client certificate." % (
                    server or "", source or "the configured connection"))
    if status == 403:
        match = _FORBIDDEN_PATTERN.search(message)
        if match:
            where = (" in namespace %s" % match.group("namespace")) if match.group(
                "namespace") else " cluster-wide"
            group = match.group("group")
            resource = match.group("resource") + (("." + group) if group else "")
            return ("forbidden (403): user %s may not %s %s%s; grant it through RBAC or "
                    "use a context that has that right." % (
                        match.group("user"), match.group("verb"), resource, where))
        return "forbidden (403) to %s %s: %s." % (verb, target, message.rstrip(".") or
                                                  "no reason given")
    if status == 404:
        if details.get("kind") == "namespaces" or (
                namespace and 'namespaces "%s" not found' % namespace in message):
            return ("namespace %s does not exist; create it first or correct the "
                    "namespace." % (details.get("name") or namespace))
        if not details.get("name") and "could not find the requested resource" in message:
            return kind_missing_sentence(kind)
        return "%s was not found." % target
    if status == 409:
        causes = details.get("causes") or []
        conflicts = [c.get("message", "") for c in causes if c.get("message")]
        if "conflict" in message.lower() and (conflicts or "manager" in message):
            managers = sorted(set(re.findall(r'conflict with "([^"]+)"', message)))
            fields = sorted(set(c.get("field", "") for c in causes if c.get("field")))
            return ("field manager conflict on %s: %s owned by %s; set force_conflicts: true "
                    "to take them over." % (
                        target, ", ".join(fields) or "fields",
                        ", ".join(managers) or "another manager"))
        return "conflict on %s (409): %s." % (target, message.rstrip("."))
    if status == 422:
        return "the API server rejected %s as invalid: %s." % (target, message.rstrip("."))
    if status == 429:
        return "the API server %s kept throttling (429) the %s of %s; retry later." % (
            server or "", verb, target)
    if status and status >= 500:
        return "the API server %s failed (%s) to %s %s: %s." % (
            server or "", status, verb, target, message.rstrip(".") or "no reason given")
    return "%s %s failed with HTTP %s: %s." % (verb, target, status, message.rstrip(".") or
                                               "no reason given")


def kind_missing_sentence(kind):
    if kind.provided_by:
        return ("the %s CRD (%s.%s) is not installed — install %s first." % (
            kind.kind, kind.plural, kind.api_version.split("/")[0], kind.provided_by))
    return "the API server does not serve %s %s." % (kind.api_version, kind.kind)


def unreachable_sentence(server, source, reason):
    return ("cannot reach the Kubernetes API server at %s (from %s): %s; check that it is "
            "running and that the kubeconfig points to it." % (server, source, reason))


def _connection_reason(error):
    text = str(error)
    for needle, reason in (("Connection refused", "connection refused"),
                           ("timed out", "connection timed out"),
                           ("Connection reset", "connection reset"),
                           ("Name or service not known", "host name does not resolve"),
                           ("CERTIFICATE_VERIFY_FAILED", "its TLS certificate is not trusted "
                            "(set ca_cert)"),
                           ("RemoteDisconnected", "the server closed the connection")):
        if needle in text:
            return reason
    return type(error).__name__


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

    def __init__(self, settings, attempts=DEFAULT_ATTEMPTS, backoff=DEFAULT_BACKOFF_SECONDS,
                 timeout=DEFAULT_TIMEOUT, sleep=time.sleep, pool_size=16):
        if not HAS_KUBERNETES:
            raise KubeError("the kubernetes Python client is missing (%s); install it with "
                            "pip install kubernetes." % KUBERNETES_IMPORT_ERROR)
        self.settings = settings
        configuration, self.source = build_configuration(settings)
        # Enough connections for the module's thread pool, so workers never wait on the pool.
        configuration.connection_pool_maxsize = pool_size
        self.server = configuration.host
        self.api_client = kube_client.ApiClient(configuration)
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
    def request(self, method, path, verb, kind, name=None, namespace=None, query=None,
                body=None, content_type="application/json", allow_404=False):
        """Send one request with bounded retries; the decoded JSON answer, or None on an
        allowed 404. Raises KubeError with one sentence otherwise."""
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        params = self.api_client.param_serialize(
            method=method, resource_path=path, query_params=list(query or []),
            header_params=headers, body=body, auth_settings=["BearerToken"])
        last_error = None
        for attempt in range(self.attempts):
            delay = self.backoff * (2 ** attempt)
            try:
                response = self.api_client.call_api(*params, _request_timeout=self.timeout)
                raw = response.read()
            except Exception as error:  # urllib3 connection errors, SSL errors, resets
                if not _is_connection_error(error):
                    raise
                last_error = unreachable_sentence(self.server, self.source,
                                                  _connection_reason(error))
                if attempt + 1 < self.attempts:
                    self._sleep(delay)
                    continue
                raise KubeError(last_error)
            status = response.status
            if 200 <= status < 300:
                return json.loads(raw) if raw else {}
            if status == 404 and allow_404:
                decoded = _status_body(raw)
                details = decoded.get("details") or {}
                # Only "this object is absent" is allowed; a missing kind or namespace
                # is still an error the caller must hear about.
                if details.get("name") == name and details.get("kind") == kind.plural:
                    return None
                raise KubeError(api_error_sentence(404, decoded, verb, kind, name, namespace,
                                                   self.server, self.source), status=404)
            if status in RETRYABLE_STATUSES and attempt + 1 < self.attempts:
                retry_after = response.getheader("Retry-After")
                try:
                    delay = min(float(retry_after), MAX_RETRY_AFTER_SECONDS)
                except (TypeError, ValueError):
                    pass
                self._sleep(delay)
                continue
            raise KubeError(api_error_sentence(status, _status_body(raw), verb, kind, name,
                                               namespace, self.server, self.source),
                            status=status)
        raise KubeError(last_error or "the request to %s failed." % self.server)

    # -- verbs ---------------------------------------------------------------------------
    def get(self, kind, name, namespace=None):
        """The object, or None when it does not exist."""
        return self.request("GET", resource_path(kind, namespace, name), "get", kind, name,
                            namespace, allow_404=True)

    def list(self, kind, namespace=None, label_selector=None):
        """The items of one LIST (a missing namespace answers an empty list)."""
        query = [("labelSelector", label_selector)] if label_selector else []
        answer = self.request("GET", resource_path(kind, namespace), "list", kind, None,
                              namespace, query=query)
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
        return self.request("PATCH", resource_path(kind, metadata.get("namespace"),
                                                   metadata["name"]),
                            "patch", kind, metadata["name"], metadata.get("namespace"),
                            query=query, body=manifest, content_type=APPLY_PATCH_CONTENT_TYPE)

    def delete(self, kind, name, namespace=None, dry_run=False):
        """Delete; True when something was (or in dry run would be) deleted."""
        options = {"kind": "DeleteOptions", "apiVersion": "v1",
                   "propagationPolicy": "Background"}
        if dry_run:
            # With a DeleteOptions body the server ignores query parameters, so dryRun
            # must be in the body: a dryRun=All query here would delete for real.
            options["dryRun"] = ["All"]
        answer = self.request("DELETE", resource_path(kind, namespace, name), "delete", kind,
                              name, namespace, body=options, allow_404=True)
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


def _rules_of(item):
    """The rules of a webhook configuration (all its webhooks) or an admission policy."""
    rules = []
    for webhook in item.get("webhooks") or []:
        rules += webhook.get("rules") or []
    constraints = (item.get("spec") or {}).get("matchConstraints")
    if constraints is not None:
        # A policy without resource rules matches nothing, but say "may judge" rather
        # than trust an unusual shape.
        everything = {"apiGroups": ["*"], "resources": ["*"], "operations": ["*"]}
        rules += constraints.get("resourceRules") or [everything]
    return rules


def rule_covers(rule, group, resource, operation):
    """Whether an admission rule selects ``operation`` on ``group``/``resource``."""
    groups = rule.get("apiGroups") or []
    resources = rule.get("resources") or []
    operations = rule.get("operations") or []
    return ((group in groups or "*" in groups)
            and any(r in ("*", "*/*", resource, resource + "/*") for r in resources)
            and (operation in operations or "*" in operations))


def object_admission(client, group, resource, operation):
    """Which webhooks or admission policies may judge one ``resource`` object apart from
    another (a list of names), or None when that cannot be read.

    Without any, what decides the creation of an object is RBAC and the built-in admission
    plugins; where RBAC grants the verbs without naming objects (uniform_rbac), they answer
    alike for every new object of a namespace, so a dry run of one creation per namespace
    proves as much as a dry run of each.
    """
    names = []
    for kind in ADMISSION_KINDS:
        try:
            items = client.list(kind)
        except KubeError as error:
            if error.status == 404 and kind.api_version.endswith("beta1"):
                continue  # the beta API is not served: no such policies
            return None
        names += ["%s %s" % (kind.kind, (item.get("metadata") or {}).get("name"))
                  for item in items
                  if any(rule_covers(rule, group, resource, operation) for rule in _rules_of(item))]
    return names


SELF_SUBJECT_RULES_REVIEW = ResourceKind("authorization.k8s.io/v1", "SelfSubjectRulesReview",
                                         "selfsubjectrulesreviews", False, None)


def uniform_rbac(client, namespace, group, resource, verbs):
    """Whether this user holds every verb of ``verbs`` on all ``resource`` objects of the
    namespace, by a rule that names no objects (so it answers alike for any name).

    False when the server cannot say for sure (an incomplete review, or no right to ask).
    """
    review = {"apiVersion": SELF_SUBJECT_RULES_REVIEW.api_version, "kind": SELF_SUBJECT_RULES_REVIEW.kind,
              "spec": {"namespace": namespace}}
    try:
        answer = client.request("POST", resource_path(SELF_SUBJECT_RULES_REVIEW), "create",
                                SELF_SUBJECT_RULES_REVIEW, body=review)
    except KubeError:
        return False
    status = answer.get("status") or {}
    if status.get("incomplete"):
        return False
    rules = [rule for rule in status.get("resourceRules") or [] if not rule.get("resourceNames")
             and (group in (rule.get("apiGroups") or []) or "*" in (rule.get("apiGroups") or []))
             and (resource in (rule.get("resources") or []) or "*" in (rule.get("resources") or []))]
    granted = set()
    for rule in rules:
        granted.update(rule.get("verbs") or [])
    return "*" in granted or set(verbs) <= granted


def _is_connection_error(error):
    if not HAS_KUBERNETES:
        return False
    connection_types = (urllib3.exceptions.HTTPError, ConnectionError, OSError)
    if isinstance(error, connection_types):
        return True
    # The client wraps SSL failures into ApiException(status=0).
    return isinstance(error, kube_client.ApiException) and not error.status


def owned_fields(obj, manager=FIELD_MANAGER):
    """The fieldsV1 tree that ``manager`` owns through Apply (empty when none)."""
    for entry in (obj.get("metadata") or {}).get("managedFields") or []:
        if entry.get("manager") == manager and entry.get("operation") == "Apply":
            return entry.get("fieldsV1") or {}
    return {}


def owned_keys(fields, *path):
    """Keys owned under ``path`` of a fieldsV1 tree, e.g. owned_keys(f, 'metadata',
    'labels') -> {'app'}."""
    node = fields
    for part in path:
        node = node.get("f:" + part) or {}
    return set(key[2:] for key in node if key.startswith("f:"))


_VOLATILE_METADATA = ("resourceVersion", "managedFields", "generation", "uid",
                      "creationTimestamp")


def comparable(obj):
    """An object without the fields the server changes on every write, for deciding
    whether a dry-run apply would change anything."""
    if obj is None:
        return None
    stripped = dict((k, v) for k, v in obj.items() if k != "status")
    stripped["metadata"] = dict((k, v) for k, v in (obj.get("metadata") or {}).items()
                                if k not in _VOLATILE_METADATA)
    return stripped


# The argument spec that goes with doc_fragments/kube_auth.py.
KUBE_AUTH_ARGSPEC = dict(
    kubeconfig=dict(type="path"),
    context=dict(type="str"),
    host=dict(type="str"),
    api_key=dict(type="str", no_log=True),
    ca_cert=dict(type="path", aliases=["ssl_ca_cert"]),
    validate_certs=dict(type="bool", default=True, aliases=["verify_ssl"]),
    force_conflicts=dict(type="bool", default=False),
)

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


def validate_object_name(value, field):
    """Kubernetes object names are DNS-1123 subdomains."""
    if not isinstance(value, str) or not value or len(value) > 253 or not _DNS_SUBDOMAIN.match(
            value):
        raise KubeError("%s %r is not a valid Kubernetes name; use lower-case letters, digits, "
                        "'-' and '.', starting and ending with a letter or digit (at most 253)."
                        % (field, value), field=field)


def validate_namespace_name(value, field):
    """Namespace names are DNS-1123 labels."""
    if not isinstance(value, str) or not value or len(value) > 63 or not _DNS_LABEL.match(value):
        raise KubeError("%s %r is not a valid namespace name; use lower-case letters, digits "
                        "and '-', starting and ending with a letter or digit (at most 63)."
                        % (field, value), field=field)


def _validate_qualified_key(key, field):
    prefix, _slash, name = key.rpartition("/")
    if (prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix))) or \
            not name or len(name) > 63 or not _LABEL_NAME.match(name):
        raise KubeError("%s key %r is not a valid key; use an optional DNS prefix and '/', "
                        "then at most 63 letters, digits, '-', '_' or '.'." % (field, key),
                        field=field)


def validate_labels(labels, field="labels"):
    for key, value in (labels or {}).items():
        _validate_qualified_key(key, field)
        text = "" if value is None else str(value)
        if len(text) > 63 or (text and not _LABEL_NAME.match(text)):
            raise KubeError("%s.%s value %r is not a valid label value; use at most 63 "
                            "letters, digits, '-', '_' or '.', starting and ending with a letter "
                            "or digit." % (field, key, text), field=field)


def validate_annotations(annotations, field="annotations"):
    for key, value in (annotations or {}).items():
        _validate_qualified_key(key, field)
        if value is None:
            raise KubeError("%s.%s has no value; give it a string or remove it." % (field, key),
                            field=field)


def string_map(values):
    """Labels and annotations as the API stores them: strings."""
    return dict((str(k), str(v)) for k, v in (values or {}).items())
