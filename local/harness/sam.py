"""Turn a SAM template.yaml into a CloudFormation template moto can create, the way `sam package` would.

Three steps, all offline:

1. `package_template`: local `CodeUri`/`ContentUri` folders are zipped and uploaded to an S3 location
   (moto's S3), and a local `DefinitionUri` is inlined as `Definition`.
2. `transform_template`: the transforms in their declared order. `AWS::LanguageExtensions` first
   (moto has none): its `Fn::ForEach` expanded by SAM CLI's own implementation with the stack's
   parameters; then AWS's own `samtranslator` expands the SAM resources into CloudFormation, with
   managed policies taken from the translator's bundled list instead of IAM.
3. `plan_deployment`: records what moto's CloudFormation cannot do by itself. moto does not apply
   `DefinitionSubstitutions` and skips some resource types (`AWS::Scheduler::Schedule`,
   `AWS::S3::BucketPolicy`, `AWS::SQS::QueuePolicy`, `AWS::CloudWatch::Alarm` ...); every
   intrinsic those need is added to the template as a hidden Output, so moto's own resolver (Ref,
   GetAtt, Sub, If, conditions) evaluates it, and `SkippedResource.resolve` rebuilds the properties.
   A `Ref` to a skipped resource (in an Output or another resource) becomes the property its `Ref`
   returns (a name the template sets, e.g. a Glue database's `DatabaseInput.Name`), so moto resolves
   it too; a `Ref` whose value only exists once the resource is created is refused at planning.
"""

from __future__ import annotations

import copy
import io
import json
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from samtranslator.internal.managed_policies import get_bundled_managed_policy_map
from samtranslator.translator.managed_policy_translator import ManagedPolicyLoader
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

# Prefix of the Outputs the harness adds; `OfflineStack.outputs` hides them.
HIDDEN_OUTPUT_PREFIX = "OfflineHarness"

# Folders and files `sam package` would not ship either.
_SKIPPED_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
_SKIPPED_SUFFIXES = (".pyc", ".pyo")

Uploader = Callable[[str, bytes], tuple[str, str]]
"""Stores a zip (name hint, bytes) somewhere moto's S3 serves it; returns (bucket, key)."""


class OfflinePolicyLoader(ManagedPolicyLoader):  # type: ignore[misc]
    """Managed-policy loader that never calls IAM: it uses the map bundled with samtranslator."""

    def __init__(self, partition: str = "aws") -> None:
        # The parent wants an IAM client; offline there is none, and load() never uses one.
        self._policy_map = get_bundled_managed_policy_map(partition) or {}
        self.max_items = 0

    def load(self) -> dict[str, str]:
        """Return the bundled managed policy name -> ARN map."""
        return dict(self._policy_map or {})


@dataclass(frozen=True)
class LocalCode:
    """A local folder the template points at, and where it was uploaded."""

    path: Path
    bucket: str
    key: str


@dataclass
class StateMachinePlan:
    """How to rebuild one state machine once moto has resolved its intrinsics."""

    logical_id: str
    definition_output: str
    role_output: str | None
    substitution_outputs: dict[str, str]
    machine_type: str = "STANDARD"
    logging_output: str | None = None


_OUTPUT_KEY = "__offline_output__"
_CONDITION_KEY = "__offline_if__"


@dataclass
class SkippedResource:
    """A resource moto's CloudFormation does not create: the harness creates it after `create_stack`.

    `properties` is the template's Properties with every intrinsic replaced by a reference to the
    hidden Output that resolves it; `exists_output` resolves only when the resource's Condition holds.
    """

    logical_id: str
    resource_type: str
    properties: dict[str, Any]
    exists_output: str

    def deployed(self, outputs: dict[str, str]) -> bool:
        """Whether the resource's Condition held (its hidden outputs exist)."""
        return self.exists_output in outputs

    def resolve(self, outputs: dict[str, str]) -> dict[str, Any]:
        """The Properties with every intrinsic replaced by the value moto resolved."""
        rebuilt: dict[str, Any] = _rebuild(self.properties, outputs)
        return rebuilt


def _rebuild(value: Any, outputs: dict[str, str]) -> Any:
    if value == _NO_VALUE_MARK:
        return _NO_VALUE
    if isinstance(value, dict):
        if _OUTPUT_KEY in value:
            return outputs.get(value[_OUTPUT_KEY])
        if _CONDITION_KEY in value:
            output, when_true, when_false = value[_CONDITION_KEY]
            return _rebuild(when_true if outputs.get(output) == "true" else when_false, outputs)
        rebuilt = {key: _rebuild(item, outputs) for key, item in value.items()}
        return {key: item for key, item in rebuilt.items() if item is not _NO_VALUE}
    if isinstance(value, list):
        return [item for item in (_rebuild(item, outputs) for item in value) if item is not _NO_VALUE]
    return value


_NO_VALUE = object()


@dataclass
class DeploymentPlan:
    """A template ready for moto's `create_stack`, plus what the harness must do around it."""

    template: dict[str, Any]
    code: dict[tuple[str, str], LocalCode] = field(default_factory=dict)
    state_machines: list[StateMachinePlan] = field(default_factory=list)
    skipped: list[SkippedResource] = field(default_factory=list)

    def skipped_of_type(self, resource_type: str) -> list[SkippedResource]:
        """The skipped resources of one type."""
        return [resource for resource in self.skipped if resource.resource_type == resource_type]


def load_template(path: Path) -> dict[str, Any]:
    """Read a SAM/CloudFormation template with its short-form intrinsic tags (!Ref, !Sub ...)."""
    parsed: dict[str, Any] = yaml_parse(path.read_text(encoding="utf-8"))
    return parsed


def zip_folder(folder: Path) -> bytes:
    """Zip a folder deterministically (sorted entries, fixed timestamps), skipping build caches."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            relative = path.relative_to(folder)
            if path.is_dir() or _SKIPPED_DIRS.intersection(relative.parts):
                continue
            if path.name.endswith(_SKIPPED_SUFFIXES):
                continue
            info = zipfile.ZipInfo(relative.as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            archive.writestr(info, path.read_bytes(), zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def _is_local(uri: Any) -> bool:
    return isinstance(uri, str) and not uri.startswith("s3://")


def _read_definition(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".yaml", ".yml"):
        return yaml_parse(text)
    return json.loads(text)


def package_template(
    template: dict[str, Any], base_dir: Path, upload: Uploader
) -> tuple[dict[str, Any], dict[tuple[str, str], LocalCode]]:
    """Replace local code and definition paths as `sam package` does.

    Returns the packaged copy of the template and the uploaded folders keyed by (bucket, key), so
    the in-process Lambda runtime can map a deployed function's code back to its source folder.
    """
    packaged = copy.deepcopy(template)
    uploaded: dict[tuple[str, str], LocalCode] = {}

    def store(hint: str, uri: str) -> tuple[str, str]:
        folder = (base_dir / uri).resolve()
        if not folder.is_dir():
            raise FileNotFoundError(f"{hint}: code folder {folder} does not exist")
        bucket, key = upload(hint, zip_folder(folder))
        uploaded[(bucket, key)] = LocalCode(folder, bucket, key)
        return bucket, key

    function_globals = packaged.get("Globals", {}).get("Function", {})
    if _is_local(function_globals.get("CodeUri")):
        bucket, key = store("GlobalsFunction", function_globals["CodeUri"])
        function_globals["CodeUri"] = {"Bucket": bucket, "Key": key}

    for logical_id, resource in packaged.get("Resources", {}).items():
        if is_foreach_key(logical_id):
            continue  # resources a transform generates (see expand_language_extensions): no code of their own
        kind = resource.get("Type")
        props = resource.get("Properties") or {}
        if kind == "AWS::Serverless::Function" and _is_local(props.get("CodeUri")):
            bucket, key = store(logical_id, props["CodeUri"])
            props["CodeUri"] = {"Bucket": bucket, "Key": key}
        elif kind == "AWS::Serverless::LayerVersion" and _is_local(props.get("ContentUri")):
            bucket, key = store(logical_id, props["ContentUri"])
            props["ContentUri"] = {"Bucket": bucket, "Key": key}
        elif kind == "AWS::Serverless::StateMachine" and _is_local(props.get("DefinitionUri")):
            props["Definition"] = _read_definition(base_dir / props.pop("DefinitionUri"))
        elif kind == "AWS::Lambda::Function" and _is_local(props.get("Code")):
            bucket, key = store(logical_id, props["Code"])
            props["Code"] = {"S3Bucket": bucket, "S3Key": key}
        elif kind == "AWS::Lambda::LayerVersion" and _is_local(props.get("Content")):
            bucket, key = store(logical_id, props["Content"])
            props["Content"] = {"S3Bucket": bucket, "S3Key": key}
        elif kind == "AWS::StepFunctions::StateMachine" and _is_local(props.get("DefinitionS3Location")):
            definition = _read_definition(base_dir / props.pop("DefinitionS3Location"))
            props["DefinitionString"] = json.dumps(definition)
    return packaged, uploaded


def transform_template(template: dict[str, Any], parameters: dict[str, str]) -> dict[str, Any]:
    """Apply the template's transforms in order: `AWS::LanguageExtensions` (see `expand_language_extensions`),
    then SAM's with samtranslator (needs AWS_DEFAULT_REGION set)."""
    expanded = expand_language_extensions(template, parameters)
    if SERVERLESS_TRANSFORM not in _transforms(expanded):
        return expanded
    transformed: dict[str, Any] = transform(expanded, dict(parameters), OfflinePolicyLoader())
    return transformed


SERVERLESS_TRANSFORM = "AWS::Serverless-2016-10-31"
LANGUAGE_EXTENSIONS_TRANSFORM = "AWS::LanguageExtensions"
# What the transform does besides Fn::ForEach: not expanded offline, so refused rather than half-done.
_OTHER_LANGUAGE_EXTENSIONS = ("Fn::Length", "Fn::ToJsonString")


class LanguageExtensionsError(ValueError):
    """`AWS::LanguageExtensions` refused the template (a ForEach giving one logical id twice), or the
    template uses a part of it the offline harness does not expand."""


def expand_language_extensions(template: dict[str, Any], parameters: Mapping[str, str]) -> dict[str, Any]:
    """A copy of the template with every `Fn::ForEach` expanded, as the `AWS::LanguageExtensions` transform does.

    The expansion is SAM CLI's own (`samcli.lib.cfn_language_extensions`, what `sam build
    --language-extensions` runs): its template parser and its ForEach processor, with the parameters
    (defaults filled in) for collections such as `!Ref DomainNames`; a ForEach whose items give the
    same logical id twice is refused, as CloudFormation refuses it. Only the ForEach step: every other
    intrinsic is left to moto's CloudFormation as before (SAM CLI's full pipeline would also resolve
    Refs, Subs and conditions with placeholder pseudo parameters). Fn::Length, Fn::ToJsonString,
    Fn::FindInMap's DefaultValue and intrinsic DeletionPolicy/UpdateReplacePolicy are refused.
    """
    transforms = _transforms(template)
    if LANGUAGE_EXTENSIONS_TRANSFORM not in transforms:
        return copy.deepcopy(template)
    from samcli.lib.cfn_language_extensions.api import create_default_intrinsic_resolver
    from samcli.lib.cfn_language_extensions.exceptions import InvalidTemplateException
    from samcli.lib.cfn_language_extensions.models import ResolutionMode, TemplateProcessingContext
    from samcli.lib.cfn_language_extensions.pipeline import ProcessingPipeline
    from samcli.lib.cfn_language_extensions.processors import ForEachProcessor, TemplateParsingProcessor

    unsupported = sorted(set(_other_language_extensions(template.get("Resources") or {})))
    if unsupported:
        raise LanguageExtensionsError(
            f"AWS::LanguageExtensions features the offline harness does not expand: {', '.join(unsupported)}"
        )
    defaults = {
        name: str(spec["Default"]) for name, spec in (template.get("Parameters") or {}).items() if "Default" in spec
    }
    context = TemplateProcessingContext(
        fragment=copy.deepcopy(template),
        parameter_values=defaults | dict(parameters),
        resolution_mode=ResolutionMode.PARTIAL,
    )
    pipeline = ProcessingPipeline(
        [TemplateParsingProcessor(), ForEachProcessor(intrinsic_resolver=create_default_intrinsic_resolver(context))]
    )
    try:
        expanded: dict[str, Any] = pipeline.process_template(context)
    except InvalidTemplateException as error:
        raise LanguageExtensionsError(f"AWS::LanguageExtensions: {error}") from error
    remaining = [name for name in transforms if name != LANGUAGE_EXTENSIONS_TRANSFORM]
    if remaining:
        expanded["Transform"] = remaining[0] if len(remaining) == 1 else remaining
    else:
        expanded.pop("Transform", None)
    return expanded


def _other_language_extensions(value: Any) -> Iterable[str]:
    if isinstance(value, list):
        for item in value:
            yield from _other_language_extensions(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key in _OTHER_LANGUAGE_EXTENSIONS:
                yield key
            elif key == "Fn::FindInMap" and isinstance(item, list) and len(item) > 3:
                yield "Fn::FindInMap with DefaultValue"
            elif key in ("DeletionPolicy", "UpdateReplacePolicy") and not isinstance(item, str):
                yield f"an intrinsic {key}"
            yield from _other_language_extensions(item)


def is_foreach_key(key: str) -> bool:
    """Whether a template key is an `Fn::ForEach::Name` loop of `AWS::LanguageExtensions`."""
    return key.startswith("Fn::ForEach::")


def _transforms(template: dict[str, Any]) -> list[str]:
    declared = template.get("Transform", [])
    return [declared] if isinstance(declared, str) else list(declared)


def _is_intrinsic(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and len(value) == 1
        and (next(iter(value)) == "Ref" or next(iter(value)).startswith("Fn::"))
    )


def _is_scalar_branch(value: Any) -> bool:
    return not isinstance(value, dict | list) or _is_intrinsic(value)


class UnresolvableReference(ValueError):
    """A template refers to a skipped resource by something only known once the harness creates it."""


def _ref_expression(
    logical_id: str, resources: Mapping[str, Any], ref_properties: Mapping[str, tuple[str, ...]], where: str
) -> Any:
    resource = resources[logical_id]
    path = ref_properties.get(str(resource.get("Type")), ())
    value: Any = resource.get("Properties") or {}
    for part in path:
        value = value.get(part) if isinstance(value, dict) else None
    if not path or value is None:
        raise UnresolvableReference(
            f"{where} refers to {logical_id} ({resource.get('Type')}), which the offline harness creates after "
            "moto's create_stack and whose Ref it cannot know beforehand (give the resource a name, or register "
            "its Ref property in local/harness/provisioners.py)"
        )
    return copy.deepcopy(value)


def _rewrite_skipped_refs(
    value: Any,
    skipped: Mapping[str, Any],
    ref_properties: Mapping[str, tuple[str, ...]],
    where: str,
    depth: int = 0,
) -> Any:
    """`value` with each Ref (and Sub `${X}`) to a skipped resource replaced by the property its Ref returns."""
    if depth > 20:
        raise UnresolvableReference(f"{where}: references between skipped resources form a cycle")

    def again(item: Any) -> Any:
        return _rewrite_skipped_refs(item, skipped, ref_properties, where, depth + 1)

    if isinstance(value, list):
        return [_rewrite_skipped_refs(item, skipped, ref_properties, where, depth) for item in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Ref"} and value["Ref"] in skipped:
        return again(_ref_expression(value["Ref"], skipped, ref_properties, where))
    if set(value) == {"Fn::GetAtt"}:
        target = value["Fn::GetAtt"]
        name = target[0] if isinstance(target, list) else str(target).split(".", 1)[0]
        if name in skipped:
            raise UnresolvableReference(f"{where}: Fn::GetAtt of {name}, a resource the offline harness creates later")
    if set(value) == {"Fn::Sub"}:
        text, variables = (value["Fn::Sub"], {}) if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"]
        variables = {
            name: _rewrite_skipped_refs(v, skipped, ref_properties, where, depth) for name, v in variables.items()
        }
        for name in {part.split("}", 1)[0] for part in str(text).split("${")[1:]}:
            base = name.split(".", 1)[0]
            if base in skipped and name not in variables:
                if name != base:
                    raise UnresolvableReference(f"{where}: ${{{name}}} of a resource the offline harness creates later")
                variables[name] = again(_ref_expression(base, skipped, ref_properties, where))
        return {"Fn::Sub": [text, variables] if variables else text}
    return {key: _rewrite_skipped_refs(item, skipped, ref_properties, where, depth) for key, item in value.items()}


def plan_deployment(
    template: dict[str, Any],
    code: dict[tuple[str, str], LocalCode],
    skipped_types: Iterable[str] = (),
    ref_properties: Mapping[str, tuple[str, ...]] | None = None,
) -> DeploymentPlan:
    """Add the hidden Outputs the harness needs after `create_stack` and describe what to do with them.

    `template` is plain CloudFormation (after `transform_template`). Resources of `skipped_types`
    are removed from the template (moto would only warn about them) and planned for the harness;
    `ref_properties` says, per skipped type, which property its `Ref` returns (see the module doc).
    """
    planned = copy.deepcopy(template)
    kinds = set(skipped_types)
    skipped_resources = {
        name: resource for name, resource in (planned.get("Resources") or {}).items() if resource.get("Type") in kinds
    }
    if skipped_resources:
        for section in ("Resources", "Outputs"):
            for name, item in list((planned.get(section) or {}).items()):
                planned[section][name] = _rewrite_skipped_refs(
                    item, skipped_resources, ref_properties or {}, f"{section}.{name}"
                )
    outputs: dict[str, Any] = planned.setdefault("Outputs", {}) or {}
    planned["Outputs"] = outputs
    plan = DeploymentPlan(template=planned, code=code)
    counter = iter(range(1_000_000))

    def hidden(value: Any, condition: str | None) -> str:
        name = f"{HIDDEN_OUTPUT_PREFIX}{next(counter)}"
        output: dict[str, Any] = {"Value": value}
        if condition:
            output["Condition"] = condition
        outputs[name] = output
        return name

    def placeholders(value: Any, condition: str | None) -> Any:
        if _is_intrinsic(value):
            if "Ref" in value and value["Ref"] == "AWS::NoValue":
                return _NO_VALUE_MARK
            if "Fn::If" in value:
                name, when_true, when_false = value["Fn::If"]
                if not (_is_scalar_branch(when_true) and _is_scalar_branch(when_false)):
                    chosen = hidden({"Fn::If": [name, "true", "false"]}, condition)
                    return {
                        _CONDITION_KEY: [
                            chosen,
                            placeholders(when_true, condition),
                            placeholders(when_false, condition),
                        ]
                    }
            return {_OUTPUT_KEY: hidden(value, condition)}
        if isinstance(value, dict):
            return {key: placeholders(item, condition) for key, item in value.items()}
        if isinstance(value, list):
            return [placeholders(item, condition) for item in value]
        return value

    for logical_id in [name for name, r in planned.get("Resources", {}).items() if r.get("Type") in kinds]:
        resource = planned["Resources"].pop(logical_id)
        condition = resource.get("Condition")
        plan.skipped.append(
            SkippedResource(
                logical_id=logical_id,
                resource_type=str(resource["Type"]),
                properties=placeholders(resource.get("Properties") or {}, condition),
                exists_output=hidden("exists", condition),
            )
        )
    for logical_id, resource in planned.get("Resources", {}).items():
        kind = resource.get("Type")
        props = resource.get("Properties") or {}
        condition = resource.get("Condition")
        if kind == "AWS::StepFunctions::StateMachine":
            if "DefinitionString" not in props:
                raise ValueError(f"{logical_id}: only inline or local definitions can be deployed offline")
            substitutions = props.get("DefinitionSubstitutions") or {}
            plan.state_machines.append(
                StateMachinePlan(
                    logical_id=logical_id,
                    definition_output=hidden(props["DefinitionString"], condition),
                    role_output=hidden(props["RoleArn"], condition) if "RoleArn" in props else None,
                    substitution_outputs={name: hidden(value, condition) for name, value in substitutions.items()},
                    machine_type=str(props.get("StateMachineType", "STANDARD")),
                    logging_output=(
                        hidden(
                            props["LoggingConfiguration"]["Destinations"][0]["CloudWatchLogsLogGroup"]["LogGroupArn"],
                            condition,
                        )
                        if (props.get("LoggingConfiguration") or {}).get("Destinations")
                        else None
                    ),
                )
            )
    return plan


_NO_VALUE_MARK = {"__offline_no_value__": True}


def substitute_definition(definition: str, substitutions: dict[str, Any], logical_id: str) -> str:
    """Apply `DefinitionSubstitutions` as Step Functions does: each `${Name}` becomes its value.

    Raises ValueError when a placeholder is left without a value, as CloudFormation would reject it.
    """
    for name, value in substitutions.items():
        rendered = json.dumps(value) if isinstance(value, bool) else str(value)
        definition = definition.replace("${" + name + "}", rendered)
    leftovers = sorted({part.split("}", 1)[0] for part in definition.split("${")[1:]})
    if leftovers:
        raise ValueError(f"{logical_id}: DefinitionSubstitutions has no value for {leftovers}")
    return definition
