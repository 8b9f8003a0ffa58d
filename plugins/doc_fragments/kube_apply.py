# -*- coding: utf-8 -*-
# Copyright: zerotrust.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # What the modules that write objects by server-side apply (mesh_policy, mtls_secret) add
    # to kube_auth (spec: module_utils/args_kube_auth.py, APPLY_SPEC); read-only modules leave
    # it out. Their attribute support levels are stated here because the shared batch path
    # (module_utils/kube_batch.py: read, prove by dry run, write) is what gives them; each
    # module adds the details of its own.
    DOCUMENTATION = r"""
options:
  force_conflicts:
    description:
      - Server-side apply refuses to overwrite fields another field manager owns and
        the module reports that conflict. With V(true), field manager C(zerotrust.mtls)
        takes those fields over.
    type: bool
    default: false
  parallel:
    description:
      - How many requests to keep in flight at once (reads, dry runs and writes of all
        namespaces); all share one connection pool.
    type: int
    default: 8
attributes:
  check_mode:
    support: full
    details:
      - An object whose declared fields all have the declared values, and that carries no field
        C(zerotrust.mtls) set before and no longer declares, is left alone without a request. Every
        other write is sent as a server-side dry run, as a real run sends it before its first write
        (new objects of one kind in one namespace by one dry run when nothing tells them apart), so
        C(changed) is exact.
  diff_mode:
    support: full
  idempotent:
    support: full
    details:
      - A second run with the same arguments sends no write.
notes:
  - Objects are written with server-side apply as field manager C(zerotrust.mtls);
    check mode sends the same requests as a server-side dry run, so admission and schema
    validation happen there too and nothing is stored.
"""
