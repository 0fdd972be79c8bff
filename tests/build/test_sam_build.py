"""`sam build` of the real template: the layer ships the package and arm64 wheels for python3.13."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from local.harness.sam import load_template

ROOT = Path(__file__).resolve().parents[2]


def python313_dir() -> str | None:
    """A folder holding a real python3.13 (pyenv's version folder first: its shims may not resolve)."""
    try:
        root = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=True).stdout.strip()
        candidates = sorted(Path(root, "versions").glob("3.13*/bin/python3.13"))
        if candidates:
            return str(candidates[-1].parent)
    except (OSError, subprocess.CalledProcessError):
        pass
    found = shutil.which("python3.13")
    return str(Path(found).parent) if found and "shims" not in found else None


@pytest.mark.skipif(python313_dir() is None, reason="sam build needs the runtime's python3.13 on PATH")
def test_sam_build_packages_the_layer_and_every_function(tmp_path):
    env = os.environ | {"PATH": f"{python313_dir()}{os.pathsep}{os.environ['PATH']}", "SAM_CLI_TELEMETRY": "0"}
    sam = Path(sys.executable).with_name("sam")
    build_dir = tmp_path / "build"
    result = subprocess.run(
        [str(sam), "build", "--template", str(ROOT / "template.yaml"), "--build-dir", str(build_dir)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # samconfig.toml's placeholder DomainNames only let the build expand the loop: the built template keeps
    # it, for CloudFormation to expand with the deployed DomainNames
    built = load_template(build_dir / "template.yaml")
    assert "Fn::ForEach::StartExportDomainGrants" in built["Resources"]
    assert not any(name.startswith("StartExportDomain") for name in built["Resources"])
    layer = build_dir / "CommonLayer" / "python"
    assert (layer / "cpexport" / "exports.py").is_file()
    assert any((layer / "botocore" / "data" / "appintegrations").glob("*/service-2.json*"))
    (native,) = (layer / "pydantic_core").glob("_pydantic_core.cpython-313-*.so")
    assert "aarch64" in native.name
    for function in (
        "PlanFunction",
        "StartExportFunction",
        "CheckExportFunction",
        "IndexExportFunction",
        "RecordFailureFunction",
        "NotifyFunction",
    ):
        assert (build_dir / function / "app.py").is_file()
