"""Resources moto's CloudFormation skips, created through the service APIs after `create_stack`.

One function per resource type, registered with `@provisioner("AWS::...")`: it receives the
resource's Properties with every intrinsic already resolved by moto (see `sam.SkippedResource`) and
returns the physical id CloudFormation's `Ref` would. The next skipped type (Glue, Athena ...) is one
more function. A name already taken (a second stack, or twice in one Scheduler group) fails the
deployment with a clear message, as AWS's `ConflictException` / `AlreadyExists` would.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

# Created first: a schedule group must exist before its schedules.
ORDER = ("AWS::Scheduler::ScheduleGroup",)


class DeploymentConflict(RuntimeError):
    """A physical name is already used in the account and Region: AWS refuses the resource."""


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


def provisioner(resource_type: str) -> Callable[[Provisioner], Provisioner]:
    """Register the function that creates resources of `resource_type`."""

    def register(function: Provisioner) -> Provisioner:
        PROVISIONERS[resource_type] = function
        return function

    return register


def _conflict(context: ProvisionContext, resource_type: str, logical_id: str, name: str, where: str) -> None:
    owner = context.owner_of(resource_type, name)
    by = f" by stack {owner!r}" if owner else ""
    raise DeploymentConflict(
        f"{context.stack_name}: {logical_id} ({resource_type}) cannot be created: the name {name!r} is already "
        f"used{where}{by} in this account and Region. Give it a name unique per stack (e.g. with ${{AWS::StackName}})."
    )


@provisioner("AWS::Scheduler::ScheduleGroup")
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


@provisioner("AWS::Scheduler::Schedule")
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


@provisioner("AWS::CloudWatch::Alarm")
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
