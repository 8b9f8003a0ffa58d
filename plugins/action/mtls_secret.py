# -*- coding: utf-8 -*-
# Copyright (c) zerotrust.mtls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for zerotrust.mtls.mtls_secret: Secrets delivered from the controller process.

BackendAction (plugins/action/mtls_cert.py) decides where mtls_secret runs; the backend is
module_utils/secret_delivery.py, which the module imports too.
"""

from __future__ import annotations

from ansible_collections.zerotrust.mtls.plugins.action.mtls_cert import BackendAction
from ansible_collections.zerotrust.mtls.plugins.module_utils import kube_connection, secret_delivery

kube_connection.preload_kubernetes_client()


class ActionModule(BackendAction):
    BACKEND = secret_delivery
    MODULE = "zerotrust.mtls.mtls_secret"
