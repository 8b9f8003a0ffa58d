# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Snapshots of a directory tree, for the file-writing modules' tests: two equal snapshots
prove that a run (a refusal, check mode) changed nothing below the directory."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import stat


def directory_snapshot(directory):
    """{relative path: (bytes, mode), ('symlink', target) or, for a directory, 'path/':
    ('dir', mode)} of everything below ``directory``; links are recorded, not followed."""
    result = {}
    for root, dirs, names in os.walk(str(directory)):
        for name in names + dirs:
            path = os.path.join(root, name)
            rel = os.path.relpath(path, str(directory))
            if os.path.islink(path):
                result[rel] = ("symlink", os.readlink(path))
            elif os.path.isdir(path):
                result[rel + "/"] = ("dir", stat.S_IMODE(os.stat(path).st_mode))
            else:
                with open(path, "rb") as handle:
                    result[rel] = (handle.read(), stat.S_IMODE(os.stat(path).st_mode))
    return result
