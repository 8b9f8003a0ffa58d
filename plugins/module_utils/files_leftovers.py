# -*- coding: utf-8 -*-
# Copyright: zerotrust.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What killed writers leave behind, found and removed before the next run writes.

A writer killed between staging and committing (SIGKILL, a full disk, a node reboot)
leaves version directories ``..data`` does not point to, temporary ``..data`` symlinks
and the ``.<name>.<pid>.<n>.tmp`` / ``.<name>.<pid>.probe`` files of the plain writers.
Each carries the pid of its writer, so a writer still at work keeps its files.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import re
import shutil

from ansible_collections.zerotrust.mtls.plugins.module_utils.files_base import unlink_quietly
from ansible_collections.zerotrust.mtls.plugins.module_utils.files_versioned import (
    DATA_TEMP_NAME,
    VERSION_DIR_NAME,
    current_version,
)

# What a killed writer leaves beside its target: write_temp's and check_writable's files.
_FILE_TEMP = re.compile(r"^\..+\.(?P<pid>\d+)\.\d+\.tmp$")
_PROBE = re.compile(r"^\..+\.(?P<pid>\d+)\.probe$")


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
        if not name.startswith("."):
            continue
        match = VERSION_DIR_NAME.match(name)
        if match:
            if current is None:
                current = current_version(directory) or ""
            if name != current and not _pid_alive(int(match.group("pid"))):
                found.append(name)
            continue
        match = DATA_TEMP_NAME.match(name)
        if not match:
            match = _FILE_TEMP.match(name) or _PROBE.match(name)
            if match and names is not None and not any(name.startswith(".%s." % n) for n in names):
                continue
        if match and not _pid_alive(int(match.group("pid"))):
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
                unlink_quietly(path)
    return found


def remove_leftovers_beside(paths, dry_run=False):
    """Remove (unless ``dry_run``) what killed writers of ``paths`` left in their directories.

    Returns the paths of the leftovers; check mode only counts them.
    """
    by_directory = {}
    for path in paths:
        if path:
            by_directory.setdefault(os.path.dirname(os.path.abspath(path)), []).append(os.path.basename(path))
    return [
        os.path.join(directory, name)
        for directory in sorted(by_directory)
        for name in remove_leftovers(directory, names=by_directory[directory], dry_run=dry_run)
    ]
