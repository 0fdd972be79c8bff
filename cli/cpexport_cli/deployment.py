"""The deployed stack: its Outputs and Parameters, read through CloudFormation, and the pipeline's settings."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from cpexport.config import Settings
from pydantic import ValidationError

from cpexport_cli.connection import Connection
from cpexport_cli.errors import DeploymentNotFound, InvalidInput, ServiceUnreachable

REQUIRED_OUTPUTS = ("StateMachineArn", "StateTableName")


def _split(value: str) -> list[str]:
    """A CommaDelimitedList parameter's items.

    CloudFormation returns `a,b`; moto returns the Python list's text `['a', 'b']`: both are read.
    """
    text = value.strip()
    if text.startswith("[") and text.endswith("]"):
        try:
            items = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            items = None
        if isinstance(items, list):
            return [str(item).strip() for item in items if str(item).strip()]
    return [item.strip() for item in text.split(",") if item.strip()]


@dataclass(frozen=True)
class StackResource:
    """One resource of the stack as CloudFormation lists it."""

    logical_id: str
    resource_type: str
    physical_id: str
    status: str


@dataclass(frozen=True)
class Deployment:
    """A stack of this application: where it is, what it is configured with, what it created."""

    stack_name: str
    stack_id: str
    status: str
    region: str
    account_id: str
    outputs: dict[str, str]
    parameters: dict[str, str]
    resources: list[StackResource] = field(default_factory=list)

    def output(self, name: str) -> str:
        """An Output of the stack; a stack without it is not (or not yet) this application."""
        try:
            return self.outputs[name]
        except KeyError:
            raise DeploymentNotFound(
                f"stack {self.stack_name} has no Output {name}: is it a Customer Profiles export stack?"
            ) from None

    @property
    def state_machine_arn(self) -> str:
        return self.output("StateMachineArn")

    @property
    def state_table_name(self) -> str:
        return self.output("StateTableName")

    @property
    def domain_names(self) -> list[str]:
        return _split(self.parameters.get("DomainNames", ""))

    @property
    def object_types(self) -> list[str]:
        return _split(self.parameters.get("ObjectTypes", ""))

    def number(self, parameter: str, default: float) -> float:
        """A numeric parameter (CloudFormation gives every value as a string)."""
        try:
            return float(self.parameters.get(parameter, default))
        except ValueError:
            return default

    def settings(self) -> Settings:
        """The functions' own settings model, filled from the stack: the pipeline's rules, not a copy of them."""
        values: dict[str, Any] = {
            "stack_name": self.stack_name,
            "account_id": self.account_id,
            "region": self.region,
            "domain_names": self.domain_names,
            "object_types": self.object_types,
            "export_bucket_name": self.outputs.get("ExportBucketName", ""),
            "export_prefix": self.parameters.get("ExportPrefix", ""),
            "kms_key_arn": self.outputs.get("ExportKeyArn", ""),
            "state_table_name": self.state_table_name,
            "topic_arn": self.outputs.get("NotificationTopicArn", ""),
            "event_bus_name": self.outputs.get("EventBusName", "default"),
        }
        for field_name, parameter in (
            ("safety_lag_minutes", "SafetyLagMinutes"),
            ("initial_start_time", "InitialStartTime"),
            ("max_concurrent_exports", "MaxConcurrentExports"),
            ("export_timeout_hours", "ExportTimeoutHours"),
        ):
            if self.parameters.get(parameter):
                values[field_name] = self.parameters[parameter]
        try:
            return Settings.model_validate(values)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise DeploymentNotFound(
                f"stack {self.stack_name} is not configured as the pipeline expects: {problems}"
            ) from None

    def physical_ids(self, resource_type: str) -> list[str]:
        """Physical ids of the stack's resources of one type."""
        return [r.physical_id for r in self.resources if r.resource_type == resource_type and r.physical_id]


def find_deployment(connection: Connection, stack_name: str, *, with_resources: bool = False) -> Deployment:
    """Describe the stack; DeploymentNotFound names the stack, the Region and the endpoint that were asked."""
    cloudformation = connection.client("cloudformation")
    where = f"Region {connection.region}" + (
        f" at {connection.options.endpoint_url}" if connection.options.endpoint_url else ""
    )
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        message = str(exc.response.get("Error", {}).get("Message", exc))
        if "does not exist" in message:
            raise DeploymentNotFound(
                f"stack {stack_name} does not exist in {where}: check --stack-name, --config-env, --region and --profile"
            ) from None
        raise ServiceUnreachable(f"CloudFormation DescribeStacks {stack_name} in {where}: {message}") from None
    except BotoCoreError as exc:
        raise ServiceUnreachable(f"CloudFormation in {where}: {exc}") from None
    if not stacks:
        raise DeploymentNotFound(f"stack {stack_name} does not exist in {where}")
    stack = stacks[0]
    stack_id = str(stack.get("StackId", ""))
    arn_parts = stack_id.split(":")
    deployment = Deployment(
        stack_name=str(stack["StackName"]),
        stack_id=stack_id,
        status=str(stack.get("StackStatus", "")),
        region=arn_parts[3] if len(arn_parts) > 4 and arn_parts[3] else connection.region,
        account_id=arn_parts[4] if len(arn_parts) > 4 else "",
        outputs={o["OutputKey"]: o.get("OutputValue", "") for o in stack.get("Outputs") or []},
        parameters={
            p["ParameterKey"]: p.get("ResolvedValue", p.get("ParameterValue", ""))
            for p in stack.get("Parameters") or []
        },
        resources=_resources(cloudformation, stack_name) if with_resources else [],
    )
    for name in REQUIRED_OUTPUTS:
        deployment.output(name)
    return deployment


def _resources(cloudformation: Any, stack_name: str) -> list[StackResource]:
    found = []
    for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack_name):
        for item in page.get("StackResourceSummaries", []):
            if not item.get("LogicalResourceId"):
                continue
            found.append(
                StackResource(
                    logical_id=item["LogicalResourceId"],
                    resource_type=item.get("ResourceType", ""),
                    physical_id=item.get("PhysicalResourceId", ""),
                    status=item.get("ResourceStatus", ""),
                )
            )
    return found


def check_selection(deployment: Deployment, domains: list[str], object_types: list[str]) -> None:
    """Refuse a --domain or --type the stack does not export (naming what it does export)."""
    for given, configured, option in (
        (domains, deployment.domain_names, "--domain"),
        (object_types, deployment.object_types, "--type"),
    ):
        unknown = [value for value in given if value not in configured]
        if unknown:
            raise InvalidInput(
                f"{option} {', '.join(unknown)}: not configured in stack {deployment.stack_name} "
                f"(configured: {', '.join(configured) or 'none'})"
            )
