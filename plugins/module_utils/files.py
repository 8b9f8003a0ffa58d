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
renames them all, flushing the filesystem once instead of once per file. Each rename
is atomic, the set is not.

A directory whose files must change together (a certificate and its key) goes through
VersionedBatch, the layout of kubelet's AtomicWriter: the files live in a hidden version
directory ``<dir>/..<timestamp>.<pid>.<n>/``, ``<dir>/..data`` is a symlink to the
current one, and each visible name ``<dir>/<name>`` is a symlink ``..data/<name>`` that
never changes. A commit builds a complete new version directory and renames a new
``..data`` symlink over the old one: one atomic step switches every file at once, so a
crash at any moment leaves the old or the new set visible, never a mix.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ctypes
import datetime
import errno
import os
import re
import shutil
import stat

from ansible_collections.zerotrust.mtls.plugins.module_utils.errors import MtlsError, read_file

KEY_MODE = 0o600
CERT_MODE = 0o644

# Above this many staged files a single syncfs(2) of the filesystem is cheaper than
# one fsync(2) per file (measured: 2.7 ms per fsync here, 0.14 s for syncfs of 2,000).
_SYNCFS_THRESHOLD = 16
_libc = None


# Marks "the caller has not read this file" (None means "read it: there is no file").
UNREAD = object()


class FileError(MtlsError):
    """An output path problem: ``str(e)`` names the path (and option) and the fix."""

    def __init__(self, path, message, field=None):
        super(FileError, self).__init__(message, field)
        self.path = path


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


def read_with_mode(path, field=None):
    """(bytes, mode) of the file, or (None, None) when it does not exist.

    One path lookup for both (fstat on the open file): a batch rerun reads 2,000 files,
    each behind two symlinks in the versioned layout. With ``field`` (the option naming
    ``path``) a file that cannot be read is the MtlsError errors.read_file raises for it.
    """
    try:
        with open(path, 'rb') as handle:
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
    existing, existing_mode = read_with_mode(path)
    return existing != content or existing_mode != mode


class _Batch(object):
    """Context manager of the batch writers: an exception inside the block aborts the batch."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, traceback):
        if exc_type is not None:
            self.abort()
        return False

    def abort(self):
        raise NotImplementedError


class AtomicBatch(_Batch):
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


# --------------------------------------------------------------------------- versioned directories

DATA_LINK = '..data'
# ..<UTC timestamp>.<pid of the writer>.<n>: sortable, unique, and it says who made it.
_VERSION_DIR = re.compile(r'^\.\.\d{8}T\d{6}\.\d{6}Z\.(?P<pid>\d+)\.\d+$')
_DATA_TEMP = re.compile(r'^\.\.data_tmp\.(?P<pid>\d+)\.\d+$')
# What a killed writer leaves beside its target: _write_temp's and check_writable's files.
_FILE_TEMP = re.compile(r'^\..+\.(?P<pid>\d+)\.\d+\.tmp$')
_PROBE = re.compile(r'^\..+\.(?P<pid>\d+)\.probe$')


def _pid_alive(pid):
    """False only when no process ``pid`` exists (its leftovers are then ours to remove)."""
    if pid == os.getpid():
        return True
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno != errno.ESRCH
    return True


def is_versioned_link(path):
    """True when ``path`` is the symlink ``..data/<its name>`` of the versioned layout."""
    try:
        return os.readlink(path) == DATA_LINK + '/' + os.path.basename(path)
    except (OSError, ValueError):
        return False


def current_version(directory):
    """The name of the version directory ``<directory>/..data`` points to, or None."""
    try:
        target = os.readlink(os.path.join(directory, DATA_LINK))
    except OSError:
        return None
    return target if _VERSION_DIR.match(target) else None


def find_leftovers(directory, names=None):
    """Names in ``directory`` that killed runs left behind, sorted.

    Version directories ``..data`` does not point to, temporary ``..data`` symlinks,
    and the ``.<name>.<pid>.<n>.tmp`` / ``.<name>.<pid>.probe`` files of the plain
    writers - each only when the process named in it no longer exists, so a writer
    still at work in the same directory keeps its files. ``names`` (basenames)
    restricts the temp files to those of these names.
    """
    try:
        entries = os.listdir(directory)
    except OSError:
        return []
    current = None
    found = []
    for name in entries:
        if not name.startswith('.'):
            continue
        match = _VERSION_DIR.match(name)
        if match:
            if current is None:
                current = current_version(directory) or ''
            if name != current and not _pid_alive(int(match.group('pid'))):
                found.append(name)
            continue
        match = _DATA_TEMP.match(name)
        if not match:
            match = _FILE_TEMP.match(name) or _PROBE.match(name)
            if match and names is not None and not any(name.startswith('.%s.' % n) for n in names):
                continue
        if match and not _pid_alive(int(match.group('pid'))):
            found.append(name)
    return sorted(found)


def remove_leftovers(directory, names=None, dry_run=False):
    """Remove (unless ``dry_run``) what find_leftovers() finds; return those names."""
    found = find_leftovers(directory, names)
    if not dry_run:
        for name in found:
            path = os.path.join(directory, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                _unlink_quietly(path)
    return found


def remove_versioned(path, backup=False, backup_mode=None):
    """Delete ``path`` and, when it is a link of the versioned layout, its file in the current version.

    The visible symlink goes first (after an optional backup copy of what it shows), then
    ``..data/<name>``; when that leaves the current version empty, ``..data`` and the version
    directory go too. Other names of the directory are not touched. A plain file or a
    foreign symlink is removed as remove() does. WriteResult.changed False when absent.
    """
    if not is_versioned_link(path):
        return remove(path, backup=backup, backup_mode=backup_mode)
    directory = os.path.dirname(os.path.abspath(path))
    result = remove(path, backup=backup, backup_mode=backup_mode)
    version = current_version(directory)
    if version is None:
        return result
    version_dir = os.path.join(directory, version)
    try:
        target = os.path.join(version_dir, os.path.basename(path))
        if os.path.lexists(target):
            os.unlink(target)
        if not os.listdir(version_dir):
            os.unlink(os.path.join(directory, DATA_LINK))
            os.rmdir(version_dir)
    except (IOError, OSError) as exc:
        raise FileError(path, "cannot remove %s: %s; fix its directory's permissions." % (path, exc.strerror or exc))
    _fsync_directory(directory)
    return result


def same_directory(paths):
    """The one directory holding every path of ``paths`` (None entries ignored), or None."""
    directories = set(os.path.dirname(os.path.abspath(path)) for path in paths if path)
    return directories.pop() if len(directories) == 1 else None


def _link_or_copy(source, target, link=True):
    """Hard-link ``source`` as ``target``; copy it (same mode, flushed) where link() fails or not ``link``."""
    if link:
        try:
            os.link(source, target)
            return
        except OSError as exc:
            if exc.errno == errno.EEXIST:
                raise
    with open(source, 'rb') as handle:
        content = handle.read()
    mode = stat.S_IMODE(os.stat(source).st_mode)
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, 'O_CLOEXEC', 0), 0o600)
    try:
        os.fchmod(descriptor, mode)
        view = memoryview(content)
        while view:
            view = view[os.write(descriptor, view):]
        os.fsync(descriptor)
    except BaseException:
        os.close(descriptor)
        _unlink_quietly(target)
        raise
    os.close(descriptor)


class VersionedBatch(_Batch):
    """Files of one directory replaced all at once (kubelet's AtomicWriter layout).

    Same interface as AtomicBatch, for paths directly in ``directory``. stage() writes
    new content into a new hidden version directory (nothing visible changes); commit()
    flushes it, hard-links every other file of the current version into it (copies
    where link() fails), flushes the directory, renames a new ``..data`` symlink over
    the old one, creates the visible symlinks that are missing, and removes the old
    version directory. A plain file found at a staged name (the layout of older
    releases) is first adopted as it is - hard-linked into a version, then replaced by
    its symlink, which shows the same bytes - so even converting never shows a new
    certificate beside an old key.
    """

    def __init__(self, directory):
        self.directory = os.path.abspath(directory)
        self._version = None      # the new version directory, made at the first write
        self._descriptors = []    # open files of the new version, flushed at commit
        self._written = set()     # names written into the new version
        self._adopt = []          # plain files (or foreign symlinks) to bring into the layout
        self._backup = {}         # name -> mode of its backup copy
        self._names = []          # every staged name: its visible symlink must exist
        self._linked = set()      # staged names whose visible symlink is already in place

    in_layout = staticmethod(is_versioned_link)

    def _name_of(self, path, field):
        name = os.path.basename(path)
        if not (path.startswith(self.directory) and path[len(self.directory):] == '/' + name) \
                and os.path.dirname(os.path.abspath(path)) != self.directory or not name or name.startswith('..'):
            raise FileError(path, "%s%s is not a file name directly in %s." % (
                ("%s: " % field) if field else '', path, self.directory), field)
        return name

    def _new_version_dir(self):
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime('%Y%m%dT%H%M%S.%fZ')
        try:
            mode = stat.S_IMODE(os.stat(self.directory).st_mode)
        except OSError:
            mode = 0o755
        for attempt in range(100):
            path = os.path.join(self.directory, '..%s.%d.%d' % (stamp, os.getpid(), attempt))
            try:
                os.mkdir(path, 0o700)
            except OSError as exc:
                if exc.errno == errno.EEXIST:
                    continue
                raise
            # Readers of the files pass through it: the directory's own permissions.
            os.chmod(path, mode)
            return path
        raise FileError(self.directory, "could not create a version directory in %s; remove stale ..* "
                                        "directories there." % self.directory)  # pragma: no cover

    def stage(self, path, content, mode, backup=False, backup_mode=None, existing=UNREAD, field=None):
        """Queue ``content`` for ``path``; False when it is already exactly that, in the layout."""
        name = self._name_of(path, field)
        if existing is UNREAD:
            existing = read_if_exists(path)
        # A name that shows no file is (re)linked at commit whatever it is now (absent, or a
        # dangling symlink): no need to look.
        linked = existing is not None and is_versioned_link(path)
        same = existing is not None and existing == content and current_mode(path) == mode
        if same and linked:
            return False
        if linked:
            self._linked.add(name)
        if not linked and existing is not None:
            self._adopt.append(name)
        if not same:
            try:
                if self._version is None:
                    self._version = self._new_version_dir()
                target = os.path.join(self._version, name)
                descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, 'O_CLOEXEC', 0), 0o600)
                self._descriptors.append(descriptor)
                os.fchmod(descriptor, mode)
                view = memoryview(content)
                while view:
                    view = view[os.write(descriptor, view):]
            except (IOError, OSError) as exc:
                self.abort()
                raise FileError(path, "%scannot write %s: %s; fix the directory or its permissions." % (
                    ("%s: " % field) if field else '', path, exc.strerror or exc), field)
            self._written.add(name)
            if backup and existing is not None and existing != content:
                self._backup[name] = backup_mode or mode
        self._names.append(name)
        return True

    def _close_descriptors(self):
        for descriptor in self._descriptors:
            try:
                os.close(descriptor)
            except OSError:
                pass
        self._descriptors = []

    def abort(self):
        """Forget everything staged; the new version directory goes, nothing visible changed."""
        self._close_descriptors()
        if self._version is not None:
            shutil.rmtree(self._version, ignore_errors=True)
        self.__init__(self.directory)

    def _switch(self, version):
        """Point ..data at ``version`` in one rename."""
        for attempt in range(100):
            temp = os.path.join(self.directory, '..data_tmp.%d.%d' % (os.getpid(), attempt))
            try:
                os.symlink(os.path.basename(version), temp)
            except OSError as exc:
                if exc.errno == errno.EEXIST:
                    continue
                raise
            break
        else:  # pragma: no cover
            raise FileError(self.directory, "could not create a temporary symlink in %s." % self.directory)
        try:
            os.rename(temp, os.path.join(self.directory, DATA_LINK))
        except BaseException:
            _unlink_quietly(temp)
            raise

    def _link_visible(self, name):
        """Make ``<directory>/<name>`` the symlink ``..data/<name>`` (replacing what is there)."""
        path = os.path.join(self.directory, name)
        target = DATA_LINK + '/' + name
        try:
            os.symlink(target, path)
            return
        except OSError as exc:
            if exc.errno != errno.EEXIST:
                raise
        if os.path.isdir(path) and not os.path.islink(path):
            raise OSError(errno.EISDIR, 'is a directory', path)
        temp = os.path.join(self.directory, '.%s.%d.0.tmp' % (name, os.getpid()))
        _unlink_quietly(temp)
        os.symlink(target, temp)
        try:
            os.rename(temp, path)
        except BaseException:
            _unlink_quietly(temp)
            raise

    @staticmethod
    def _carry_over(source, version, skip):
        """Hard-link every file of version ``source`` into ``version`` except ``skip``."""
        if source is None or not os.path.isdir(source):
            return
        for entry in os.scandir(source):
            if entry.name not in skip and entry.is_file(follow_symlinks=False):
                _link_or_copy(entry.path, os.path.join(version, entry.name))

    def _flush(self):
        try:
            if not (len(self._descriptors) >= _SYNCFS_THRESHOLD and _syncfs(self._descriptors[0])):
                for descriptor in self._descriptors:
                    os.fsync(descriptor)
        finally:
            self._close_descriptors()

    def commit(self):
        """Switch the directory to the staged files at once; return {path: backup_path or None}."""
        backups = dict((os.path.join(self.directory, name), None) for name in self._names)
        if not self._names:
            return backups
        made = []          # version directories made here, not (yet) current
        previous = []      # version directories replaced here, removed at the end
        switched = False
        try:
            self._flush()
            for name, mode in sorted(self._backup.items()):
                path = os.path.join(self.directory, name)
                backups[path] = _copy_backup(path, mode)
            current_name = current_version(self.directory)
            current = os.path.join(self.directory, current_name) if current_name else None
            if self._adopt:
                # Older releases' plain files: first a version holding them as they are,
                # each plain file then replaced by its symlink (same bytes either way).
                adopted = self._new_version_dir()
                made.append(adopted)
                for name in self._adopt:
                    # A symlink to a file elsewhere is copied: its target is not ours to share.
                    source = os.path.join(self.directory, name)
                    _link_or_copy(source, os.path.join(adopted, name), link=not os.path.islink(source))
                self._carry_over(current, adopted, set(self._adopt))
                _fsync_directory(adopted)
                self._switch(adopted)
                switched = True
                made.remove(adopted)
                if current:
                    previous.append(current)
                current = adopted
                for name in self._adopt:
                    self._link_visible(name)
                    self._linked.add(name)
                _fsync_directory(self.directory)
            if self._written:
                made.append(self._version)
                self._carry_over(current, self._version, self._written)
                _fsync_directory(self._version)
                self._switch(self._version)
                switched = True
                made.remove(self._version)
                if current:
                    previous.append(current)
            elif self._version is not None:
                made.append(self._version)
            # Visible names that are missing: certificates before keys, so that a key is
            # never visible without its certificate.
            for name in sorted(self._names, key=lambda n: n.endswith('.key')):
                if name not in self._linked:
                    self._link_visible(name)
            _fsync_directory(self.directory)
        except (IOError, OSError) as exc:
            self._close_descriptors()
            # Whatever ..data points to now stays (the old set, or the new one when the
            # failure came after the switch); every other version made here goes.
            now_current = current_version(self.directory)
            for version in set(made + previous + [self._version]):
                if version is not None and os.path.basename(version) != now_current:
                    shutil.rmtree(version, ignore_errors=True)
            self.__init__(self.directory)
            where = getattr(exc, 'filename', None) or self.directory
            raise FileError(where, "cannot write %s: %s; %s fix the directory or its permissions." % (
                where, exc.strerror or exc, 'the new files are in place but some names are not linked yet;'
                if switched else 'nothing visible changed;'))
        for version in previous + made:
            shutil.rmtree(version, ignore_errors=True)
        self.__init__(self.directory)
        return backups
