# -*- coding: utf-8 -*-
# Copyright: zerotrust.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plain files replaced atomically, one rename each (AtomicBatch, atomic_write).

A reader (a web server reloading its certificate, SPIRE re-reading its upstream CA) only
ever sees the old file or the new file: content goes to a temporary file beside the
target, is flushed to disk, and is renamed over it. A batch (1,000 certificates) stages
every temporary file first - so a failure leaves nothing changed - and then renames them
all, flushing the filesystem once instead of once per file. Each rename is atomic, the
set is not; files that must change together use files_versioned.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.zerotrust.mtls.plugins.module_utils.files_base import (
    UNREAD,
    Batch,
    FileError,
    WriteResult,
    close_quietly,
    copy_backup,
    current_mode,
    flush,
    fsync_directory,
    read_if_exists,
    unlink_quietly,
    write_error,
    write_temp,
)


class AtomicBatch(Batch):
    """Stage many files, then commit them together.

    stage() writes each new content to a temp file (nothing visible changes yet);
    commit() makes them durable, takes backups and renames them into place. If
    staging fails, abort() (also called by commit's failure path and by the context
    manager) removes every temp file so the directory is as it was.
    """

    def __init__(self):
        self._staged = []  # (path, temp, descriptor, mode, backup, backup_mode)

    @staticmethod
    def in_layout(path):  # pylint: disable=unused-argument
        """Plain files have no layout to check (see VersionedBatch.in_layout)."""
        return True

    def stage(self, path, content, mode, backup=False, backup_mode=None, existing=UNREAD, field=None):
        """Queue ``content`` for ``path``; returns False when the file already is exactly that.

        ``existing`` lets a caller that already read the file skip a second read: its
        bytes, or None when the caller found no file.
        """
        if existing is UNREAD:
            existing = read_if_exists(path)
        if existing == content:
            if current_mode(path) == mode:
                return False
            self._staged.append((path, None, None, mode, False, None))
            return True
        try:
            temp, descriptor = write_temp(path, content, mode)
        except FileError:
            self.abort()
            raise
        except (IOError, OSError) as exc:
            self.abort()
            raise write_error(path, exc, field)
        self._staged.append((path, temp, descriptor, mode, backup and existing is not None, backup_mode))
        return True

    def abort(self):
        for _path, temp, descriptor, _mode, _backup, _backup_mode in self._staged:
            if descriptor is not None:
                close_quietly(descriptor)
            if temp is not None:
                unlink_quietly(temp)
        self._staged = []

    def commit(self):
        """Make staged files durable and visible; return {path: backup_path or None}.

        Each rename is atomic; the set is not. Only a failing disk can stop the loop
        half-way, and what it leaves (a key next to an older certificate) is what the
        modules detect on the next run (key_mismatch) and repair.
        """
        staged = self._staged
        backups = {}
        try:
            self._flush(staged)
            directories = set()
            for path, temp, _descriptor, mode, backup, backup_mode in staged:
                if temp is None:
                    os.chmod(path, mode)
                    backups[path] = None
                    continue
                backups[path] = copy_backup(path, backup_mode or mode) if backup else None
                os.rename(temp, path)
                directories.add(os.path.dirname(os.path.abspath(path)))
            for directory in directories:
                fsync_directory(directory)
        except (IOError, OSError) as exc:
            self.abort()
            raise FileError(
                getattr(exc, "filename", None),
                "cannot write %s: %s; fix the directory or its permissions." % (getattr(exc, "filename", None) or "the output files", exc.strerror or exc),
            )
        self._staged = []
        return backups

    @staticmethod
    def _flush(staged):
        try:
            flush([entry[2] for entry in staged if entry[2] is not None])
        finally:
            for index, entry in enumerate(staged):
                if entry[2] is not None:
                    os.close(entry[2])
                    staged[index] = entry[:2] + (None,) + entry[3:]


def atomic_write(path, content, mode, backup=False, backup_mode=None, field=None):
    """Write ``content`` to ``path`` atomically; nothing is written when it is already there.

    Returns a WriteResult whose ``backup_path`` names the copy of the replaced file
    (when ``backup`` and a file was replaced). ``backup_mode`` defaults to ``mode``,
    so a key's backup is 0600 like the key.
    """
    batch = AtomicBatch()
    if not batch.stage(path, content, mode, backup=backup, backup_mode=backup_mode, field=field):
        return WriteResult(path, False)
    backups = batch.commit()
    return WriteResult(path, True, backups.get(path))
