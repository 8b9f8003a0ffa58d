# -*- coding: utf-8 -*-
# Copyright (c) zerotrust.mtls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for zerotrust.mtls.mesh_policy: a mesh policy applied from the controller process.

BackendAction (plugins/action/mtls_cert.py) decides where mesh_policy runs; the backend is
module_utils/policy_apply.py, which the module imports too.
"""

from __future__ import annotations

from ansible_collections.zerotrust.mtls.plugins.action.mtls_cert import BackendAction
from ansible_collections.zerotrust.mtls.plugins.module_utils import kube_connection, policy_apply

kube_connection.preload_kubernetes_client()


class ActionModule(BackendAction):
    BACKEND = policy_apply
    MODULE = "zerotrust.mtls.mesh_policy"
