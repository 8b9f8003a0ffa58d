"""Certificate files (--watch-file) and the --trust-bundle file, re-read when they change."""

from __future__ import annotations

import logging
import os
import threading

from . import certs, chains
from .certs import CertificateParseError
from .objects import StrippedObject, looks_like_private_key
from .store import SOURCE_KIND_FILE, CertificateStore

LOG = logging.getLogger(__name__)

FILES_OWNER = "files"


def _signature(path: str) -> tuple[int, int, int] | None:
    try:
        status = os.stat(path)
    except OSError:
        return None
    return (status.st_mtime_ns, status.st_size, status.st_ino)


class FilePoller(threading.Thread):
    """Polls file metadata; parses a file again only when mtime, size or inode changed.

    Only CERTIFICATE blocks of a file are parsed (see certs.parse_pem_bundle), so a
    combined cert+key file does not make the exporter parse the key.
    """

    def __init__(
        self,
        store: CertificateStore,
        paths: list[str],
        trust_bundle: str | None = None,
        interval: float = 15.0,
        stop: threading.Event | None = None,
    ):
        super().__init__(name="file-poller", daemon=True)
        refused = [p for p in paths if looks_like_private_key(os.path.basename(p))]
        if refused:
            raise ValueError(f"refusing to watch {', '.join(refused)}: the names say private key")
        self.store = store
        self.paths = list(paths)
        self.trust_bundle = trust_bundle
        self.interval = interval
        self.stop_event = stop or threading.Event()
        self._seen: dict[str, tuple[int, int, int] | None] = {}
        self._trust_signature: tuple[int, int, int] | None = None

    def poll_once(self) -> None:
        if self.trust_bundle:
            self._poll_trust_bundle()
        for path in self.paths:
            signature = _signature(path)
            if path in self._seen and self._seen[path] == signature:
                continue
            self._seen[path] = signature
            if signature is None:
                self.store.delete("file", "", path)
                self.store.count_error(SOURCE_KIND_FILE, path, certs.REASON_NOT_FOUND)
                continue
            try:
                with open(path, "rb") as handle:
                    content = handle.read()
            except OSError:
                self.store.count_error(SOURCE_KIND_FILE, path, certs.REASON_READ_FAILED)
                continue
            stripped = StrippedObject("file", "", path, path, ":".join(map(str, signature)), {"": content})
            self.store.upsert(stripped, FILES_OWNER, SOURCE_KIND_FILE, path)
        self.store.mark_source_up(SOURCE_KIND_FILE, "files", True)

    def _poll_trust_bundle(self) -> None:
        signature = _signature(self.trust_bundle)
        if signature == self._trust_signature:
            return
        self._trust_signature = signature
        try:
            anchors = chains.load_trust_anchors(self.trust_bundle)
        except (OSError, CertificateParseError) as error:
            # Keep the previous anchors: a half-written bundle must not flip every
            # chain gauge to 0.
            LOG.warning("trust bundle %s unusable (%s); keeping the previous one", self.trust_bundle, error)
            self.store.count_error(SOURCE_KIND_FILE, self.trust_bundle, getattr(error, "reason", certs.REASON_READ_FAILED))
            return
        LOG.info("trust bundle %s: %d certificates", self.trust_bundle, len(anchors))
        self.store.set_trust_anchors(anchors)

    def run(self) -> None:
        while not self.stop_event.wait(self.interval):
            try:
                self.poll_once()
            except Exception:  # noqa: BLE001 - a poll failure must not stop the poller
                LOG.exception("file poll failed")
