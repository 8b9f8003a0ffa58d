# -*- coding: utf-8 -*-
# Copyright: zerotrust.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # What the modules that write objects by server-side apply add to kube_auth (spec:
    # module_utils/args_kube_auth.py, APPLY_SPEC); read-only modules leave it out.
    DOCUMENTATION = r"""
options:
  force_conflicts:
    description:
      - Server-side apply refuses to overwrite fields another field manager owns and
        the module reports that conflict. With V(true), field manager C(zerotrust.mtls)
        takes those fields over.
    type: bool
    default: false
notes:
  - Objects are written with server-side apply as field manager C(zerotrust.mtls);
    check mode sends the same requests as a server-side dry run, so admission and schema
    validation happen there too and nothing is stored.
"""
