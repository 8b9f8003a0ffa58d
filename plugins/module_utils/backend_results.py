# -*- coding: utf-8 -*-
# Copyright: zerotrust.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The failure results of the PKI backends (issuance, ca_backend, crl_backend, trust_bundle,
cert_info_backend, audit_backend), as module_backend.run_as_module and the in-process action
plugins report them, the run_module of those whose modules take state present/absent, and
RunState, the base of what one run of such a backend finds and decides.

Each of these backends raises errors.MtlsError (or a subclass) for what the user can fix:
one sentence naming the option. Anything else is a bug, reported with its traceback.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import traceback

from ansible_collections.zerotrust.mtls.plugins.module_utils.errors import MtlsError
from ansible_collections.zerotrust.mtls.plugins.module_utils.pki_support import check_cryptography

KNOWN_ERRORS = (MtlsError,)


def failure_results(module_name, **extra):
    """(failure_result, unexpected_failure_result) of the backend of ``module_name``.

    ``extra`` (such as ``changed=False``) goes into both results.
    """

    def failure_result(error):
        return dict(msg=str(error), field=error.field, **extra)

    def unexpected_failure_result(error):
        # The type and message only: the parameters are never echoed, they hold passphrases.
        return dict(msg="%s failed unexpectedly: %s: %s" % (module_name, type(error).__name__, error), exception=traceback.format_exc(), **extra)

    return failure_result, unexpected_failure_result


class RunState(object):
    """What one run of a backend finds and decides, as the attributes its subclass names in
    ``__slots__``: each starts as None, but ``params`` (the module's) and ``now`` (the one
    moment the run works with)."""

    __slots__ = ("params", "now")

    def __init__(self, params, now):
        for cls in type(self).__mro__:
            for name in getattr(cls, "__slots__", ()):
                setattr(self, name, None)
        self.params = params
        self.now = now


def run_by_state(ensure, remove):
    """The run_module(module) of a backend whose module takes state: it checks that
    cryptography imported, then returns ``ensure(module)``, or ``remove(module)`` with
    state=absent. Both raise KNOWN_ERRORS for bad input."""

    def run_module(module):
        check_cryptography()
        if module.params["state"] == "absent":
            return remove(module)
        return ensure(module)

    return run_module
