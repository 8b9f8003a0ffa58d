# -*- coding: utf-8 -*-
# Copyright (c) zerotrust.mtls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Atomic file output for certificates and keys, with modes and backups.

A reader (a web server reloading its certificate, SPIRE re-reading its upstream CA)
must only ever see the old file or the new file, never a half-written one, and a
private key must never exist on disk with a mode looser than asked, not even for a
moment: content goes to a temporary file created with the final mode in the same
directory, is flushed to disk, and is renamed over the target.

Writing many files (a batch of 1,000 certificates) goes through AtomicBatch, which
stages every temporary file first - so a failure leaves nothing changed - and then
renames them all, flushing the filesystem once instead of once per file.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ctypes
import datetime
import errno
import os
import stat

KEY_MODE = 0o600
CERT_MODE = 0o644

# Above this many staged files a single syncfs(2) of the filesystem is cheaper than
# one fsync(2) per file (measured: 2.7 ms per fsync here, 0.14 s for syncfs of 2,000).
_SYNCFS_THRESHOLD = 16
_libc = None


# Marks "the caller has not read this file" (None means "read it: there is no file").
UNREAD = object()


class FileError(Exception):
    """An output path problem: ``str(e)`` names the path (and option) and the fix."""

    def __init__(self, path, message, field=None):
        super(FileError, self).__init__(message)
        self.path = path
        self.field = field


def parse_mode(mode, default, field='mode'):
    """'0600', '600', 0o600 or None (default) -> int."""
    if mode is None or mode == '':
        return default
    if isinstance(mode, int) and not isinstance(mode, bool):
        value = mode
    else:
        try:
            value = int(str(mode), 8)
        except ValueError:
            raise FileError(None, "%s must be an octal file mode such as '0600', got %r." % (field, mode), field)
    if not 0 <= value <= 0o7777:
        raise FileError(None, "%s must be an octal file mode such as '0600', got %r." % (field, mode), field)
    return value


def read_if_exists(path):
    """The file's bytes, or None when it does not exist."""
    try:
        with open(path, 'rb') as handle:
            return handle.read()
    except (IOError, OSError) as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise


def current_mode(path):
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return None


def check_writable(path, field=None):
    """Refuse early (before anything is written) a path whose directory is missing or read-only."""
    directory = os.path.dirname(os.path.abspath(path))
    label = ("%s " % field) if field else ''
    if os.path.isdir(path):
        raise FileError(path, "%s%s is a directory; give a file path." % (label, path), field)
    if not os.path.isdir(directory):
        raise FileError(path, "%sdirectory %s does not exist; create it first or choose another path." % (label, directory), field)
    if not os.access(directory, os.W_OK | os.X_OK):
        raise FileError(path, "%sdirectory %s is not writable; fix its permissions or choose another path." % (label, directory), field)
    if os.path.exists(path) and not os.access(path, os.R_OK):
        raise FileError(path, "%s%s exists but is not readable; fix its permissions or choose another path." % (label, path), field)
    # access() says yes to root everywhere, yet sysfs, read-only bind mounts and some
    # network filesystems still refuse to create files: only trying tells. The probe is
    # removed at once, so check mode still leaves the directory's contents as they were.
    probe = os.path.join(directory, '.%s.%d.probe' % (os.path.basename(path), os.getpid()))
    try:
        descriptor = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        if exc.errno == errno.EEXIST:
            return
        raise FileError(path, "%sdirectory %s does not accept new files (%s); fix its permissions or choose another "
                              "path." % (label, directory, exc.strerror), field)
    os.close(descriptor)
    _unlink_quietly(probe)


def backup_path_for(path, now=None):
    """'<path>.<UTC timestamp with microseconds>~' - sortable and unique per run."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return '%s.%s~' % (path, now.strftime('%Y%m%dT%H%M%S.%fZ'))


def _write_temp(path, content, mode):
    """Write ``content`` to a new temp file beside ``path`` created with ``mode``; return its name."""
    directory = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, 'O_CLOEXEC', 0)
    for attempt in range(100):
        temp = os.path.join(directory, '.%s.%d.%d.tmp' % (base, os.getpid(), attempt))
        try:
            # The final mode from the first byte: the umask must not widen nor narrow it,
            # and a key never exists with a looser mode, even as a temp file.
            descriptor = os.open(temp, flags, 0o600)
        except OSError as exc:
            if exc.errno == errno.EEXIST:
                continue
            raise
        break
    else:  # pragma: no cover - 100 stale temp files of our own pid
        raise FileError(path, "could not create a temporary file beside %s; remove stale .tmp files there." % path)
    try:
        os.fchmod(descriptor, mode)
        view = memoryview(content)
        while view:
            written = os.write(descriptor, view)
            view = view[written:]
    except BaseException:
        os.close(descriptor)
        _unlink_quietly(temp)
        raise
    return temp, descriptor


def _unlink_quietly(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def _fsync_directory(directory):
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _syncfs(descriptor):
    """syncfs(2) on Linux; False where it is unavailable so callers fsync per file."""
    global _libc
    if _libc is None:
        try:
            # CDLL(None) is the running process, which links libc; find_library('c') would
            # spawn ldconfig to find the same thing.
            _libc = ctypes.CDLL(None, use_errno=True)
            _libc.syncfs  # pylint: disable=pointless-statement
        except (OSError, AttributeError):
            _libc = False
    if not _libc:
        return False
    return _libc.syncfs(descriptor) == 0


def _copy_backup(path, mode):
    """Copy the current ``path`` aside with ``mode`` (0600 for keys); return the copy's name."""
    target = backup_path_for(path)
    content = read_if_exists(path)
    if content is None:
        return None
    temp, descriptor = _write_temp(target, content, mode)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    os.rename(temp, target)
    return target


class WriteResult(object):
    __slots__ = ('path', 'changed', 'backup_path')

    def __init__(self, path, changed, backup_path=None):
        self.path = path
        self.changed = changed
        self.backup_path = backup_path


def needs_write(path, content, mode):
    """True when ``path`` lacks ``content`` or has another mode."""
    existing = read_if_exists(path)
    return existing != content or current_mode(path) != mode


class AtomicBatch(object):
    """Stage many files, then commit them together.

    stage() writes each new content to a temp file (nothing visible changes yet);
    commit() makes them durable, takes backups and renames them into place. If
    staging fails, abort() (also called by commit's failure path and by the context
    manager) removes every temp file so the directory is as it was.
    """

    def __init__(self):
        self._staged = []  # (path, temp, descriptor, mode, backup, backup_mode)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, traceback):
        if exc_type is not None:
            self.abort()
        return False

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
            temp, descriptor = _write_temp(path, content, mode)
        except FileError:
            self.abort()
            raise
        except (IOError, OSError) as exc:
            self.abort()
            raise FileError(path, "%scannot write %s: %s; fix the directory or its permissions." % (
                ("%s: " % field) if field else '', path, exc.strerror or exc), field)
        self._staged.append((path, temp, descriptor, mode, backup and existing is not None, backup_mode))
        return True

    def abort(self):
        for _path, temp, descriptor, _mode, _backup, _backup_mode in self._staged:
            if descriptor is not None:
                try:
                    os.close(descriptor)
                except OSError:
                    pass
            if temp is not None:
                _unlink_quietly(temp)
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
                backups[path] = _copy_backup(path, backup_mode or mode) if backup else None
                os.rename(temp, path)
                directories.add(os.path.dirname(os.path.abspath(path)))
            for directory in directories:
                _fsync_directory(directory)
        except (IOError, OSError) as exc:
            self.abort()
            raise FileError(getattr(exc, 'filename', None), "cannot write %s: %s; fix the directory or its permissions." % (
                getattr(exc, 'filename', None) or 'the output files', exc.strerror or exc))
        self._staged = []
        return backups

    @staticmethod
    def _flush(staged):
        open_descriptors = [entry[2] for entry in staged if entry[2] is not None]
        try:
            if len(open_descriptors) >= _SYNCFS_THRESHOLD and _syncfs(open_descriptors[0]):
                return
            for descriptor in open_descriptors:
                os.fsync(descriptor)
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


def remove(path, backup=False, backup_mode=None):
    """Delete ``path`` (after an optional backup copy); WriteResult.changed False when absent."""
    if not os.path.lexists(path):
        return WriteResult(path, False)
    backup_path = None
    try:
        if backup:
            backup_path = _copy_backup(path, backup_mode or current_mode(path) or KEY_MODE)
        os.unlink(path)
    except (IOError, OSError) as exc:
        raise FileError(path, "cannot remove %s: %s; fix its directory's permissions." % (path, exc.strerror or exc))
    _fsync_directory(os.path.dirname(os.path.abspath(path)))
    return WriteResult(path, True, backup_path)
