"""Static checks of the state machine that need the template: `python -m local.checks statelint FILE`.

statelint only accepts real ARNs in Resource, so each `${Name}` of the template's
DefinitionSubstitutions is filled with a well-formed placeholder ARN first; a placeholder the
template does not define is reported as an error of its own.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from samtranslator.yaml_helper import yaml_parse

from local.harness.sam import is_foreach_key

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def definition_substitution_names(template: Path) -> set[str]:
    """Every DefinitionSubstitutions key of every state machine in the template."""
    document = yaml_parse(template.read_text())
    names: set[str] = set()
    for logical_id, resource in document.get("Resources", {}).items():
        if is_foreach_key(logical_id):
            continue  # a loop of AWS::LanguageExtensions generates no state machine here
        if resource.get("Type") in {"AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine"}:
            names |= set((resource.get("Properties") or {}).get("DefinitionSubstitutions", {}))
    return names


def fill_substitutions(definition: str, names: set[str]) -> tuple[str, list[str]]:
    """Replace `${Name}` with a placeholder Lambda ARN; also return the names the template lacks."""
    missing = sorted({name for name in _PLACEHOLDER.findall(definition) if name not in names})
    filled = _PLACEHOLDER.sub(
        lambda match: f"arn:aws:lambda:us-east-1:123456789012:function:{match.group(1)}", definition
    )
    return filled, missing


def statelint(asl_path: Path, template: Path) -> int:
    """Run statelint on the definition with substitutions filled in; returns the exit code."""
    filled, missing = fill_substitutions(asl_path.read_text(), definition_substitution_names(template))
    if missing:
        print(f"{asl_path}: substitutions not defined in {template}: {', '.join(missing)}", file=sys.stderr)
        return 1
    json.loads(filled)  # a clear JSON error before statelint's
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        handle.write(filled)
    result = subprocess.run([sys.executable, "-m", "statelint", handle.name], check=False)
    Path(handle.name).unlink()
    if result.returncode == 0:
        print(f"{asl_path}: statelint OK")
    return result.returncode


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] != "statelint":
        print("usage: python -m local.checks statelint FILE.asl.json [template.yaml]", file=sys.stderr)
        return 2
    template = Path(argv[2]) if len(argv) > 2 else Path("template.yaml")
    return statelint(Path(argv[1]), template)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
