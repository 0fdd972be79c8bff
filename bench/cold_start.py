"""Cold start of each handler: its imports in a fresh interpreter against boto3's, and its built size.

Each function of template.yaml is imported as Lambda would (its code folder first on `sys.path`, the
layer's package next, its environment: the template's variables with placeholder values and the
Lambda runtime's own) in a new process, N times, interleaved with the same number of
`import boto3; boto3.client("s3")` runs; the figure is the ratio of the medians. A first round is
thrown away so that every run reads compiled bytecode. Sizes come from `sam build` (the function's
artifact and the layer), or, without a build, from the source folders.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LAYER = ROOT / "layers" / "common"
BASELINE = "boto3"
_TIMED_IMPORT = "import time\nt = time.perf_counter()\nimport {module}\nprint(time.perf_counter() - t)\n"
_TIMED_BOTO3 = (
    "import time\nt = time.perf_counter()\nimport boto3\nboto3.client('s3')\nprint(time.perf_counter() - t)\n"
)


@dataclass(frozen=True)
class Function:
    """A function of the template, as far as its cold start goes."""

    logical_id: str
    code_dir: Path
    module: str
    environment: dict[str, str]
    memory_mb: int


ACCOUNT = "123456789012"
REGION = "us-east-1"
# Values a deployment gives, for parameters without a default.
PARAMETER_VALUES = {"DomainNames": "bench"}


def _arn(resource_type: str, logical_id: str) -> str:
    service = resource_type.split("::")[1].lower()
    if service == "kms":
        return f"arn:aws:kms:{REGION}:{ACCOUNT}:key/00000000-0000-4000-8000-000000000000"
    return f"arn:aws:{service}:{REGION}:{ACCOUNT}:bench-{logical_id}"


def resolve(value: Any, template: dict[str, Any]) -> Any:
    """A template value with its intrinsics replaced by what a deployment would give (parameter defaults,
    resource names and ARNs of the right shape), the first branch of every condition taken."""
    if not isinstance(value, dict):
        return value
    ((function, argument),) = value.items()
    parameters = template.get("Parameters", {})
    resources = template.get("Resources", {})
    if function == "Ref":
        pseudo = {"AWS::AccountId": ACCOUNT, "AWS::Region": REGION, "AWS::StackName": "bench", "AWS::Partition": "aws"}
        if argument in pseudo:
            return pseudo[argument]
        if argument in parameters:
            default = PARAMETER_VALUES.get(argument, parameters[argument].get("Default", ""))
            return str(default).split(",") if parameters[argument]["Type"] == "CommaDelimitedList" else str(default)
        resource_type = resources.get(argument, {}).get("Type", "")
        return _arn(resource_type, argument) if resource_type in {"AWS::SNS::Topic"} else f"bench-{argument}"
    if function == "Fn::GetAtt":
        logical_id = argument[0] if isinstance(argument, list) else argument.split(".")[0]
        return _arn(resources.get(logical_id, {}).get("Type", "AWS::Unknown::Thing"), logical_id)
    if function == "Fn::Join":
        separator, items = argument
        resolved = resolve(items, template)
        parts = resolved if isinstance(resolved, list) else [resolve(item, template) for item in items]
        return separator.join(str(part) for part in parts)
    if function == "Fn::If":
        return resolve(argument[1], template)
    if function == "Fn::Sub":
        text = argument if isinstance(argument, str) else argument[0]
        for name, known in (("AWS::AccountId", ACCOUNT), ("AWS::Region", REGION), ("AWS::StackName", "bench")):
            text = text.replace("${" + name + "}", known)
        return text
    raise ValueError(f"no offline value for {function}")


def template_functions(template_path: Path = ROOT / "template.yaml") -> list[Function]:
    """Every `AWS::Serverless::Function` of the template, with its environment (Globals merged in)."""
    from samtranslator.yaml_helper import yaml_parse

    from local.harness.sam import is_foreach_key

    template = yaml_parse(template_path.read_text())
    defaults = template.get("Globals", {}).get("Function", {})
    common = (defaults.get("Environment") or {}).get("Variables") or {}
    found = []
    for logical_id, resource in template["Resources"].items():
        if is_foreach_key(logical_id) or resource.get("Type") != "AWS::Serverless::Function":
            continue
        properties = resource["Properties"]
        own = (properties.get("Environment") or {}).get("Variables") or {}
        variables = {name: str(resolve(value, template)) for name, value in {**common, **own}.items()}
        found.append(
            Function(
                logical_id=logical_id,
                code_dir=ROOT / properties["CodeUri"],
                module=str(properties["Handler"]).rsplit(".", 1)[0],
                environment=variables,
                memory_mb=int(properties.get("MemorySize", defaults.get("MemorySize", 128))),
            )
        )
    return found


def _runtime_environment(function: Function | None) -> dict[str, str]:
    """A clean environment: what the Lambda runtime sets, and static dummy credentials (never looked up)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        # The runtime hands credentials in the environment; without them botocore would probe the
        # instance metadata endpoint, which must never be contacted here.
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_EC2_METADATA_DISABLED": "true",
        "PYTHONDONTWRITEBYTECODE": "",
    }
    if function is not None:
        env |= function.environment | {
            "AWS_LAMBDA_FUNCTION_NAME": f"bench-{function.logical_id}",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
            "LAMBDA_TASK_ROOT": str(function.code_dir),
            "_HANDLER": f"{function.module}.lambda_handler",
            "PYTHONPATH": os.pathsep.join([str(function.code_dir), str(LAYER)]),
        }
    return {key: value for key, value in env.items() if value}


def _time_once(function: Function | None) -> float:
    code = _TIMED_BOTO3 if function is None else _TIMED_IMPORT.format(module=function.module)
    completed = subprocess.run(  # our own interpreter, our own code
        [sys.executable, "-c", code],
        cwd=function.code_dir if function is not None else ROOT,
        env=_runtime_environment(function),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if completed.returncode != 0:
        name = function.logical_id if function else BASELINE
        raise RuntimeError(f"importing {name} failed: {completed.stderr[-2000:]}")
    return float(completed.stdout.strip().splitlines()[-1])


def import_times(runs: int, functions: list[Function]) -> dict[str, list[float]]:
    """Seconds to import each handler (and boto3 + a client) in fresh interpreters, interleaved."""
    times: dict[str, list[float]] = {BASELINE: [], **{f.logical_id: [] for f in functions}}
    for round_number in range(runs + 1):
        for function in [None, *functions]:
            seconds = _time_once(function)
            if round_number > 0:  # the first round writes bytecode caches
                times[function.logical_id if function else BASELINE].append(seconds)
    return times


def _tree_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and "__pycache__" not in f.parts)


def python313_path() -> str | None:
    """The folder of a python3.13 (the functions' runtime, which `sam build` needs), or None."""
    found = shutil.which("python3.13")
    if found:
        return str(Path(found).parent)
    pyenv = (
        subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=False)
        if shutil.which("pyenv")
        else None
    )
    if pyenv is not None and pyenv.returncode == 0:
        versions = sorted(Path(pyenv.stdout.strip(), "versions").glob("3.13*/bin"))
        if versions:
            return str(versions[-1])
    return None


def built_sizes(functions: list[Function], build: bool) -> dict[str, Any]:
    """Bytes of each function's artifact and of the layer: after `sam build`, or of the source folders."""
    if not build:
        return {
            "source": "source folders (not built: quick run)",
            "functions": {f.logical_id: _tree_bytes(f.code_dir) for f in functions},
            "layer": _tree_bytes(LAYER / "cpexport"),
        }
    runtime = python313_path()
    if runtime is None:
        raise RuntimeError("sam build needs python3.13 on PATH (the functions' runtime)")
    with tempfile.TemporaryDirectory(prefix="bench-build-") as build_dir:
        env = os.environ | {"PATH": f"{runtime}{os.pathsep}{os.environ.get('PATH', '')}", "SAM_CLI_TELEMETRY": "0"}
        sam = Path(sys.executable).parent / "sam"
        completed = subprocess.run(  # the project's own sam
            [
                str(sam),
                "build",
                "--template",
                str(ROOT / "template.yaml"),
                "--build-dir",
                build_dir,
                "--base-dir",
                str(ROOT),
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=900,
        )
        if completed.returncode != 0:
            raise RuntimeError(f"sam build failed: {completed.stdout[-2000:]}{completed.stderr[-2000:]}")
        built = Path(build_dir)
        return {
            "source": "sam build",
            "functions": {f.logical_id: _tree_bytes(built / f.logical_id) for f in functions},
            "layer": _tree_bytes(built / "CommonLayer"),
        }


def measure(runs: int, build: bool) -> dict[str, Any]:
    """Import ratios and sizes of every function: the `cold_start` section of the results."""
    functions = template_functions()
    sizes = built_sizes(functions, build)
    times = import_times(runs, functions)
    baseline = statistics.median(times[BASELINE])
    section: dict[str, Any] = {
        "runs": runs,
        "baseline_import_s": round(baseline, 4),
        "baseline": "import boto3; boto3.client('s3') in a fresh interpreter",
        "sizes_from": sizes["source"],
        "layer_bytes": sizes["layer"],
    }
    for function in functions:
        median = statistics.median(times[function.logical_id])
        section[function.logical_id] = {
            "import_s": round(median, 4),
            "import_ratio": round(median / baseline, 3),
            "build_bytes": sizes["functions"][function.logical_id],
            "with_layer_bytes": sizes["functions"][function.logical_id] + sizes["layer"],
        }
    return section
