"""The package installs with pip into a fresh venv outside the repository.

The Containerfile runs the same `pip install`, so this is what can be checked of the
image without a container engine.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

EXPORTER_DIR = os.path.join(os.path.dirname(__file__), "..")


def test_pip_install_into_fresh_venv(tmp_path):
    source = tmp_path / "src-copy"
    # Build from a copy so the build leaves no build/ or egg-info in the checkout.
    shutil.copytree(EXPORTER_DIR, source, ignore=shutil.ignore_patterns("build", "*.egg-info", ".pytest_cache", "__pycache__", "tests"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", str(source)], capture_output=True, text=True, timeout=900, check=False
    )
    assert pip.returncode == 0, pip.stderr[-3000:]

    version = subprocess.run([str(venv / "bin" / "mtls-exporter"), "--version"], capture_output=True, text=True, check=True)
    assert re.fullmatch(r"mtls-exporter \d+\.\d+\.\d+\n", version.stdout)
    help_text = subprocess.run([str(venv / "bin" / "python"), "-m", "mtls_exporter", "--help"], capture_output=True, text=True, check=True, cwd=tmp_path).stdout
    for option in (
        "--kubeconfig",
        "--listen",
        "--trust-bundle",
        "--namespace",
        "--label-selector",
        "--secret-type",
        "--include-configmaps",
        "--configmap-keys",
        "--opaque-secret-keys",
        "--watch-file",
        "--rotation-configmap",
    ):
        assert option in help_text, option


def test_containerfile_installs_the_package_as_non_root():
    with open(os.path.join(EXPORTER_DIR, "Containerfile")) as handle:
        lines = [line.strip() for line in handle if line.strip() and not line.startswith("#")]
    assert lines[0].startswith("FROM python:3.11-slim")
    assert any(line.startswith("RUN") and "pip install" in line for line in lines)
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0", "0:0")
    assert any(line.startswith("ENTRYPOINT") and "mtls-exporter" in line for line in lines)
