# -*- coding: utf-8 -*-
# Copyright: zerotrust.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one error base of the collection, the one way to read an input file, and the
stand-in for the exception classes of an optional library that did not import.

Every error a backend raises for something the user can fix derives from ``MtlsError``:
``str(error)`` is one sentence naming the option (``field``) and the fix, and it never
holds key material. ``module_backend.run_as_module`` turns any of them into the same
``fail_json``; anything else is a bug and keeps its traceback.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno


class MtlsError(Exception):
    """A problem the user can fix, told as one sentence; ``field`` is the option at fault."""

    def __init__(self, message, field=None):
        super(MtlsError, self).__init__(message)
        self.field = field


class NeverRaised(Exception):
    """Bound to the names of an optional library's exception classes when the library did
    not import (pki_support: cryptography), so that the except clauses naming them stay
    valid. Nothing raises it, so it is not an MtlsError."""


def read_file(path, field, required=True):
    """The bytes of ``path`` (the value of option ``field``), or None when it is absent
    and not ``required``. Any failure is an ``MtlsError`` naming ``field`` and the fix."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except (IOError, OSError) as error:
        if error.errno == errno.ENOENT:
            if not required:
                return None
            raise MtlsError("%s %s does not exist; give the path of an existing file." % (field, path), field)
        if error.errno == errno.EISDIR:
            raise MtlsError("%s %s is a directory; give the path of a file." % (field, path), field)
        raise MtlsError("%s %s cannot be read (%s); fix its permissions or give another path." % (field, path, error.strerror or type(error).__name__), field)
