"""The cert_exporter role: templates rendered by Ansible itself, then applied to the
local cluster (kwok runs the Pod), idempotently."""

from __future__ import annotations

import json
import os
import subprocess

import yaml

from cluster_helpers import REPO_ROOT, api_client, kubeconfig_path, scratch_namespace
from test_alert_rules import SHIPPED_ALERTS

ANSIBLE_PLAYBOOK = REPO_ROOT / ".venv" / "bin" / "ansible-playbook"
TEMPLATES = ["serviceaccount", "rbac", "trust-bundle-configmap", "deployment", "service", "servicemonitor", "prometheusrule", "dashboard-configmap"]

RENDER_PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  vars_files: [{defaults}]
  vars:
    ansible_python_interpreter: "{{{{ ansible_playbook_python }}}}"
  tasks:
    # set_fact runs on the controller without a module round trip; one copy at the end.
    - name: Render every template of the role
      ansible.builtin.set_fact:
        rendered: "{{{{ rendered | default({{}}) | combine({{item: lookup('ansible.builtin.template', item ~ '.yaml.j2') | from_yaml}}) }}}}"
      loop: {templates}
    - name: Write them out
      ansible.builtin.copy:
        dest: "{{{{ out_dir }}}}/rendered.json"
        content: "{{{{ rendered | to_json }}}}"
"""


def ansible_env(tmp_path):
    return {
        **os.environ,
        "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg"),
        "ANSIBLE_ROLES_PATH": str(REPO_ROOT / "roles"),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
        "ANSIBLE_NOCOLOR": "1",
    }


def render(tmp_path, **extra_vars) -> dict[str, object]:
    role = REPO_ROOT / "roles" / "cert_exporter"
    playbook = tmp_path / "render.yml"
    # Templates are looked up next to the playbook: point the lookup at the role's.
    playbook.write_text(RENDER_PLAYBOOK.format(defaults=role / "defaults" / "main.yml", templates=json.dumps(TEMPLATES)))
    (tmp_path / "templates").symlink_to(role / "templates")
    (tmp_path / "files").symlink_to(role / "files")
    out = tmp_path / "out"
    out.mkdir()
    variables = {"out_dir": str(out), **extra_vars}
    result = subprocess.run(
        [str(ANSIBLE_PLAYBOOK), "-i", "localhost,", "-c", "local", str(playbook), "-e", json.dumps(variables)],
        cwd=tmp_path,
        env=ansible_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    return json.loads((out / "rendered.json").read_text())


def test_default_rendering_least_privilege_and_listen_address(tmp_path):
    objects = render(tmp_path)
    rbac = objects["rbac"]
    kinds = [o["kind"] for o in rbac]
    assert kinds == ["ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"]
    cluster_role = rbac[0]
    assert {tuple(r["resources"]) for r in cluster_role["rules"]} == {("secrets",), ("configmaps",)}
    assert all(r["verbs"] == ["get", "list", "watch"] for o in rbac if "rules" in o for r in o["rules"])
    rotation_role = rbac[2]
    assert rotation_role["metadata"]["namespace"] == "mtls-system"
    assert rotation_role["rules"][0]["resourceNames"] == ["mtls-rotation-status"]

    container = objects["deployment"]["spec"]["template"]["spec"]["containers"][0]
    args = container["args"]
    assert "--listen=0.0.0.0:9793" in args
    assert "--include-configmaps" in args and "--rotation-configmap=mtls-system/mtls-rotation-status" in args
    assert not any(a.startswith("--namespace=") for a in args)
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert objects["deployment"]["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True

    dashboard = objects["dashboard-configmap"]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["zerotrust-mtls-certificates.json"])["uid"] == "zerotrust-mtls-certificates"
    alerts = {r["alert"] for g in objects["prometheusrule"]["spec"]["groups"] for r in g["rules"]}
    assert SHIPPED_ALERTS <= alerts


def test_namespaced_rendering_has_no_cluster_wide_rbac(tmp_path, root_ca):
    objects = render(
        tmp_path,
        cert_exporter_watch_namespaces=["shop", "payments"],
        cert_exporter_include_configmaps=False,
        cert_exporter_rotation_configmap="",
        cert_exporter_trust_bundle_pem=root_ca.pem.decode(),
        cert_exporter_alert_expires_soon_days=14,
    )
    rbac = objects["rbac"]
    assert [(o["kind"], o["metadata"].get("namespace")) for o in rbac] == [
        ("Role", "shop"),
        ("RoleBinding", "shop"),
        ("Role", "payments"),
        ("RoleBinding", "payments"),
    ]
    assert all(r["resources"] == ["secrets"] for o in rbac if "rules" in o for r in o["rules"])
    args = objects["deployment"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert [a for a in args if a.startswith("--namespace=")] == ["--namespace=shop", "--namespace=payments"]
    assert "--trust-bundle=/etc/mtls-exporter/trust/ca.crt" in args and "--include-configmaps" not in args
    assert objects["trust-bundle-configmap"]["data"]["ca.crt"] == root_ca.pem.decode()
    rule_text = yaml.safe_dump(objects["prometheusrule"])
    assert "< 14 * 86400" in rule_text


def test_role_applies_to_local_cluster_idempotently(tmp_path):
    path = kubeconfig_path()
    from kubernetes import client

    with scratch_namespace(api_client(path), "mtls-role") as namespace:
        playbook = tmp_path / "apply.yml"
        playbook.write_text(
            "- hosts: localhost\n  gather_facts: false\n  vars:\n    ansible_python_interpreter: '{{ ansible_playbook_python }}'\n  roles: [cert_exporter]\n"
        )
        variables = {
            "cert_exporter_kubeconfig": path,
            "cert_exporter_namespace": namespace,
            "cert_exporter_name": f"exp-{namespace[-8:]}",
            "cert_exporter_watch_namespaces": [namespace],
            "cert_exporter_rotation_configmap": f"{namespace}/mtls-rotation-status",
        }
        command = [str(ANSIBLE_PLAYBOOK), "-i", "localhost,", "-c", "local", str(playbook), "-e", json.dumps(variables)]
        first = subprocess.run(command, cwd=tmp_path, env=ansible_env(tmp_path), capture_output=True, text=True, timeout=600, check=False)
        assert first.returncode == 0, first.stdout[-5000:] + first.stderr[-2000:]
        assert "changed=1" in first.stdout
        second = subprocess.run(command, cwd=tmp_path, env=ansible_env(tmp_path), capture_output=True, text=True, timeout=600, check=False)
        assert second.returncode == 0, second.stdout[-5000:]
        assert "changed=0" in second.stdout, second.stdout[-3000:]
        custom = client.CustomObjectsApi(api_client(path))
        name = variables["cert_exporter_name"]
        assert custom.get_namespaced_custom_object("monitoring.coreos.com", "v1", namespace, "prometheusrules", name)
        assert custom.get_namespaced_custom_object("monitoring.coreos.com", "v1", namespace, "servicemonitors", name)
        deployment = client.AppsV1Api(api_client(path)).read_namespaced_deployment(name, namespace)
        assert "--listen=0.0.0.0:9793" in deployment.spec.template.spec.containers[0].args
