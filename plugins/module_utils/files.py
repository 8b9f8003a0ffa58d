# -*- coding: utf-8 -*-
# Copyright: zerotrust.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Atomic file output for certificates and keys, with modes and backups, in one import.

A reader (a web server reloading its certificate, SPIRE re-reading its upstream CA)
must only ever see the old file or the new file, never a half-written one, and a
private key must never exist on disk with a mode looser than asked, not even for a
moment. The work is done by concern:

- files_base: modes, reading what is there, refusing an unusable path early, temporary
  files created with their final mode, backups and removal;
- files_atomic: plain files, each replaced by its own rename (AtomicBatch, atomic_write);
- files_versioned: the files of one directory switched together in one rename, the
  layout of kubelet's AtomicWriter (VersionedBatch);
- files_leftovers: what killed writers left behind.

Callers use ``files.<name>``; this file only gathers the names they use.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.zerotrust.mtls.plugins.module_utils.files_atomic import AtomicBatch, atomic_write
from ansible_collections.zerotrust.mtls.plugins.module_utils.files_base import (
    CERT_MODE,
    KEY_MODE,
    UNREAD,
    FileError,
    WriteResult,
    backup_path_for,
    check_writable,
    current_mode,
    needs_write,
    parse_mode,
    read_if_exists,
    read_with_mode,
    remove,
    same_directory,
)
from ansible_collections.zerotrust.mtls.plugins.module_utils.files_leftovers import (
    find_leftovers,
    remove_leftovers,
    remove_leftovers_beside,
)
from ansible_collections.zerotrust.mtls.plugins.module_utils.files_versioned import (
    DATA_LINK,
    VersionedBatch,
    current_version,
    is_versioned_link,
    remove_versioned,
)

__all__ = (
    "CERT_MODE",
    "DATA_LINK",
    "KEY_MODE",
    "UNREAD",
    "AtomicBatch",
    "FileError",
    "VersionedBatch",
    "WriteResult",
    "atomic_write",
    "backup_path_for",
    "check_writable",
    "current_mode",
    "current_version",
    "find_leftovers",
    "is_versioned_link",
    "needs_write",
    "parse_mode",
    "read_if_exists",
    "read_with_mode",
    "remove",
    "remove_leftovers",
    "remove_leftovers_beside",
    "remove_versioned",
    "same_directory",
)
