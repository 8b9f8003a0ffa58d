# -*- coding: utf-8 -*-
# Copyright: zerotrust.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Files of one directory switched all at once: kubelet's AtomicWriter layout.

The files live in a hidden version directory ``<dir>/..<timestamp>.<pid>.<n>/``,
``<dir>/..data`` is a symlink to the current one, and each visible name ``<dir>/<name>``
is a symlink ``..data/<name>`` that never changes. A commit builds a complete new version
directory and renames a new ``..data`` symlink over the old one: one atomic step switches
every file at once, so a crash at any moment leaves the old or the new set visible, never
a mix (a certificate and its key).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import errno
import os
import re
import shutil
import stat

from ansible_collections.zerotrust.mtls.plugins.module_utils.files_base import (
    UNREAD,
    Batch,
    FileError,
    close_quietly,
    copy_backup,
    create_file,
    current_mode,
    flush,
    fsync_directory,
    read_if_exists,
    remove,
    remove_error,
    unlink_quietly,
    write_error,
)

DATA_LINK = "..data"
# ..<UTC timestamp>.<pid of the writer>.<n>: sortable, unique, and it says who made it.
VERSION_DIR_NAME = re.compile(r"^\.\.\d{8}T\d{6}\.\d{6}Z\.(?P<pid>\d+)\.\d+$")
# The new ..data symlink before it is renamed over the old one.
DATA_TEMP_NAME = re.compile(r"^\.\.data_tmp\.(?P<pid>\d+)\.\d+$")


def is_versioned_link(path):
    """True when ``path`` is the symlink ``..data/<its name>`` of the versioned layout."""
    try:
        return os.readlink(path) == DATA_LINK + "/" + os.path.basename(path)
    except (OSError, ValueError):
        return False


def current_version(directory):
    """The name of the version directory ``<directory>/..data`` points to, or None."""
    try:
        target = os.readlink(os.path.join(directory, DATA_LINK))
    except OSError:
        return None
    return target if VERSION_DIR_NAME.match(target) else None


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
        raise remove_error(path, exc)
    fsync_directory(directory)
    return result


def _link_or_copy(source, target, link=True):
    """Hard-link ``source`` as ``target``; copy it (same mode, flushed) where link() fails or not ``link``."""
    if link:
        try:
            os.link(source, target)
            return
        except OSError as exc:
            if exc.errno == errno.EEXIST:
                raise
    with open(source, "rb") as handle:
        content = handle.read()
    descriptor = create_file(target, content, stat.S_IMODE(os.stat(source).st_mode))
    try:
        os.fsync(descriptor)
    except BaseException:
        unlink_quietly(target)
        raise
    finally:
        os.close(descriptor)


class VersionedBatch(Batch):
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
        self._version = None  # the new version directory, made at the first write
        self._descriptors = []  # open files of the new version, flushed at commit
        self._written = set()  # names written into the new version
        self._adopt = []  # plain files (or foreign symlinks) to bring into the layout
        self._backup = {}  # name -> mode of its backup copy
        self._names = []  # every staged name: its visible symlink must exist
        self._linked = set()  # staged names whose visible symlink is already in place

    in_layout = staticmethod(is_versioned_link)

    def _name_of(self, path, field):
        name = os.path.basename(path)
        if (
            not (path.startswith(self.directory) and path[len(self.directory) :] == "/" + name)
            and os.path.dirname(os.path.abspath(path)) != self.directory
            or not name
            or name.startswith("..")
        ):
            raise FileError(path, "%s%s is not a file name directly in %s." % (("%s: " % field) if field else "", path, self.directory), field)
        return name

    def _new_version_dir(self):
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
        try:
            mode = stat.S_IMODE(os.stat(self.directory).st_mode)
        except OSError:
            mode = 0o755
        for attempt in range(100):
            path = os.path.join(self.directory, "..%s.%d.%d" % (stamp, os.getpid(), attempt))
            try:
                os.mkdir(path, 0o700)
            except OSError as exc:
                if exc.errno == errno.EEXIST:
                    continue
                raise
            # Readers of the files pass through it: the directory's own permissions.
            os.chmod(path, mode)
            return path
        raise FileError(self.directory, "could not create a version directory in %s; remove stale ..* directories there." % self.directory)  # pragma: no cover

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
                self._descriptors.append(create_file(os.path.join(self._version, name), content, mode))
            except (IOError, OSError) as exc:
                self.abort()
                raise write_error(path, exc, field)
            self._written.add(name)
            if backup and existing is not None and existing != content:
                self._backup[name] = backup_mode or mode
        self._names.append(name)
        return True

    def _close_descriptors(self):
        for descriptor in self._descriptors:
            close_quietly(descriptor)
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
            temp = os.path.join(self.directory, "..data_tmp.%d.%d" % (os.getpid(), attempt))
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
            unlink_quietly(temp)
            raise

    def _link_visible(self, name):
        """Make ``<directory>/<name>`` the symlink ``..data/<name>`` (replacing what is there)."""
        path = os.path.join(self.directory, name)
        target = DATA_LINK + "/" + name
        try:
            os.symlink(target, path)
            return
        except OSError as exc:
            if exc.errno != errno.EEXIST:
                raise
        if os.path.isdir(path) and not os.path.islink(path):
            raise OSError(errno.EISDIR, "is a directory", path)
        temp = os.path.join(self.directory, ".%s.%d.0.tmp" % (name, os.getpid()))
        unlink_quietly(temp)
        os.symlink(target, temp)
        try:
            os.rename(temp, path)
        except BaseException:
            unlink_quietly(temp)
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
            flush(self._descriptors)
        finally:
            self._close_descriptors()

    def _promote(self, version, current, skip, made, previous):
        """Give ``version`` (in ``made``) the files of version ``current`` but ``skip``, flush it
        and make it current; ``current`` moves to ``previous``."""
        self._carry_over(current, version, skip)
        fsync_directory(version)
        self._switch(version)
        made.remove(version)
        if current:
            previous.append(current)

    def _adopt_plain_files(self, current, made, previous):
        """Older releases' plain files: first a version holding them as they are, each plain
        file then replaced by its symlink (same bytes either way). Returns the new version."""
        adopted = self._new_version_dir()
        made.append(adopted)
        for name in self._adopt:
            # A symlink to a file elsewhere is copied: its target is not ours to share.
            source = os.path.join(self.directory, name)
            _link_or_copy(source, os.path.join(adopted, name), link=not os.path.islink(source))
        self._promote(adopted, current, set(self._adopt), made, previous)
        for name in self._adopt:
            self._link_visible(name)
            self._linked.add(name)
        fsync_directory(self.directory)
        return adopted

    def _link_missing_names(self):
        # Certificates before keys, so that a key is never visible without its certificate.
        for name in sorted(self._names, key=lambda n: n.endswith(".key")):
            if name not in self._linked:
                self._link_visible(name)
        fsync_directory(self.directory)

    def commit(self):
        """Switch the directory to the staged files at once; return {path: backup_path or None}."""
        backups = dict((os.path.join(self.directory, name), None) for name in self._names)
        if not self._names:
            return backups
        made = []  # version directories made here, not (yet) current
        previous = []  # version directories replaced here, removed at the end
        start = current_version(self.directory)
        try:
            self._flush()
            for name, mode in sorted(self._backup.items()):
                path = os.path.join(self.directory, name)
                backups[path] = copy_backup(path, mode)
            current = os.path.join(self.directory, start) if start else None
            if self._adopt:
                current = self._adopt_plain_files(current, made, previous)
            if self._written:
                made.append(self._version)
                self._promote(self._version, current, self._written, made, previous)
            elif self._version is not None:
                made.append(self._version)
            self._link_missing_names()
        except (IOError, OSError) as exc:
            raise self._failed(exc, start, made + previous)
        for version in previous + made:
            shutil.rmtree(version, ignore_errors=True)
        self.__init__(self.directory)
        return backups

    def _failed(self, error, start, versions):
        """Undo what a failed commit made; the FileError to raise (``start``: the version it began from)."""
        self._close_descriptors()
        # Whatever ..data points to now stays (the old set, or the new one when the
        # failure came after the switch); every other version made here goes.
        now_current = current_version(self.directory)
        for version in set(versions + [self._version]):
            if version is not None and os.path.basename(version) != now_current:
                shutil.rmtree(version, ignore_errors=True)
        self.__init__(self.directory)
        where = getattr(error, "filename", None) or self.directory
        return FileError(
            where,
            "cannot write %s: %s; %s fix the directory or its permissions."
            % (
                where,
                error.strerror or error,
                "the new files are in place but some names are not linked yet;" if now_current != start else "nothing visible changed;",
            ),
        )
