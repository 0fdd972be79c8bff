"""Resources moto's CloudFormation skips, created through the service APIs after `create_stack`.

One function per resource type, registered with `@provisioner("AWS::...")`: it receives the
resource's Properties with every intrinsic already resolved by moto (see `sam.SkippedResource`) and
returns the physical id CloudFormation's `Ref` would. When that `Ref` is one of the Properties (a
name), `ref=` names it: other resources and Outputs that `Ref` the resource then get that property's
value (`sam.plan_deployment` rewrites the reference before moto resolves it). A `@deprovisioner`
deletes what a provisioner made, when the stack is removed or rolled back.

A name already taken (a second stack, or twice in one Scheduler group) fails the deployment with a
clear message, as AWS's `ConflictException` / `AlreadyExists` would; properties the service would
refuse fail it with the service's error (`ResourceRefused`).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

# Created first, in this order: a schedule group before its schedules, a workgroup before its saved queries.
ORDER = ("AWS::Scheduler::ScheduleGroup", "AWS::Glue::Database", "AWS::Athena::WorkGroup")


class DeploymentConflict(RuntimeError):
    """A physical name is already used in the account and Region: AWS refuses the resource."""


class ResourceRefused(RuntimeError):
    """The service refuses the resource's properties (CloudFormation fails the resource with its error)."""


@dataclass(frozen=True)
class ProvisionContext:
    """What a provisioner may use: admin clients and the deploying stack's identity."""

    stack_name: str
    client: Callable[[str], Any]
    owner_of: Callable[[str, str], str | None]  # (resource type, physical id) -> stack that owns it

    def generated_name(self, logical_id: str, limit: int = 64) -> str:
        """A name as CloudFormation generates one: stack-logical-random."""
        return f"{self.stack_name}-{logical_id}-{uuid.uuid4().hex[:12].upper()}"[-limit:]


Provisioner = Callable[[ProvisionContext, str, dict[str, Any]], str]
PROVISIONERS: dict[str, Provisioner] = {}
# Resource type -> the property path whose value CloudFormation's `Ref` returns (a name the template sets).
REF_PROPERTIES: dict[str, tuple[str, ...]] = {}
Deprovisioner = Callable[[ProvisionContext, str, dict[str, Any]], None]
DEPROVISIONERS: dict[str, Deprovisioner] = {}


def provisioner(resource_type: str, ref: tuple[str, ...] = ()) -> Callable[[Provisioner], Provisioner]:
    """Register the function that creates resources of `resource_type` (`ref`: the property `Ref` returns)."""

    def register(function: Provisioner) -> Provisioner:
        PROVISIONERS[resource_type] = function
        if ref:
            REF_PROPERTIES[resource_type] = ref
        return function

    return register


def deprovisioner(resource_type: str) -> Callable[[Deprovisioner], Deprovisioner]:
    """Register the function that deletes a provisioned resource (physical id, resolved Properties)."""

    def register(function: Deprovisioner) -> Deprovisioner:
        DEPROVISIONERS[resource_type] = function
        return function

    return register


def ref_value(resource_type: str, properties: dict[str, Any]) -> Any:
    """The value of the property `Ref` returns for this type, or None when the type has none (or it is unset)."""
    value: Any = properties
    for part in REF_PROPERTIES.get(resource_type, ()):
        value = value.get(part) if isinstance(value, dict) else None
    return None if value is properties else value


def _refuse(context: ProvisionContext, resource_type: str, logical_id: str, code: str, message: str) -> None:
    raise ResourceRefused(f"{context.stack_name}: {logical_id} ({resource_type}): {code}: {message}")


def _conflict(context: ProvisionContext, resource_type: str, logical_id: str, name: str, where: str) -> None:
    owner = context.owner_of(resource_type, name)
    by = f" by stack {owner!r}" if owner else ""
    raise DeploymentConflict(
        f"{context.stack_name}: {logical_id} ({resource_type}) cannot be created: the name {name!r} is already "
        f"used{where}{by} in this account and Region. Give it a name unique per stack (e.g. with ${{AWS::StackName}})."
    )


@provisioner("AWS::Scheduler::ScheduleGroup", ref=("Name",))
def schedule_group(context: ProvisionContext, logical_id: str, properties: dict[str, Any]) -> str:
    """EventBridge Scheduler schedule group (Ref: its name)."""
    name = str(properties.get("Name") or context.generated_name(logical_id))
    scheduler = context.client("scheduler")
    try:
        scheduler.get_schedule_group(Name=name)
    except ClientError:
        scheduler.create_schedule_group(Name=name)
        return name
    _conflict(context, "AWS::Scheduler::ScheduleGroup", logical_id, name, "")
    return name


@provisioner("AWS::Scheduler::Schedule", ref=("Name",))
def schedule(context: ProvisionContext, logical_id: str, properties: dict[str, Any]) -> str:
    """EventBridge Scheduler schedule (Ref: its name). Names are unique within a group."""
    name = str(properties.get("Name") or context.generated_name(logical_id))
    group = str(properties.get("GroupName") or "default")
    arguments: dict[str, Any] = {
        "Name": name,
        "GroupName": group,
        "ScheduleExpression": properties["ScheduleExpression"],
        "FlexibleTimeWindow": _flexible_window(properties.get("FlexibleTimeWindow") or {"Mode": "OFF"}),
        "Target": _schedule_target(properties["Target"]),
    }
    for key in ("ScheduleExpressionTimezone", "State", "Description", "KmsKeyArn", "StartDate", "EndDate"):
        if properties.get(key) not in (None, ""):
            arguments[key] = properties[key]
    try:
        context.client("scheduler").create_schedule(**arguments)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ConflictException":
            _conflict(context, "AWS::Scheduler::Schedule", logical_id, name, f" in schedule group {group!r}")
        raise
    return name


@deprovisioner("AWS::Scheduler::Schedule")
def delete_schedule(context: ProvisionContext, physical_id: str, properties: dict[str, Any]) -> None:
    """Delete a schedule from its group."""
    context.client("scheduler").delete_schedule(
        Name=physical_id, GroupName=str(properties.get("GroupName") or "default")
    )


def _flexible_window(window: dict[str, Any]) -> dict[str, Any]:
    resolved: dict[str, Any] = {"Mode": window.get("Mode", "OFF")}
    if window.get("MaximumWindowInMinutes") not in (None, ""):
        resolved["MaximumWindowInMinutes"] = int(window["MaximumWindowInMinutes"])
    return resolved


def _schedule_target(target: dict[str, Any]) -> dict[str, Any]:
    resolved = dict(target)
    retry = dict(resolved.get("RetryPolicy") or {})
    for key in ("MaximumRetryAttempts", "MaximumEventAgeInSeconds"):
        if key in retry:
            retry[key] = int(retry[key])
    if retry:
        resolved["RetryPolicy"] = retry
    return resolved


@provisioner("AWS::S3::BucketPolicy")
def bucket_policy(context: ProvisionContext, logical_id: str, properties: dict[str, Any]) -> str:
    """Bucket policy (Ref: the bucket name)."""
    bucket = str(properties["Bucket"])
    context.client("s3").put_bucket_policy(Bucket=bucket, Policy=json.dumps(properties["PolicyDocument"]))
    return bucket


@provisioner("AWS::SQS::QueuePolicy")
def queue_policy(context: ProvisionContext, logical_id: str, properties: dict[str, Any]) -> str:
    """Queue policy of each queue in `Queues` (URLs) (Ref: a generated id)."""
    sqs = context.client("sqs")
    for url in properties.get("Queues") or []:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(properties["PolicyDocument"])})
    return context.generated_name(logical_id)


@provisioner("AWS::SNS::TopicPolicy")
def topic_policy(context: ProvisionContext, logical_id: str, properties: dict[str, Any]) -> str:
    """Access policy of each topic in `Topics` (Ref: a generated id)."""
    sns = context.client("sns")
    for arn in properties.get("Topics") or []:
        sns.set_topic_attributes(
            TopicArn=arn, AttributeName="Policy", AttributeValue=json.dumps(properties["PolicyDocument"])
        )
    return context.generated_name(logical_id)


_ALARM_NUMBERS = {"EvaluationPeriods": int, "Period": int, "Threshold": float, "DatapointsToAlarm": int}


@provisioner("AWS::CloudWatch::Alarm", ref=("AlarmName",))
def alarm(context: ProvisionContext, logical_id: str, properties: dict[str, Any]) -> str:
    """CloudWatch alarm (Ref: its name)."""
    name = str(properties.get("AlarmName") or context.generated_name(logical_id, 255))
    arguments: dict[str, Any] = {key: value for key, value in properties.items() if key != "AlarmName"}
    for key, kind in _ALARM_NUMBERS.items():
        if key in arguments:
            arguments[key] = kind(arguments[key])
    for query in arguments.get("Metrics") or []:
        stat = query.get("MetricStat")
        if stat and "Period" in stat:
            stat["Period"] = int(stat["Period"])
        if "ReturnData" in query:
            query["ReturnData"] = str(query["ReturnData"]).lower() == "true"
    if "ActionsEnabled" in arguments:
        arguments["ActionsEnabled"] = str(arguments["ActionsEnabled"]).lower() == "true"
    cloudwatch = context.client("cloudwatch")
    if cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"]:
        _conflict(context, "AWS::CloudWatch::Alarm", logical_id, name, "")
    cloudwatch.put_metric_alarm(AlarmName=name, **arguments)
    return name


# ------------------------------------------------------------------------- the queryable catalog
# Glue stores names in lower case; a single-line name of 1-255 characters (Glue's API pattern).
_GLUE_NAME_LIMIT = 255
# Athena's API patterns and limits.
_WORKGROUP_NAME = re.compile(r"^[a-zA-Z0-9._-]{1,128}$")
_MIN_BYTES_SCANNED_CUTOFF = 10_000_000
_DESCRIPTION_LIMIT = 1024
_QUERY_NAME_LIMIT = 128
_QUERY_STRING_LIMIT = 262_144


@provisioner("AWS::Glue::Database", ref=("DatabaseInput", "Name"))
def glue_database(context: ProvisionContext, logical_id: str, properties: dict[str, Any]) -> str:
    """Glue database (Ref: its name as the template gives it; Glue stores it in lower case)."""
    database_input = {key: value for key, value in dict(properties.get("DatabaseInput") or {}).items() if value}
    name = str(database_input.get("Name") or "")
    if not 1 <= len(name) <= _GLUE_NAME_LIMIT or "\n" in name or "\r" in name:
        _refuse(
            context, "AWS::Glue::Database", logical_id, "InvalidInputException", f"1 validation error: Name {name!r}"
        )
    glue = context.client("glue")
    stored = name.lower()
    try:
        glue.get_database(Name=stored)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "EntityNotFoundException":
            raise
        arguments: dict[str, Any] = {"DatabaseInput": database_input | {"Name": stored}}
        if properties.get("CatalogId"):
            arguments["CatalogId"] = str(properties["CatalogId"])
        glue.create_database(**arguments)
        return name
    _conflict(context, "AWS::Glue::Database", logical_id, stored, " (AlreadyExistsException)")
    return name


@deprovisioner("AWS::Glue::Database")
def delete_glue_database(context: ProvisionContext, physical_id: str, properties: dict[str, Any]) -> None:
    """Delete the database (with its tables and partitions, as Glue does)."""
    context.client("glue").delete_database(Name=physical_id.lower())


@provisioner("AWS::Athena::WorkGroup", ref=("Name",))
def athena_workgroup(context: ProvisionContext, logical_id: str, properties: dict[str, Any]) -> str:
    """Athena workgroup (Ref: its name)."""
    kind = "AWS::Athena::WorkGroup"
    name = str(properties.get("Name") or "")
    if not _WORKGROUP_NAME.match(name):
        _refuse(context, kind, logical_id, "InvalidRequestException", f"WorkGroup name {name!r} is not valid")
    description = str(properties.get("Description") or "")
    if len(description) > _DESCRIPTION_LIMIT:
        _refuse(context, kind, logical_id, "InvalidRequestException", "Description is longer than 1024 characters")
    configuration = _workgroup_configuration(properties.get("WorkGroupConfiguration") or {})
    cutoff = configuration.get("BytesScannedCutoffPerQuery")
    if cutoff is not None and cutoff < _MIN_BYTES_SCANNED_CUTOFF:
        _refuse(
            context,
            kind,
            logical_id,
            "InvalidRequestException",
            f"BytesScannedCutoffPerQuery {cutoff} is below the minimum of {_MIN_BYTES_SCANNED_CUTOFF}",
        )
    athena = context.client("athena")
    if athena.get_work_group(WorkGroup=name).get("WorkGroup"):
        _conflict(context, kind, logical_id, name, "")
    arguments: dict[str, Any] = {"Name": name, "Configuration": configuration}
    if description:
        arguments["Description"] = description
    athena.create_work_group(**arguments)
    if str(properties.get("State") or "ENABLED") == "DISABLED":
        athena.update_work_group(WorkGroup=name, State="DISABLED")
    return name


def _workgroup_configuration(configuration: dict[str, Any]) -> dict[str, Any]:
    # CloudFormation passes numbers and booleans as the template's strings; the API wants them typed.
    resolved = dict(configuration)
    if "BytesScannedCutoffPerQuery" in resolved:
        resolved["BytesScannedCutoffPerQuery"] = int(resolved["BytesScannedCutoffPerQuery"])
    for key in ("EnforceWorkGroupConfiguration", "PublishCloudWatchMetricsEnabled", "RequesterPaysEnabled"):
        if key in resolved:
            resolved[key] = str(resolved[key]).lower() == "true"
    return resolved


@deprovisioner("AWS::Athena::WorkGroup")
def delete_athena_workgroup(context: ProvisionContext, physical_id: str, properties: dict[str, Any]) -> None:
    """Delete the workgroup with its saved queries (the template's RecursiveDeleteOption)."""
    context.client("athena").delete_work_group(WorkGroup=physical_id, RecursiveDeleteOption=True)


@provisioner("AWS::Athena::NamedQuery")
def athena_named_query(context: ProvisionContext, logical_id: str, properties: dict[str, Any]) -> str:
    """Athena saved query (Ref: the id Athena generates)."""
    kind = "AWS::Athena::NamedQuery"
    name, query = str(properties.get("Name") or ""), str(properties.get("QueryString") or "")
    database, workgroup = str(properties.get("Database") or ""), str(properties.get("WorkGroup") or "primary")
    if not 1 <= len(name) <= _QUERY_NAME_LIMIT:
        _refuse(context, kind, logical_id, "InvalidRequestException", f"Name must be 1-128 characters: {name!r}")
    if not 1 <= len(query) <= _QUERY_STRING_LIMIT:
        _refuse(context, kind, logical_id, "InvalidRequestException", "QueryString must be 1-262144 characters")
    if not 1 <= len(database) <= _GLUE_NAME_LIMIT:
        _refuse(
            context, kind, logical_id, "InvalidRequestException", f"Database must be 1-255 characters: {database!r}"
        )
    athena = context.client("athena")
    if not athena.get_work_group(WorkGroup=workgroup).get("WorkGroup"):
        _refuse(context, kind, logical_id, "InvalidRequestException", f"WorkGroup {workgroup} is not found")
    arguments = {"Name": name, "Database": database, "QueryString": query, "WorkGroup": workgroup}
    if properties.get("Description"):
        arguments["Description"] = str(properties["Description"])
    return str(athena.create_named_query(**arguments)["NamedQueryId"])


# Amazon Q Developer in chat applications (AWS Chatbot) has no moto backend, and what it does, render
# a message in Slack or Teams, cannot happen offline: a stack that would configure a chat channel is
# refused (moto alone would skip the resource without a word). The messages chat would receive are
# checked on the notification topic instead (README).
CHAT_CHANNEL_TYPES = ("AWS::Chatbot::SlackChannelConfiguration", "AWS::Chatbot::MicrosoftTeamsChannelConfiguration")


def _refuse_chat_channel(resource_type: str) -> Provisioner:
    def refuse(context: ProvisionContext, logical_id: str, properties: dict[str, Any]) -> str:
        raise ResourceRefused(
            f"{context.stack_name}: {logical_id} ({resource_type}): not modelled offline: a chat channel cannot be "
            "configured without Slack or Microsoft Teams; deploy without the parameters that create it (the "
            "messages chat would receive are on the notification topic: local/harness/README.md)"
        )

    return refuse


for _chat_type in CHAT_CHANNEL_TYPES:
    provisioner(_chat_type)(_refuse_chat_channel(_chat_type))
