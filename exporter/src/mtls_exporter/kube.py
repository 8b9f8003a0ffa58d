"""List-then-watch loops over Secrets and ConfigMaps, with the `kubernetes` client.

Responses are read raw and decoded with `json`: the client's model classes would
deserialize every field of every Secret, private keys included, into Python objects
first. Here each page or event is stripped to its certificate keys
(`objects.strip_*`) before anything else looks at it, and the page is dropped.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable

from kubernetes import client as kube_client
from kubernetes import config as kube_config
from kubernetes.client.rest import ApiException
from kubernetes.watch.watch import iter_resp_lines

from .certs import REASON_API_ERROR
from .objects import KeySelection, StrippedObject, strip_configmap, strip_secret
from .store import SOURCE_KIND_KUBERNETES, CertificateStore

LOG = logging.getLogger(__name__)


def load_api_client(kubeconfig: str | None, context: str | None = None) -> kube_client.ApiClient:
    """A client from --kubeconfig, else in-cluster config, else the default kubeconfig."""
    configuration = kube_client.Configuration()
    if kubeconfig:
        kube_config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=configuration)
    else:
        try:
            kube_config.load_incluster_config(client_configuration=configuration)
        except kube_config.ConfigException:
            kube_config.load_kube_config(context=context, client_configuration=configuration)
    return kube_client.ApiClient(configuration)


class Gone(Exception):
    """The API server no longer has the resourceVersion we asked for (410)."""


@dataclass(frozen=True)
class WatchScope:
    """One list/watch stream: a resource, optionally one namespace, and selectors."""

    resource: str  # "secrets" or "configmaps"
    namespace: str | None = None
    label_selector: str | None = None
    field_selector: str | None = None

    @property
    def watch_id(self) -> str:
        parts = [self.resource, self.namespace or "*"]
        if self.label_selector:
            parts.append(f"labels={self.label_selector}")
        if self.field_selector:
            parts.append(f"fields={self.field_selector}")
        return ":".join(parts)


class ListWatch(threading.Thread):
    """Keeps the store in step with one WatchScope.

    Paginated list (limit/continue) -> watch from the list's resourceVersion with
    bookmarks -> on 410 Gone, or an expired continue token, relist from scratch and
    prune what the new list no longer holds. Other failures are counted in
    x509_source_errors_total{reason="api_error"} and retried with backoff; the
    exporter keeps serving what it has meanwhile.
    """

    def __init__(
        self,
        api: kube_client.ApiClient,
        scope: WatchScope,
        store: CertificateStore,
        selection: KeySelection,
        *,
        page_size: int = 500,
        watch_timeout_seconds: int = 300,
        on_synced: Callable[[str], None] | None = None,
        stop: threading.Event | None = None,
        source_name: str | None = None,
        strip: Callable[[dict, KeySelection], StrippedObject] | None = None,
        on_object: Callable[[str, dict | None], None] | None = None,
    ):
        super().__init__(name=f"watch-{scope.watch_id}", daemon=True)
        self.api = api
        self.scope = scope
        self.store = store
        self.selection = selection
        self.page_size = page_size
        self.watch_timeout_seconds = watch_timeout_seconds
        self.on_synced = on_synced
        self.stop_event = stop or threading.Event()
        self.source_name = source_name or scope.resource
        self.strip = strip or (strip_secret if scope.resource == "secrets" else strip_configmap)
        # Raw-object consumers (the rotation ConfigMap) bypass the certificate store.
        self.on_object = on_object
        self.synced = threading.Event()
        self.relists = 0

    # -- API calls ---------------------------------------------------------------------

    def _call(self, **query):
        """GET the scope's collection (list or watch); returns the raw urllib3 response.

        The request goes through the client's own ApiClient (configuration, auth, token
        refresh, TLS), but not through CoreV1Api: importing the generated API class
        costs ~3 s of CPU and ~20 MB (hundreds of pydantic-validated methods and every
        model), for two GET paths whose JSON is decoded here anyway.
        """
        request_timeout = query.pop("_request_timeout", None)
        if self.scope.label_selector:
            query["labelSelector"] = self.scope.label_selector
        if self.scope.field_selector:
            query["fieldSelector"] = self.scope.field_selector
        if self.scope.namespace:
            path, path_params = f"/api/v1/namespaces/{{namespace}}/{self.scope.resource}", {"namespace": self.scope.namespace}
        else:
            path, path_params = f"/api/v1/{self.scope.resource}", None
        method, url, headers, body, post_params = self.api.param_serialize(
            "GET",
            path,
            path_params=path_params,
            query_params=list(query.items()),
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        response = self.api.call_api(method, url, headers, body, post_params, _request_timeout=request_timeout)
        if not 200 <= response.status <= 299:
            response.read()
            raise ApiException.from_response(http_resp=response, body=None, data=None)
        return response.response

    def _strip(self, obj: dict):
        """Reduce one API object to what is kept (see objects.strip_*)."""
        if self.on_object is not None:
            return obj  # the rotation ConfigMap: no certificates, no keys
        return self.strip(obj, self.selection)

    def _store(self, stripped) -> tuple[str, str, str]:
        if self.on_object is not None:
            metadata = stripped.get("metadata") or {}
            self.on_object("upsert", stripped)
            return ("raw", metadata.get("namespace", ""), metadata.get("name", ""))
        self.store.upsert(stripped, self.scope.watch_id, SOURCE_KIND_KUBERNETES, self.source_name)
        return (stripped.kind, stripped.namespace, stripped.name)

    def _ingest(self, obj: dict) -> tuple[str, str, str]:
        return self._store(self._strip(obj))

    def _fetch_pages(self, pages: queue.Queue) -> None:
        """Producer: fetch, decode and strip pages; the consumer parses certificates.

        Running the next request while the previous page's certificates are parsed
        overlaps the API server's work with ours. Each page is stripped here, as soon as
        it is decoded, so private keys live no longer than one page's decoding.
        """
        continue_token = None
        try:
            while True:
                kwargs = {"limit": self.page_size}
                if continue_token:
                    kwargs["continue"] = continue_token
                try:
                    response = self._call(**kwargs)
                except ApiException as error:
                    if error.status == 410:
                        raise Gone() from None
                    raise
                page = json.loads(response.data)
                response.release_conn()
                metadata = page.get("metadata") or {}
                stripped = [self._strip(obj) for obj in page.get("items") or ()]
                del page
                continue_token = metadata.get("continue")
                pages.put((stripped, metadata.get("resourceVersion", ""), not continue_token))
                if not continue_token or self.stop_event.is_set():
                    return
        except BaseException as error:  # noqa: BLE001 - handed to the consumer, which raises it
            pages.put(error)

    def list_all(self) -> str:
        """Paginated list into the store; returns the list's resourceVersion."""
        started = time.monotonic()
        seen: set[tuple[str, str, str]] = set()
        # Two pages in flight at most: memory stays bounded by the page size.
        pages: queue.Queue = queue.Queue(maxsize=1)
        fetcher = threading.Thread(target=self._fetch_pages, args=(pages,), name=f"list-{self.scope.watch_id}", daemon=True)
        fetcher.start()
        while True:
            item = pages.get()
            if isinstance(item, BaseException):
                fetcher.join()
                raise item
            stripped_objects, resource_version, last = item
            for stripped in stripped_objects:
                seen.add(self._store(stripped))
            if last:
                break
        fetcher.join()
        LOG.info("%s: listed %d objects in %.2fs", self.scope.watch_id, len(seen), time.monotonic() - started)
        if self.on_object is not None:
            self.on_object("listed", {"items_seen": {name for _unused, _unused, name in seen}})
        else:
            pruned = self.store.retain_only(self.scope.watch_id, seen)
            if pruned:
                LOG.info("%s: pruned %d objects deleted while not watching", self.scope.watch_id, pruned)
        return resource_version

    def watch_from(self, resource_version: str) -> str:
        """Follow changes until the server ends the watch; return the last resourceVersion."""
        response = self._call(
            watch=True,
            resourceVersion=resource_version,
            allowWatchBookmarks=True,
            timeoutSeconds=self.watch_timeout_seconds,
            # Read timeout a little past the server-side timeout, so a dead connection
            # is noticed without cutting a healthy watch short.
            _request_timeout=(10, self.watch_timeout_seconds + 30),
        )
        try:
            for line in iter_resp_lines(response):
                if self.stop_event.is_set():
                    break
                if not line:
                    continue
                event = json.loads(line)
                event_type = event.get("type")
                obj = event.get("object") or {}
                del event
                if event_type == "ERROR":
                    if obj.get("code") == 410:
                        raise Gone()
                    raise ApiException(status=obj.get("code"), reason=obj.get("message"))
                metadata = obj.get("metadata") or {}
                resource_version = metadata.get("resourceVersion", resource_version)
                if event_type == "BOOKMARK":
                    continue
                if event_type == "DELETED":
                    if self.on_object is not None:
                        self.on_object("delete", obj)
                    else:
                        kind = "secret" if self.scope.resource == "secrets" else "configmap"
                        self.store.delete(kind, metadata.get("namespace", ""), metadata.get("name", ""))
                    continue
                self._ingest(obj)
        finally:
            response.release_conn()
        return resource_version

    # -- loop --------------------------------------------------------------------------------

    def run(self) -> None:
        backoff = 1.0
        resource_version = None
        while not self.stop_event.is_set():
            try:
                if resource_version is None:
                    resource_version = self.list_all()
                    if not self.synced.is_set():
                        self.synced.set()
                        self.store.mark_source_up(SOURCE_KIND_KUBERNETES, self.source_name, True)
                        if self.on_synced:
                            self.on_synced(self.scope.watch_id)
                watch_started = time.monotonic()
                resource_version = self.watch_from(resource_version)
                backoff = 1.0
                # A watch the server ends at once, over and over, must not become a
                # busy loop of requests.
                if time.monotonic() - watch_started < 1.0 and self.stop_event.wait(1.0):
                    break
            except Gone:
                LOG.info("%s: resourceVersion too old (410 Gone), relisting", self.scope.watch_id)
                self.relists += 1
                resource_version = None
            except Exception as error:  # noqa: BLE001 - every failure is retried, none may kill the loop
                LOG.warning("%s: %s; retrying in %.0fs", self.scope.watch_id, _one_line(error), backoff)
                self.store.count_error(SOURCE_KIND_KUBERNETES, self.source_name, REASON_API_ERROR)
                if self.stop_event.wait(backoff):
                    break
                backoff = min(backoff * 2, 60.0)
                # A failed watch resumes from its last resourceVersion; a failed list
                # starts over.


def _one_line(error: Exception) -> str:
    if isinstance(error, ApiException):
        return f"API server answered {error.status} {error.reason}"
    return f"{type(error).__name__}: {error}"
