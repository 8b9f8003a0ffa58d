# Copyright (c) zerotrust.mtls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plays OpenShift's ingress operator for one moment: writes an IngressController's status
subresource (arguments: kubeconfig, namespace, name, available replicas), as the operator
does after every reconcile. Prints the new resourceVersion."""

import sys

from kubernetes import client, config


def main(kubeconfig, namespace, name, replicas):
    api = client.CustomObjectsApi(config.new_client_from_config(config_file=kubeconfig))
    patched = api.patch_namespaced_custom_object_status(
        "operator.openshift.io", "v1", namespace, "ingresscontrollers", name, {"status": {"availableReplicas": int(replicas), "domain": "apps.it-ocp.example"}}
    )
    print(patched["metadata"]["resourceVersion"])


if __name__ == "__main__":
    main(*sys.argv[1:5])
