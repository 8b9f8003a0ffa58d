# -*- coding: utf-8 -*-
# Copyright: zerotrust.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where and as whom the modules connect to the Kubernetes API.

The options of the kube_auth doc fragment (args_kube_auth.KUBE_AUTH_SPEC) become one
kubernetes ``ApiClient``: an explicit host, a kubeconfig or the in-cluster service
account, told apart here, each failure told as one sentence naming the option to fix. The
kubernetes Python client is imported here only, and only when a module connects.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
from types import SimpleNamespace

from ansible_collections.zerotrust.mtls.plugins.module_utils.args_kube_auth import KUBE_AUTH_SPEC
from ansible_collections.zerotrust.mtls.plugins.module_utils.kube_errors import KubeError

_KUBERNETES = []  # the client's modules once imported: see kubernetes_client()


def kubernetes_client():
    """The kubernetes client's modules, imported at the first connection, not before.

    The import costs each module run about 0.15 s of CPU (its models are hundreds of
    files), which the runs that never reach the API do not pay: mtls_cert_info reading a
    file, mtls_rotation_state keeping its record on disk only."""
    if not _KUBERNETES:
        try:
            import urllib3
            from kubernetes import client, config
            from kubernetes.config.config_exception import ConfigException
        except ImportError as error:
            raise KubeError("the kubernetes Python client is missing (%s); install it with pip install kubernetes." % error)
        _KUBERNETES.append(SimpleNamespace(urllib3=urllib3, client=client, config=config, ConfigException=ConfigException))
    return _KUBERNETES[0]


def preload_kubernetes_client():
    """Imports the client now, for the action plugins that run a backend in the worker
    Ansible forks per task: they load in the main process, so every worker of the
    ansible-playbook run inherits the import instead of paying it again. A missing client
    is left for the task that connects to report."""
    try:
        kubernetes_client()
    except KubeError:
        pass


class ConnectionSettings(object):
    """Where and as whom to connect: the kube_auth doc fragment's options."""

    def __init__(self, kubeconfig=None, context=None, host=None, api_key=None, ca_cert=None, validate_certs=True):
        self.kubeconfig = kubeconfig
        self.context = context
        self.host = host
        self.api_key = api_key
        self.ca_cert = ca_cert
        self.validate_certs = validate_certs

    @classmethod
    def from_params(cls, params):
        """The settings a module's ``params`` give: its kube_auth options, defaults where absent."""
        return cls(**dict((name, params.get(name, option.get("default"))) for name, option in KUBE_AUTH_SPEC.items()))

    def resolved_kubeconfig(self):
        if self.kubeconfig:
            return os.path.expanduser(self.kubeconfig)
        env = os.environ.get("KUBECONFIG")
        if env:
            return env.split(os.pathsep)[0]
        default = os.path.expanduser("~/.kube/config")
        return default if os.path.exists(default) else None


def _in_cluster():
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and os.path.exists("/var/run/secrets/kubernetes.io/serviceaccount/token")


def _bearer(configuration, api_key):
    if api_key:
        configuration.api_key = {"authorization": "Bearer " + api_key}


def _load_kubeconfig(configuration, settings, kubeconfig):
    """Fills ``configuration`` from ``kubeconfig``; the phrase saying where it came from."""
    if not os.path.exists(kubeconfig):
        raise KubeError("kubeconfig %s does not exist; set kubeconfig to the path of a readable kubeconfig file." % kubeconfig, field="kubeconfig")
    kubernetes = kubernetes_client()
    try:
        kubernetes.config.load_kube_config(config_file=kubeconfig, context=settings.context, client_configuration=configuration, persist_config=False)
    except kubernetes.ConfigException as error:
        raise KubeError(_config_error_sentence(error, kubeconfig, settings.context), field="context" if settings.context else "kubeconfig")
    except Exception as error:  # yaml errors and the like: the file is unusable
        raise KubeError(
            "kubeconfig %s cannot be read (%s); set kubeconfig to a valid kubeconfig file." % (kubeconfig, type(error).__name__), field="kubeconfig"
        )
    _bearer(configuration, settings.api_key)
    source = "kubeconfig %s" % kubeconfig
    if settings.context:
        source += " (context %s)" % settings.context
    return source


def build_configuration(settings):
    """A kubernetes ``Configuration`` plus a phrase saying where it came from.

    Order: explicit host (+api_key), then a kubeconfig (option, $KUBECONFIG,
    ~/.kube/config), then the in-cluster service account.
    """
    kubernetes = kubernetes_client()
    configuration = kubernetes.client.Configuration()
    kubeconfig = None if settings.host else settings.resolved_kubeconfig()
    if settings.host:
        configuration.host = settings.host.rstrip("/")
        _bearer(configuration, settings.api_key)
        source = "the host option"
    elif kubeconfig:
        source = _load_kubeconfig(configuration, settings, kubeconfig)
    elif _in_cluster():
        kubernetes.config.load_incluster_config(client_configuration=configuration)
        source = "the in-cluster service account"
    else:
        raise KubeError("no Kubernetes connection is configured; set kubeconfig (or $KUBECONFIG), or host and api_key.", field="kubeconfig")
    if settings.ca_cert:
        if not os.path.exists(settings.ca_cert):
            raise KubeError("ca_cert %s does not exist; point it to the PEM bundle of the API server's CA." % settings.ca_cert, field="ca_cert")
        configuration.ssl_ca_cert = settings.ca_cert
    if settings.validate_certs is False:
        configuration.verify_ssl = False
    # Retries are ours (bounded, with backoff, and reported); urllib3 must not add its own.
    configuration.retries = False
    return configuration, source


def _config_error_sentence(error, kubeconfig, context):
    text = str(error)
    if context and "context" in text.lower():
        return "context %s is not in kubeconfig %s; set context to one of the contexts defined there." % (context, kubeconfig)
    return "kubeconfig %s is not usable: %s; fix the file or set kubeconfig." % (kubeconfig, text.rstrip("."))


def open_api_client(settings, pool_size):
    """(ApiClient, server URL, where the settings came from) for one module run; the pool
    holds ``pool_size`` connections, so the module's worker threads never wait on it."""
    configuration, source = build_configuration(settings)
    configuration.connection_pool_maxsize = pool_size
    return kubernetes_client().client.ApiClient(configuration), configuration.host, source


def is_connection_error(error):
    """Whether ``error`` (raised by the client) means the server was not reached."""
    if isinstance(error, (ConnectionError, OSError)):
        return True
    if not _KUBERNETES:  # nothing was asked of the client, so it raised nothing
        return False
    kubernetes = _KUBERNETES[0]
    if isinstance(error, kubernetes.urllib3.exceptions.HTTPError):
        return True
    # The client wraps SSL failures into ApiException(status=0).
    return isinstance(error, kubernetes.client.ApiException) and not error.status
