"""Deploy one stack into the offline account: package, transform, create_stack, then what moto leaves out.

1. the parameters checked as CloudFormation checks them (`parameters.py`: constraints and Rules),
   `sam package` equivalent (code folders zipped to moto's S3), the template's transforms with the
   stack's parameters (`AWS::LanguageExtensions`, then samtranslator's), an optional `customize` of
   the CloudFormation (the variant test removes policy statements this way);
2. moto's `create_stack`, with the resource types it skips taken out and planned (`sam.py`);
3. functions registered with the Lambda runtime, each role checked assumable by Lambda;
4. state machines re-created, substituted, in moto's executing backend, each role checked assumable
   by Step Functions (and allowed to deliver logs when logging is configured, as AWS checks);
5. skipped resources created by their provisioners (`provisioners.py`).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from moto.iam.models import iam_backends

from local.harness.lambda_runtime import DeployedConfig, LocalFunction
from local.harness.parameters import ParameterRefused, check_parameters
from local.harness.provisioners import (
    DEPROVISIONERS,
    ORDER,
    PROVISIONERS,
    REF_PROPERTIES,
    ProvisionContext,
    ref_value,
)
from local.harness.sam import (
    HIDDEN_OUTPUT_PREFIX,
    DeploymentPlan,
    LanguageExtensionsError,
    load_template,
    package_template,
    plan_deployment,
    substitute_definition,
    transform_template,
)
from local.iam.principals import UntrustedRole

if TYPE_CHECKING:
    from local.harness.account import OfflineAccount

LOG = logging.getLogger("local.harness")
ARTIFACTS_BUCKET = "offline-harness-artifacts"
_TERMINAL_STACK_STATES = {"CREATE_COMPLETE", "CREATE_FAILED", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED"}
# What AWS requires of a state machine role that delivers logs to CloudWatch Logs.
LOG_DELIVERY_ACTIONS = (
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
)

# IAM's quota on the inline policies of one role, added up (IAM User Guide, "IAM and AWS STS quotas";
# not adjustable): what bounds the domains one stack can grant (template.yaml's StartExportDomainGrants).
ROLE_INLINE_POLICIES_QUOTA = 10_240

TemplateCustomizer = Callable[[dict[str, Any]], dict[str, Any]]
"""Changes the transformed (plain CloudFormation) template before it is deployed."""


class DeploymentError(RuntimeError):
    """The stack cannot be deployed as AWS would refuse it (or moto's CloudFormation failed)."""


@dataclass(frozen=True)
class StackResource:
    """One deployed resource of the stack."""

    logical_id: str
    resource_type: str
    physical_id: str


@dataclass
class Deployment:
    """One deployed stack: its outputs, resources and what the harness planned for it."""

    stack_name: str
    template_path: Path
    parameters: dict[str, str]
    plan: DeploymentPlan
    outputs: dict[str, str] = field(default_factory=dict)
    hidden: dict[str, str] = field(default_factory=dict)
    resources: dict[str, StackResource] = field(default_factory=dict)

    def physical_id(self, logical_id: str) -> str:
        """The physical id (name or ARN) of a logical resource."""
        try:
            return self.resources[logical_id].physical_id
        except KeyError:
            raise KeyError(f"{logical_id} is not in the stack; resources: {sorted(self.resources)}") from None

    def of_type(self, resource_type: str) -> list[StackResource]:
        """Deployed resources of one type."""
        return [r for r in self.resources.values() if r.resource_type == resource_type]


def parameter_values(template: dict[str, Any], overrides: dict[str, str]) -> dict[str, str]:
    """Every declared parameter's value: the override, else the Default.

    Defaults are passed explicitly because moto splits CommaDelimitedList/List<...> values only
    when they are given, not when they come from Default.
    """
    declared: dict[str, Any] = template.get("Parameters") or {}
    unknown = set(overrides) - set(declared)
    if unknown:
        raise ValueError(f"Parameters not declared by the template: {sorted(unknown)}")
    values: dict[str, str] = {}
    for name, spec in declared.items():
        if name in overrides:
            values[name] = str(overrides[name])
        elif "Default" in spec:
            default = spec["Default"]
            values[name] = json.dumps(default) if isinstance(default, bool) else str(default)
    missing = sorted(set(declared) - set(values))
    if missing:
        raise ValueError(f"Template parameters without a value or Default: {missing}")
    return values


def _without_dependencies_on(template: dict[str, Any], removed: set[str]) -> None:
    for resource in (template.get("Resources") or {}).values():
        depends = resource.get("DependsOn")
        if isinstance(depends, str) and depends in removed:
            del resource["DependsOn"]
        elif isinstance(depends, list):
            resource["DependsOn"] = [d for d in depends if d not in removed]


def deploy(
    account: OfflineAccount,
    template_path: Path,
    parameters: dict[str, str],
    stack_name: str,
    customize: TemplateCustomizer | None = None,
) -> Deployment:
    """Deploy a SAM (or plain CloudFormation) template as stack `stack_name`; see the module doc."""
    started = time.monotonic()
    template = load_template(template_path)
    try:
        # CloudFormation refuses bad parameters before any transform runs or anything is created.
        check_parameters(
            template,
            parameter_values(template, parameters),
            {"AWS::Region": account.region, "AWS::AccountId": account.account_id, "AWS::StackName": stack_name},
        )
    except ParameterRefused as refused:
        raise DeploymentError(f"{stack_name}: ValidationError: {refused}") from refused
    s3 = account.client("s3")
    try:
        s3.create_bucket(Bucket=ARTIFACTS_BUCKET)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
            raise

    def upload(hint: str, data: bytes) -> tuple[str, str]:
        key = f"{hint}/{hashlib.sha256(data).hexdigest()[:16]}.zip"
        s3.put_object(Bucket=ARTIFACTS_BUCKET, Key=key, Body=data)
        return ARTIFACTS_BUCKET, key

    packaged, code = package_template(template, template_path.parent, upload)
    try:
        transformed = transform_template(packaged, parameters)
    except LanguageExtensionsError as refused:
        raise DeploymentError(f"{stack_name}: {refused}") from refused
    if customize is not None:
        transformed = customize(copy.deepcopy(transformed))
    plan = plan_deployment(transformed, code, skipped_types=PROVISIONERS, ref_properties=REF_PROPERTIES)
    _without_dependencies_on(plan.template, {resource.logical_id for resource in plan.skipped})
    deployment = Deployment(stack_name, template_path, dict(parameters), plan)
    cfn = account.client("cloudformation")
    try:
        cfn.create_stack(
            StackName=stack_name,
            TemplateBody=json.dumps(plan.template),
            Parameters=[
                {"ParameterKey": k, "ParameterValue": v} for k, v in parameter_values(plan.template, parameters).items()
            ],
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
        )
    except ClientError as error:
        raise DeploymentError(f"{stack_name}: {error}") from error
    try:
        _finish(account, deployment, _wait_stack(cfn, stack_name))
    except BaseException:
        # CloudFormation rolls a failed stack back: nothing of it stays in the account.
        _roll_back(account, deployment)
        raise
    LOG.info("Deployed %s as %s in %.1fs", template_path, stack_name, time.monotonic() - started)
    return deployment


def _finish(account: OfflineAccount, deployment: Deployment, stack: dict[str, Any]) -> None:
    stack_name = deployment.stack_name
    cfn = account.client("cloudformation")
    for output in stack.get("Outputs", []):
        key, value = output["OutputKey"], output["OutputValue"]
        (deployment.hidden if key.startswith(HIDDEN_OUTPUT_PREFIX) else deployment.outputs)[key] = value
    for page in cfn.get_paginator("list_stack_resources").paginate(StackName=stack_name):
        for item in page["StackResourceSummaries"]:
            if item.get("LogicalResourceId"):
                deployment.resources[item["LogicalResourceId"]] = StackResource(
                    item["LogicalResourceId"], item["ResourceType"], item.get("PhysicalResourceId", "")
                )
    check_role_policy_sizes(account, deployment)
    _register_functions(account, deployment)
    _create_state_machines(account, deployment)
    _provision_skipped(account, deployment)
    for resource in deployment.resources.values():
        account.claim(resource.resource_type, resource.physical_id, stack_name)


def inline_policy_size(document: Any) -> int:
    """A policy's size as IAM counts it against its quotas: the JSON without white space."""
    parsed = json.loads(document) if isinstance(document, str) else document
    return len(re.sub(r"\s", "", json.dumps(parsed, separators=(",", ":"))))


def check_role_policy_sizes(account: OfflineAccount, deployment: Deployment) -> None:
    """What IAM refuses and moto does not: a role whose inline policies add up to more than the quota."""
    iam = iam_backends[account.account_id]["aws"]
    for role in deployment.of_type("AWS::IAM::Role"):
        name = role.physical_id.rsplit("/", 1)[-1]
        size = sum(inline_policy_size(iam.get_role_policy(name, policy)[1]) for policy in iam.list_role_policies(name))
        if size > ROLE_INLINE_POLICIES_QUOTA:
            raise DeploymentError(
                f"{deployment.stack_name}: {role.logical_id}: LimitExceeded: Maximum policy size of "
                f"{ROLE_INLINE_POLICIES_QUOTA} bytes exceeded for role {name} ({size} characters of inline policies)"
            )


def remove(account: OfflineAccount, deployment: Deployment) -> None:
    """Delete a deployed stack: what the harness provisioned, then the CloudFormation stack."""
    for resource in deployment.resources.values():
        account.release(resource.resource_type, resource.physical_id, deployment.stack_name)
    _roll_back(account, deployment)


def _deprovision(account: OfflineAccount, deployment: Deployment) -> None:
    # What the harness created itself, newest first (a workgroup's saved queries before it, as AWS orders it).
    context = ProvisionContext(stack_name=deployment.stack_name, client=account.client, owner_of=account.owner_of)
    planned = {resource.logical_id: resource for resource in deployment.plan.skipped}
    for resource in reversed(list(deployment.resources.values())):
        delete = DEPROVISIONERS.get(resource.resource_type)
        if delete is None or resource.logical_id not in planned:
            continue
        try:
            delete(context, resource.physical_id, planned[resource.logical_id].resolve(deployment.hidden))
        except ClientError:
            LOG.warning("deleting %s of %s failed", resource.logical_id, deployment.stack_name, exc_info=True)


def _roll_back(account: OfflineAccount, deployment: Deployment) -> None:
    for resource in deployment.resources.values():
        if resource.resource_type == "AWS::Lambda::Function":
            account.runtime.unregister(resource.physical_id)
    _deprovision(account, deployment)
    try:
        account.client("cloudformation").delete_stack(StackName=deployment.stack_name)
    except ClientError:
        LOG.warning("rolling back %s failed", deployment.stack_name, exc_info=True)


def _wait_stack(cfn: Any, stack_name: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        stack: dict[str, Any] = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
        if stack["StackStatus"] in _TERMINAL_STACK_STATES:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"Stack {stack_name} still {stack['StackStatus']}")
        time.sleep(0.1)
    if stack["StackStatus"] != "CREATE_COMPLETE":
        events = cfn.describe_stack_events(StackName=stack_name)["StackEvents"]
        reasons = [
            f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason')}"
            for e in events
            if e.get("ResourceStatusReason")
        ]
        raise DeploymentError(f"Stack {stack_name} is {stack['StackStatus']}: {reasons}")
    return stack


def _register_functions(account: OfflineAccount, deployment: Deployment) -> None:
    plan = deployment.plan
    resources = plan.template.get("Resources", {})

    def code_dir(location: Any) -> Path | None:
        if not isinstance(location, dict):
            return None
        local = plan.code.get((str(location.get("S3Bucket")), str(location.get("S3Key"))))
        return local.path if local else None

    lam = account.client("lambda")
    for logical_id, resource in resources.items():
        if resource.get("Type") != "AWS::Lambda::Function" or logical_id not in deployment.resources:
            continue
        name = deployment.resources[logical_id].physical_id
        if account.enforce_iam:
            role = lam.get_function_configuration(FunctionName=name)["Role"]
            try:
                account.broker.role_credentials(role, "lambda.amazonaws.com")
            except UntrustedRole as untrusted:
                raise DeploymentError(
                    f"{deployment.stack_name}: {logical_id}: InvalidParameterValueException: The role defined for the "
                    f"function cannot be assumed by Lambda ({untrusted})"
                ) from untrusted
        props = resource.get("Properties") or {}
        folder = code_dir(props.get("Code"))
        if folder is None:
            LOG.warning("%s has no local code: invocations keep moto's echo behaviour", logical_id)
            continue
        layers: list[Path] = []
        for layer in props.get("Layers") or []:
            ref = layer.get("Ref") if isinstance(layer, dict) else None
            layer_dir = code_dir(((resources.get(ref or "") or {}).get("Properties") or {}).get("Content"))
            if layer_dir is None:
                LOG.warning("%s: layer %s is not local and is not put on sys.path", logical_id, layer)
            else:
                layers.append(layer_dir)
        account.runtime.register(name, LocalFunction(logical_id, folder, tuple(layers)))
        if account.prewarm:
            account.runtime.prewarm(deployed_config(lam.get_function_configuration(FunctionName=name), account.region))


def deployed_config(configuration: dict[str, Any], region: str) -> DeployedConfig:
    """A Lambda sandbox's configuration from GetFunctionConfiguration's answer."""
    return DeployedConfig(
        function_name=configuration["FunctionName"],
        function_arn=configuration["FunctionArn"],
        handler=configuration["Handler"],
        timeout=int(configuration["Timeout"]),
        memory_size=int(configuration["MemorySize"]),
        environment=dict((configuration.get("Environment") or {}).get("Variables") or {}),
        region=region,
        role_arn=configuration["Role"],
    )


def _create_state_machines(account: OfflineAccount, deployment: Deployment) -> None:
    # moto's CloudFormation puts state machines in the backend that cannot execute them and
    # ignores DefinitionSubstitutions: re-create each, substituted, in the executing backend
    # under the same name, hence the same ARN everything in the stack already refers to.
    sfn = account.client("stepfunctions")
    hidden = deployment.hidden
    for machine in deployment.plan.state_machines:
        deployed = deployment.resources.get(machine.logical_id)
        if deployed is None:  # its Condition is false
            continue
        definition = substitute_definition(
            hidden[machine.definition_output],
            {name: hidden[output] for name, output in machine.substitution_outputs.items()},
            machine.logical_id,
        )
        role = hidden.get(machine.role_output or "") or f"arn:aws:iam::{account.account_id}:role/{machine.logical_id}"
        if account.enforce_iam:
            check_state_machine_role(account, deployment.stack_name, machine.logical_id, role, machine.logging_output)
        created = sfn.create_state_machine(
            name=deployed.physical_id.rsplit(":", 1)[-1], definition=definition, roleArn=role, type=machine.machine_type
        )
        if created["stateMachineArn"] != deployed.physical_id:
            raise DeploymentError(f"{machine.logical_id}: {created['stateMachineArn']} != {deployed.physical_id}")


def check_state_machine_role(
    account: OfflineAccount, stack_name: str, logical_id: str, role_arn: str, logging_output: str | None
) -> None:
    """What CreateStateMachine/UpdateStateMachine check of the role: assumable, and able to deliver logs."""
    try:
        account.broker.role_credentials(role_arn, "states.amazonaws.com")
    except UntrustedRole as untrusted:
        raise DeploymentError(
            f"{stack_name}: {logical_id}: AccessDeniedException: Neither the global service principal "
            f"states.amazonaws.com, nor the regional one is authorized to assume the provided role ({untrusted})"
        ) from untrusted
    if logging_output is None:
        return
    missing = [action for action in LOG_DELIVERY_ACTIONS if not account.role_may(role_arn, action, "*")]
    if missing:
        raise DeploymentError(
            f"{stack_name}: {logical_id}: AccessDeniedException: The state machine IAM Role is not authorized to "
            f"access the Log Destination (missing {', '.join(missing)})"
        )


def _provision_skipped(account: OfflineAccount, deployment: Deployment) -> None:
    context = ProvisionContext(stack_name=deployment.stack_name, client=account.client, owner_of=account.owner_of)
    ordered = sorted(
        deployment.plan.skipped, key=lambda r: ORDER.index(r.resource_type) if r.resource_type in ORDER else len(ORDER)
    )
    for resource in ordered:
        if not resource.deployed(deployment.hidden):
            continue
        properties = resource.resolve(deployment.hidden)
        physical_id = PROVISIONERS[resource.resource_type](context, resource.logical_id, properties)
        deployment.resources[resource.logical_id] = StackResource(
            resource.logical_id, resource.resource_type, physical_id
        )
        promised = ref_value(resource.resource_type, properties)
        if promised is not None and str(promised) != physical_id:
            # Outputs and other resources were given the property's value as this resource's Ref.
            raise DeploymentError(
                f"{deployment.stack_name}: {resource.logical_id}: provisioned as {physical_id!r}, but its Ref was "
                f"planned as {promised!r}"
            )
