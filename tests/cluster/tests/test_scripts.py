"""The cluster scripts fail with one clear sentence and leave no process behind.

These run the real up.sh/down.sh/status.sh against throwaway state directories and
ports, so they never touch the shared cluster. They need the cached binaries (any
earlier up.sh built them).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(SCRIPTS))
import cluster_ports  # noqa: E402  pylint: disable=wrong-import-position


@pytest.fixture()
def isolated_env(tmp_path):
    """Environment for a second cluster in tmp_path on ports nobody uses."""
    env = dict(os.environ)
    env["MTLS_CLUSTER_DIR"] = str(tmp_path / "cluster")
    env.update(cluster_ports.port_environment())
    yield env
    # Whatever happened, never leave a process of this throwaway cluster running.
    subprocess.run([SCRIPTS / "down.sh"], env=env, capture_output=True, check=False, timeout=60)


def processes_using(path: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if path in cmdline and "pytest" not in cmdline:
            found.append(f"{proc.name}: {cmdline[:120]}")
    return found


def run(script: str, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([SCRIPTS / script, *args], env=env, capture_output=True, text=True, check=False, timeout=180)


def last_error(result: subprocess.CompletedProcess) -> str:
    errors = [line for line in result.stderr.splitlines() if "ERROR:" in line]
    assert errors, f"no [cluster] ERROR line in:\n{result.stderr}"
    return errors[-1]


def test_up_refuses_a_port_in_use_and_leaves_nothing_running(isolated_env):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        isolated_env["MTLS_APISERVER_PORT"] = str(taken)

        result = run("up.sh", isolated_env)

    assert result.returncode != 0
    message = last_error(result)
    assert f"port {taken} on 127.0.0.1 (for kube-apiserver)" in message
    assert "MTLS_APISERVER_PORT" in message
    # etcd was started before the conflict showed; it must have been stopped again.
    assert "started etcd" in result.stderr
    assert processes_using(isolated_env["MTLS_CLUSTER_DIR"]) == []


def test_up_reports_an_etcd_that_cannot_start_and_leaves_nothing_running(isolated_env):
    etcd_dir = Path(isolated_env["MTLS_CLUSTER_DIR"]) / "etcd"
    etcd_dir.mkdir(parents=True)
    (etcd_dir / "member").write_text("not a directory\n")  # etcd cannot create its data here

    result = run("up.sh", isolated_env)

    assert result.returncode != 0
    message = last_error(result)
    assert "etcd exited while starting" in message
    assert "down.sh --purge" in message
    assert processes_using(isolated_env["MTLS_CLUSTER_DIR"]) == []


def test_status_fails_when_the_cluster_is_not_running(isolated_env):
    result = run("status.sh", isolated_env)

    assert result.returncode == 1
    assert "cluster: not running" in result.stdout
    assert "stopped" in result.stdout


def test_down_purge_refuses_a_directory_that_is_not_cluster_state(isolated_env):
    precious = Path(isolated_env["MTLS_CLUSTER_DIR"])
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me\n")

    result = run("down.sh", isolated_env, "--purge")

    assert result.returncode != 0
    assert "does not look like a local cluster state directory" in last_error(result)
    assert (precious / "notes.txt").read_text() == "keep me\n"


def test_down_rejects_an_unknown_argument(isolated_env):
    result = run("down.sh", isolated_env, "--everything")

    assert result.returncode != 0
    assert "unknown argument '--everything'" in last_error(result)
