"""The environments of a `samconfig.toml`: each one's stack name and parameter overrides.

`sam deploy --config-env NAME` reads `[NAME.deploy.parameters]` (then `[NAME.global.parameters]`);
`parameter_overrides` is a string of `Key="Value"` pairs (or a list of them), as SAM CLI writes it.
"""

from __future__ import annotations

import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class SamEnvironment:
    """What `sam deploy --config-env NAME` would deploy: a stack name and template parameters."""

    name: str
    stack_name: str
    parameters: dict[str, str]


def parse_parameter_overrides(value: str | list[str]) -> dict[str, str]:
    """`Key1="a b" Key2=c` (or ["Key1=a b", "Key2=c"]) -> {"Key1": "a b", "Key2": "c"}."""
    items = value if isinstance(value, list) else shlex.split(value)
    parameters: dict[str, str] = {}
    for item in items:
        key, separator, text = str(item).partition("=")
        if not separator or not key:
            raise ValueError(f"parameter_overrides entry {item!r} is not Key=Value")
        parameters[key] = text
    return parameters


def environments(path: Path) -> dict[str, SamEnvironment]:
    """Every environment of the file that names a stack (in `deploy` or `global` parameters)."""
    document = tomllib.loads(path.read_text(encoding="utf-8"))
    found: dict[str, SamEnvironment] = {}
    for name, commands in document.items():
        if not isinstance(commands, dict):
            continue
        merged: dict[str, Any] = {}
        for command in ("global", "deploy"):  # the command's own section wins over global
            merged.update((commands.get(command) or {}).get("parameters") or {})
        if "stack_name" in merged:
            overrides = merged.get("parameter_overrides") or ""
            found[name] = SamEnvironment(name, str(merged["stack_name"]), parse_parameter_overrides(overrides))
    return found
