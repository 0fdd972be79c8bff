"""The defaults `sam deploy` itself would use: stack name, Region and profile of a samconfig.toml environment."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cpexport_cli.errors import InvalidInput

DEFAULT_CONFIG_FILE = "samconfig.toml"
DEFAULT_CONFIG_ENV = "default"


@dataclass(frozen=True)
class SamDefaults:
    """What one environment of samconfig.toml says about where the stack is."""

    stack_name: str | None = None
    region: str | None = None
    profile: str | None = None


def read_sam_defaults(path: Path, environment: str, *, required: bool) -> SamDefaults:
    """The `deploy` (then `global`) parameters of `environment`; empty when the file is absent and not required."""
    if not path.is_file():
        if required:
            raise InvalidInput(f"no --stack-name given and no {path} to read it from (run from the project folder)")
        return SamDefaults()
    try:
        document = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InvalidInput(f"{path}: {exc}") from None
    section = document.get(environment)
    if not isinstance(section, dict):
        known = ", ".join(name for name, value in document.items() if isinstance(value, dict)) or "none"
        raise InvalidInput(f"--config-env {environment}: {path} has no such environment (it has: {known})")
    found: dict[str, Any] = {}
    # sam reads a command's own section first, then the environment's global one.
    for command in ("deploy", "global"):
        parameters = (section.get(command) or {}).get("parameters") or {}
        for key in ("stack_name", "region", "profile"):
            if key not in found and isinstance(parameters.get(key), str) and parameters[key]:
                found[key] = parameters[key]
    defaults = SamDefaults(**found)
    if required and defaults.stack_name is None:
        raise InvalidInput(f"{path} [{environment}] names no stack_name: pass --stack-name")
    return defaults
