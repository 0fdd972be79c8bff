"""The layer ships exactly what the tests ran with: pinned, and the same pins as pyproject.toml."""

from __future__ import annotations

import tomllib
from importlib.metadata import requires, version

from packaging.requirements import Requirement

from tests.build.cloudformation import ROOT


def layer_requirements() -> dict[str, Requirement]:
    lines = (ROOT / "layers/common/requirements.txt").read_text().splitlines()
    parsed = [Requirement(line) for line in (raw.split("#", 1)[0].strip() for raw in lines) if line]
    return {r.name.lower(): r for r in parsed}


def project_dependencies() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {r.name.lower(): r for r in map(Requirement, project["dependencies"])}


def pinned_version(requirement: Requirement) -> str:
    (spec,) = requirement.specifier
    assert spec.operator == "==", f"{requirement} is not pinned"
    return spec.version


def test_the_layer_pins_every_requirement_exactly_as_pyproject_does():
    layer, project = layer_requirements(), project_dependencies()
    assert set(layer) == set(project)
    for name, requirement in layer.items():
        assert pinned_version(requirement) == pinned_version(project[name]), name
        assert requirement.extras == project[name].extras, name


def test_botocore_is_the_release_boto3_was_built_with():
    layer = layer_requirements()
    assert "botocore" in layer, "left open, the layer build resolves whatever botocore is newest that day"
    boto3_pin, botocore_pin = pinned_version(layer["boto3"]), pinned_version(layer["botocore"])
    assert version("boto3") == boto3_pin, "the environment runs another boto3 than the layer ships"
    declared = [Requirement(r) for r in requires("boto3") or []]
    (wanted,) = [r for r in declared if r.name == "botocore" and r.marker is None]
    assert wanted.specifier.contains(botocore_pin)
    (lower,) = [s.version for s in wanted.specifier if s.operator == ">="]
    assert botocore_pin == lower
