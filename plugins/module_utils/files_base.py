# -*- coding: utf-8 -*-
# Copyright: zerotrust.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every file writer shares: modes, reading what is there, refusing an unusable path
early, temporary files created with their final mode, flushing, backups and removal.

A private key must never exist on disk with a mode looser than asked, not even for a
moment: every file is created 0600 and set to its final mode before its first byte.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ctypes
import datetime
import errno
import os
import stat

from ansible_collections.zerotrust.mtls.plugins.module_utils.errors import MtlsError, read_file

KEY_MODE = 0o600
CERT_MODE = 0o644


# Above this many staged files a single syncfs(2) of the filesystem is cheaper than
# one fsync(2) per file (measured: 2.7 ms per fsync here, 0.14 s for syncfs of 2,000).
SYNCFS_THRESHOLD = 16
_libc = None

# Marks "the caller has not read this file" (None means "read it: there is no file").
UNREAD = object()


class FileError(MtlsError):
    """An output path problem: ``str(e)`` names the path (and option) and the fix."""

    def __init__(self, path, message, field=None):
        super(FileError, self).__init__(message, field)
        self.path = path


def parse_mode(mode, default, field="mode"):
    """'0600', '600', 0o600 or None (default) -> int."""
    if mode is None or mode == "":
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
        with open(path, "rb") as handle:
            return handle.read()
    except (IOError, OSError) as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise


def read_with_mode(path, field=None):
    """(bytes, mode) of the file, or (None, None) when it does not exist.

    One path lookup for both (fstat on the open file): a batch rerun reads 2,000 files,
    each behind two symlinks in the versioned layout. With ``field`` (the option naming
    ``path``) a file that cannot be read is the MtlsError errors.read_file raises for it.
    """
    try:
        with open(path, "rb") as handle:
            return handle.read(), stat.S_IMODE(os.fstat(handle.fileno()).st_mode)
    except (IOError, OSError) as exc:
        if exc.errno == errno.ENOENT:
            return None, None
        if field is not None:
            # One wording for every unreadable input: read_file meets the same failure
            # again and raises its sentence.
            read_file(path, field, required=False)
        raise


def current_mode(path):
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return None


def check_writable(path, field=None):
    """Refuse early (before anything is written) a path whose directory is missing or read-only."""
    directory = os.path.dirname(os.path.abspath(path))
    label = ("%s " % field) if field else ""
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
    probe = os.path.join(directory, ".%s.%d.probe" % (os.path.basename(path), os.getpid()))
    try:
        descriptor = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        if exc.errno == errno.EEXIST:
            return
        raise FileError(
            path, "%sdirectory %s does not accept new files (%s); fix its permissions or choose another path." % (label, directory, exc.strerror), field
        )
    os.close(descriptor)
    unlink_quietly(probe)


def backup_path_for(path, now=None):
    """'<path>.<UTC timestamp with microseconds>~' - sortable and unique per run."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return "%s.%s~" % (path, now.strftime("%Y%m%dT%H%M%S.%fZ"))


def create_file(path, content, mode):
    """A new file ``path`` (never an existing one) holding ``content`` with ``mode``; its open descriptor.

    The final mode from the first byte: the umask must not widen nor narrow it, and a
    key never exists with a looser mode, even as a temp file. EEXIST is the caller's to
    handle; on any other failure nothing is left behind.
    """
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        os.fchmod(descriptor, mode)
        view = memoryview(content)
        while view:
            view = view[os.write(descriptor, view) :]
    except BaseException:
        os.close(descriptor)
        unlink_quietly(path)
        raise
    return descriptor


def write_temp(path, content, mode):
    """Write ``content`` to a new temp file beside ``path`` created with ``mode``; (its name, descriptor)."""
    directory = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    for attempt in range(100):
        temp = os.path.join(directory, ".%s.%d.%d.tmp" % (base, os.getpid(), attempt))
        try:
            return temp, create_file(temp, content, mode)
        except OSError as exc:
            if exc.errno != errno.EEXIST:
                raise
    # Reached only past 100 stale temp files of our own pid.
    raise FileError(path, "could not create a temporary file beside %s; remove stale .tmp files there." % path)


def write_error(path, error, field=None):
    """The FileError for an OSError met while writing ``path`` (the value of option ``field``)."""
    return FileError(
        path, "%scannot write %s: %s; fix the directory or its permissions." % (("%s: " % field) if field else "", path, error.strerror or error), field
    )


def remove_error(path, error):
    """The FileError for an OSError met while removing ``path``."""
    return FileError(path, "cannot remove %s: %s; fix its directory's permissions." % (path, error.strerror or error))


def close_quietly(descriptor):
    try:
        os.close(descriptor)
    except OSError:
        pass


def unlink_quietly(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def fsync_directory(directory):
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


def syncfs(descriptor):
    """syncfs(2) on Linux; False where it is unavailable so callers fsync per file."""
    global _libc
    if _libc is None:
        try:
            # CDLL(None) is the running process, which links libc; find_library('c') would
            # spawn ldconfig to find the same thing.
            _libc = ctypes.CDLL(None, use_errno=True)
            _libc.syncfs.restype = ctypes.c_int  # AttributeError where libc has no syncfs
        except (OSError, AttributeError):
            _libc = False
    if not _libc:
        return False
    return _libc.syncfs(descriptor) == 0


def flush(descriptors):
    """Make what ``descriptors`` wrote durable: one syncfs(2) for many files, else fsync(2) each."""
    if len(descriptors) >= SYNCFS_THRESHOLD and syncfs(descriptors[0]):
        return
    for descriptor in descriptors:
        os.fsync(descriptor)


def copy_backup(path, mode):
    """Copy the current ``path`` aside with ``mode`` (0600 for keys); return the copy's name."""
    target = backup_path_for(path)
    content = read_if_exists(path)
    if content is None:
        return None
    temp, descriptor = write_temp(target, content, mode)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    os.rename(temp, target)
    return target


class WriteResult(object):
    __slots__ = ("path", "changed", "backup_path")

    def __init__(self, path, changed, backup_path=None):
        self.path = path
        self.changed = changed
        self.backup_path = backup_path


def needs_write(path, content, mode):
    """True when ``path`` lacks ``content`` or has another mode."""
    existing, existing_mode = read_with_mode(path)
    return existing != content or existing_mode != mode


class Batch(object):
    """Context manager of the batch writers: an exception inside the block aborts the batch."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, traceback):
        if exc_type is not None:
            self.abort()
        return False

    def abort(self):
        raise NotImplementedError


def remove(path, backup=False, backup_mode=None):
    """Delete ``path`` (after an optional backup copy); WriteResult.changed False when absent."""
    if not os.path.lexists(path):
        return WriteResult(path, False)
    backup_path = None
    try:
        if backup:
            backup_path = copy_backup(path, backup_mode or current_mode(path) or KEY_MODE)
        os.unlink(path)
    except (IOError, OSError) as exc:
        raise remove_error(path, exc)
    fsync_directory(os.path.dirname(os.path.abspath(path)))
    return WriteResult(path, True, backup_path)


def same_directory(paths):
    """The one directory holding every path of ``paths`` (None entries ignored), or None."""
    directories = set(os.path.dirname(os.path.abspath(path)) for path in paths if path)
    return directories.pop() if len(directories) == 1 else None
