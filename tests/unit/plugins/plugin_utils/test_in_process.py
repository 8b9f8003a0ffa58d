# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The in-process path of mtls_cert must give what the module path gives, byte for byte
on disk and field for field in the result; and it must only be taken for tasks that run
on the controller as the controller's user."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import json
import os

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.zerotrust.mtls.plugins.module_utils import issuance, pki
from ansible_collections.zerotrust.mtls.plugins.modules import mtls_cert
from ansible_collections.zerotrust.mtls.plugins.plugin_utils import in_process

PASSPHRASE = "unit-ca-passphrase-4d1f"
NAME = "zerotrust.mtls.mtls_cert"
# AnsibleModule calls itself basic.py under patch_module_args; in a real run it says the
# FQCN, as the in-process path does (checked by the mtls_cert integration target).
MODULE_NAME_IN_TESTS = "basic.py"


def as_module(capsys, args, check_mode=False, diff=False):
    args = dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            mtls_cert.main()
    return json.loads(capsys.readouterr().out)


def in_controller(args, check_mode=False, diff=False):
    # Through JSON like a task result, so both sides are compared as the controller sees them.
    return json.loads(json.dumps(in_process.run_module(issuance, NAME, args, check_mode, diff)))


@pytest.fixture
def ca(tmp_path):
    key = pki.generate_private_key()
    cert = pki.build_ca(key, "In-process unit CA", datetime.timedelta(days=90), path_length=0)
    (tmp_path / "ca.crt").write_bytes(pki.certificate_pem(cert))
    (tmp_path / "ca.key").write_bytes(pki.private_key_pem(key, PASSPHRASE))
    (tmp_path / "out").mkdir()
    return dict(ca_cert_path=str(tmp_path / "ca.crt"), ca_key_path=str(tmp_path / "ca.key"), ca_key_passphrase=PASSPHRASE)


def batch(tmp_path, ca, count=5, **extra):
    args = dict(ca, dest_dir=str(tmp_path / "out"), usage="client", certs=[{"name": "c%d" % i, "uris": ["spiffe://unit.test/c%d" % i]} for i in range(count)])
    args.update(extra)
    return args


def files_of(directory):
    # The visible names (mtls_cert's batch layout keeps the files behind them in hidden ..* entries).
    return dict((name, (directory / name).read_bytes()) for name in sorted(os.listdir(str(directory))) if not name.startswith("."))


def test_issue_in_controller_then_the_module_sees_nothing_to_do(tmp_path, ca, capsys):
    predicted = in_controller(batch(tmp_path, ca), check_mode=True)
    assert "failed" not in predicted, predicted.get("msg")
    assert predicted["changed"] is True and predicted["summary"] == {"missing": 5}
    assert os.listdir(str(tmp_path / "out")) == []

    issued = in_controller(batch(tmp_path, ca), diff=True)
    assert issued["changed"] is True and issued["summary"] == {"missing": 5}
    assert sorted(issued["diff"]["after"]) == ["c0", "c1", "c2", "c3", "c4"]
    on_disk = files_of(tmp_path / "out")
    for entry in issued["certs"]:
        cert = pki.load_certificate(on_disk[entry["name"] + ".crt"], "x")
        assert entry["serial"] == "%X" % cert.serial_number
        assert pki.key_matches_certificate(pki.load_private_key(on_disk[entry["name"] + ".key"], "x"), cert)

    rerun = as_module(capsys, batch(tmp_path, ca))
    assert rerun["changed"] is False and rerun["summary"] == {"unchanged": 5}
    assert [e["serial"] for e in rerun["certs"]] == [e["serial"] for e in issued["certs"]]
    assert files_of(tmp_path / "out") == on_disk


def test_results_are_the_same_both_ways(tmp_path, ca, capsys):
    as_module(capsys, batch(tmp_path, ca))
    args = batch(tmp_path, ca, count=7)  # five to keep, two new ones
    # Check mode is deterministic, so the two results must be equal as a whole.
    module_result = as_module(capsys, args, check_mode=True, diff=True)
    controller_result = in_controller(args, check_mode=True, diff=True)
    assert controller_result == module_result
    assert controller_result["summary"] == {"unchanged": 5, "missing": 2}
    assert set(controller_result) >= {"changed", "certs", "summary", "backup_files", "diff", "invocation"}


def test_bad_input_fails_with_the_same_message_and_writes_nothing(tmp_path, ca, capsys):
    cases = [
        batch(tmp_path, ca, valid_for="-3d"),
        batch(tmp_path, ca, certs=[{"name": "a", "dns_names": ["not a host"]}]),
        batch(tmp_path, ca, usage="clinet"),
        batch(tmp_path, ca, bogus_option=True),
        dict(batch(tmp_path, ca), cert_path=str(tmp_path / "x.crt")),
        dict(ca, cert_path=str(tmp_path / "out" / "x.crt")),
        batch(tmp_path, dict(ca, ca_key_passphrase="wrong-passphrase")),
    ]
    for args in cases:
        module_result = as_module(capsys, args)
        controller_result = in_controller(args)
        assert module_result["failed"] is True and controller_result["failed"] is True
        assert controller_result["msg"] == module_result["msg"].replace(MODULE_NAME_IN_TESTS, NAME), args
        assert controller_result.get("field") == module_result.get("field")
        assert os.listdir(str(tmp_path / "out")) == []


def test_no_log_values_are_masked_everywhere(tmp_path, ca):
    # The passphrase also used as a common name: AnsibleModule masks it wherever it appears.
    args = batch(tmp_path, ca, count=1)
    args["certs"][0]["common_name"] = PASSPHRASE
    result = in_process.run_module(issuance, NAME, args, False, True)
    assert result["changed"] is True
    assert PASSPHRASE not in json.dumps(result)
    assert result["invocation"]["module_args"]["ca_key_passphrase"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    assert "PRIVATE KEY" not in json.dumps(result)


def test_an_unexpected_error_is_reported_not_raised(tmp_path, ca, monkeypatch):
    def explode(*_args, **_kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(issuance, "_inspect", explode)
    result = in_process.run_module(issuance, NAME, batch(tmp_path, ca), False, False)
    assert result["failed"] is True
    assert result["msg"] == "mtls_cert failed unexpectedly: RuntimeError: disk on fire"


# ----------------------------------------------------------------------- when it is used


class _Stub(object):
    def __init__(self, **attributes):
        self.__dict__.update(attributes)


class _Action(object):
    """The attributes of an ActionBase that why_not_in_process reads."""

    def __init__(self, transport="local", become=False, async_val=0, environment=None):
        self._templar = _Stub(template=lambda value: value)
        self._connection = _Stub(transport=transport)
        self._play_context = _Stub(become=become)
        self._task = _Stub(async_val=async_val)
        self._environment = environment or {}

    def _compute_environment_string(self, out):
        out.update(self._environment)
        return ""


@pytest.mark.parametrize(
    "action, task_vars, reason",
    [
        (_Action(), {}, None),
        (_Action(), {"mtls_in_process": True}, None),
        (_Action(), {"mtls_in_process": "no"}, "mtls_in_process is false"),
        (_Action(), {"mtls_in_process": False}, "mtls_in_process is false"),
        (_Action(transport="ssh"), {}, "the connection is not local"),
        (_Action(transport="kubernetes.core.kubectl"), {}, "the connection is not local"),
        (_Action(become=True), {}, "become is set"),
        (_Action(async_val=30), {}, "the task is async"),
        (_Action(environment={"SSL_CERT_DIR": "/tmp"}), {}, "the task sets an environment"),
    ],
)
def test_only_controller_tasks_as_the_controller_user_run_in_process(action, task_vars, reason):
    assert in_process.why_not_in_process(action, task_vars) == reason
