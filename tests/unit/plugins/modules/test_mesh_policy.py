# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""mesh_policy input handling: Istio's rules refused before the cluster is contacted.

Every call points at a closed loopback port, so a test that got past validation would
fail with "cannot reach": the assertions prove the rule check came first."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import socket

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.zerotrust.mtls.plugins.modules import mesh_policy


def _closed_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_module(capsys, **args):
    args.setdefault("host", "http://127.0.0.1:%d" % _closed_port())
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            mesh_policy.main()
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("args, fragment", [
    ({"namespace": "shop", "mode": "STRICT", "port_modes": {"8080": "DISABLE"}},
     "port_modes needs selector"),
    ({"mode": "STRICT", "selector": {"app": "web"}},
     "selector is set on a policy in the root namespace istio-system"),
    ({"namespace": "shop", "mode": "STRIKT"}, "value of mode must be one of"),
    ({"namespace": "shop", "selector": {"app": "web"}, "port_modes": {"80": "STRIKT"}},
     "port_modes.80 mode 'STRIKT' is unknown"),
    ({"namespace": "shop", "mesh": "linkerd", "mode": "DISABLE"},
     "mode DISABLE cannot be expressed with mesh linkerd"),
    ({"namespace": "shop"}, "nothing to apply"),
])
def test_rules_refused_before_the_cluster(capsys, args, fragment):
    result = run_module(capsys, **args)
    assert result["failed"] is True
    assert fragment in result["msg"]
    assert "cannot reach" not in result["msg"]


def test_valid_policy_then_meets_the_unreachable_server(capsys):
    port = _closed_port()
    result = run_module(capsys, namespace="shop", mode="STRICT",
                        host="http://127.0.0.1:%d" % port)
    assert result["msg"].startswith("cannot reach the Kubernetes API server at "
                                    "http://127.0.0.1:%d (from the host option)" % port)


def test_namespace_defaults_to_the_root_namespace():
    params = {"name": "default", "namespace": None, "mode": "STRICT", "selector": None,
              "port_modes": None, "root_namespace": "mesh-root", "destination_rule": None,
              "allow_principals": [], "allow_namespaces": [], "mesh": "istio",
              "policy_set": None, "port": None, "trust_domain": "cluster.local"}
    policy = mesh_policy.policy_from_params(params)
    assert policy.namespace == "mesh-root"
    assert policy.scope == "mesh"
    assert policy.policy_set == "default"
