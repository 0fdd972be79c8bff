"""`cpexport doctor`: is this deployment able to export, and will someone be paged when it cannot?

Each check reads what AWS has (not what the template says it should have): the stack's resources,
the bucket and key policies AppIntegrations needs, the quotas against the configured object types,
the schedule, and who is subscribed to the alarm topic.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import IntEnum
from fnmatch import fnmatchcase
from functools import partial
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from cpexport.clients.appintegrations import AppIntegrations, DataIntegration
from cpexport.config import MAX_CONCURRENT_EXPORT_JOBS
from cpexport.errors import ExportError
from cpexport.exports import data_integration_name

from cpexport_cli.connection import Connection
from cpexport_cli.deployment import Deployment

APPINTEGRATIONS_PRINCIPAL = "app-integrations.amazonaws.com"
# The statements AppIntegrations' bulk-export documentation asks for.
BUCKET_ACTIONS = ("s3:GetObject", "s3:ListBucket", "s3:PutObject", "s3:PutObjectAcl")
KEY_ACTIONS = ("kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey")
# AppIntegrations data integrations per Region: 20 by default (adjustable), shared with other Connect features.
DEFAULT_DATA_INTEGRATION_QUOTA = 20
_COMPLETE = ("CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE")


class Verdict(IntEnum):
    """A check's result; ordered so the worst one decides the command's exit code."""

    OK = 0
    WARN = 1
    FAIL = 2

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass
class CheckResult:
    """One check: its verdict, a one-line summary, and the details behind it."""

    name: str
    verdict: Verdict
    summary: str
    details: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.verdict.label, "summary": self.summary, "details": self.details}


def _error(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'Error')}: {error.get('Message', '')}".strip(": ")
    return f"{type(exc).__name__}: {exc}"


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _policy_document(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    document = json.loads(value) if value else {}
    return document if isinstance(document, dict) else {}


def _grants_service(statement: dict[str, Any], principal: str) -> bool:
    if statement.get("Effect") != "Allow":
        return False
    granted = statement.get("Principal")
    if granted == "*":
        return True
    return isinstance(granted, dict) and principal in _as_list(granted.get("Service"))


def _matches(patterns: Iterable[Any], value: str) -> bool:
    return any(fnmatchcase(value.lower(), str(pattern).lower()) for pattern in patterns)


def missing_grants(
    document: dict[str, Any], principal: str, actions: Iterable[str], resources: Iterable[str]
) -> list[str]:
    """The (action on resource) pairs that no Allow statement for `principal` grants."""
    statements = [s for s in _as_list(document.get("Statement")) if isinstance(s, dict)]
    missing = []
    for action in actions:
        for resource in resources:
            if not any(
                _grants_service(s, principal)
                and _matches(_as_list(s.get("Action")), action)
                and _matches(_as_list(s.get("Resource")), resource)
                for s in statements
            ):
                missing.append(f"{action} on {resource}")
    return missing


class Doctor:
    """Runs every check of a deployment."""

    def __init__(
        self,
        deployment: Deployment,
        connection: Connection,
        appintegrations: AppIntegrations,
        data_integration_quota: int = DEFAULT_DATA_INTEGRATION_QUOTA,
    ) -> None:
        self.deployment = deployment
        self.connection = connection
        self.appintegrations = appintegrations
        self.data_integration_quota = data_integration_quota

    def run(self) -> list[CheckResult]:
        """Every check, in the order on-call reads them; a check that cannot read its facts fails."""
        checks: list[tuple[str, Callable[[], CheckResult]]] = [
            ("stack", self.stack),
            ("resources", self.resources),
            ("bucket-policy", self.bucket_policy),
            ("bucket-encryption", self.bucket_encryption),
            ("key-policy", self.key_policy),
            ("data-integrations", self.data_integrations),
            ("export-jobs", self.export_jobs),
            ("schedule", self.schedule),
            ("alarms", self.alarms),
            ("alarm-subscriptions", self.alarm_subscriptions),
        ]
        results = []
        for name, check in checks:
            try:
                results.append(check())
            except (ClientError, BotoCoreError, ExportError) as exc:
                results.append(CheckResult(name, Verdict.FAIL, f"could not check: {_error(exc)}"))
        return results

    # -- the stack --------------------------------------------------------------------------------
    def stack(self) -> CheckResult:
        status = self.deployment.status
        if status in _COMPLETE:
            return CheckResult("stack", Verdict.OK, f"{self.deployment.stack_name} is {status}")
        verdict = Verdict.WARN if status.endswith("_IN_PROGRESS") else Verdict.FAIL
        return CheckResult("stack", verdict, f"{self.deployment.stack_name} is {status}")

    def resources(self) -> CheckResult:
        broken = [
            f"{r.logical_id} ({r.resource_type}) is {r.status}"
            for r in self.deployment.resources
            if r.status and (not r.status.endswith("_COMPLETE") or "FAILED" in r.status or "DELETE" in r.status)
        ]
        probes: list[tuple[str, Callable[[], Any]]] = [
            (
                "state machine",
                lambda: self.client("stepfunctions").describe_state_machine(
                    stateMachineArn=self.deployment.state_machine_arn
                ),
            ),
            ("state table", lambda: self.client("dynamodb").describe_table(TableName=self.deployment.state_table_name)),
        ]
        bucket = self.deployment.outputs.get("ExportBucketName")
        if bucket:
            probes.append(("export bucket", lambda: self.client("s3").head_bucket(Bucket=bucket)))
        for output in ("NotificationTopicArn", "AlarmTopicArn"):
            arn = self.deployment.outputs.get(output)
            if arn:
                probes.append(
                    (output.removesuffix("Arn"), partial(self.client("sns").get_topic_attributes, TopicArn=arn))
                )
        for name in self.deployment.physical_ids("AWS::Lambda::Function"):
            probes.append((f"function {name}", partial(self.client("lambda").get_function, FunctionName=name)))
        for what, probe in probes:
            try:
                probe()
            except (ClientError, BotoCoreError) as exc:
                broken.append(f"{what}: {_error(exc)}")
        count = len(self.deployment.resources)
        if broken:
            return CheckResult("resources", Verdict.FAIL, f"{len(broken)} problem(s) in {count} resources", broken)
        return CheckResult(
            "resources",
            Verdict.OK,
            f"{count} resources complete; state machine, table, bucket, topics, functions found",
        )

    # -- what AppIntegrations needs -----------------------------------------------------------------
    def bucket_policy(self) -> CheckResult:
        bucket = self.deployment.outputs.get("ExportBucketName", "")
        try:
            document = _policy_document(self.client("s3").get_bucket_policy(Bucket=bucket)["Policy"])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "NoSuchBucketPolicy":
                return CheckResult(
                    "bucket-policy",
                    Verdict.FAIL,
                    f"bucket {bucket} has no policy: AppIntegrations cannot write the export files",
                    ["add the statement 'Allow AppIntegrations to write data to destination bucket' (README)"],
                )
            raise
        missing = missing_grants(
            document, APPINTEGRATIONS_PRINCIPAL, BUCKET_ACTIONS, (f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*")
        )
        if missing:
            return CheckResult(
                "bucket-policy",
                Verdict.FAIL,
                f"bucket {bucket}'s policy does not let {APPINTEGRATIONS_PRINCIPAL} write the exports",
                [f"missing: {item}" for item in missing],
            )
        conditioned = any(
            _grants_service(s, APPINTEGRATIONS_PRINCIPAL) and "aws:SourceAccount" in json.dumps(s.get("Condition", {}))
            for s in _as_list(document.get("Statement"))
            if isinstance(s, dict)
        )
        if not conditioned:
            return CheckResult(
                "bucket-policy",
                Verdict.WARN,
                f"bucket {bucket} lets {APPINTEGRATIONS_PRINCIPAL} write without an aws:SourceAccount condition",
                ["any account's data integration could write here; add the documented conditions"],
            )
        return CheckResult("bucket-policy", Verdict.OK, f"bucket {bucket} grants AppIntegrations what it needs")

    def bucket_encryption(self) -> CheckResult:
        bucket = self.deployment.outputs.get("ExportBucketName", "")
        key = self.deployment.outputs.get("ExportKeyArn", "")
        s3 = self.client("s3")
        rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
        problems = []
        default = (rules[0] if rules else {}).get("ApplyServerSideEncryptionByDefault", {})
        if default.get("SSEAlgorithm") != "aws:kms":
            problems.append(f"default encryption is {default.get('SSEAlgorithm')}, not aws:kms")
        elif key and default.get("KMSMasterKeyID") not in (key, key.rsplit("/", 1)[-1]):
            problems.append(f"default key is {default.get('KMSMasterKeyID')}, not the export key {key}")
        try:
            ownership = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"]
            if not any(rule.get("ObjectOwnership") == "BucketOwnerEnforced" for rule in ownership):
                problems.append("ACLs are enabled (object ownership is not BucketOwnerEnforced)")
        except ClientError as exc:
            problems.append(f"object ownership: {_error(exc)}")
        if problems:
            return CheckResult(
                "bucket-encryption", Verdict.FAIL, f"bucket {bucket} is not set up as exports need", problems
            )
        return CheckResult(
            "bucket-encryption", Verdict.OK, f"bucket {bucket}: SSE-KMS with the export key, ACLs disabled"
        )

    def key_policy(self) -> CheckResult:
        key = self.deployment.outputs.get("ExportKeyArn", "")
        policy = self.client("kms").get_key_policy(KeyId=key, PolicyName="default")["Policy"]
        missing = missing_grants(_policy_document(policy), APPINTEGRATIONS_PRINCIPAL, KEY_ACTIONS, ("*",))
        if missing:
            return CheckResult(
                "key-policy",
                Verdict.FAIL,
                f"the export key's policy does not let {APPINTEGRATIONS_PRINCIPAL} use it",
                [f"missing: {item}" for item in missing],
            )
        return CheckResult("key-policy", Verdict.OK, "the export key lets AppIntegrations encrypt and decrypt")

    # -- quotas ------------------------------------------------------------------------------------
    def _configured(self) -> list[tuple[str, str, str]]:
        return [
            (domain, object_type, data_integration_name(self.deployment.stack_name, domain, object_type))
            for domain in self.deployment.domain_names
            for object_type in self.deployment.object_types
        ]

    def data_integrations(self) -> CheckResult:
        existing = self.appintegrations.list_data_integrations()
        names = {di.name for di in existing}
        configured = self._configured()
        missing = [name for _, _, name in configured if name not in names]
        projected = len(existing) + len(missing)
        details = [
            f"{len(configured)} configured object type(s), {len(configured) - len(missing)} with a data integration; "
            f"{len(existing)} data integration(s) in the Region; quota {self.data_integration_quota}"
        ]
        details.extend(self._conflicts(configured, names))
        verdict = Verdict.FAIL if len(details) > 1 else Verdict.OK
        if projected > self.data_integration_quota:
            verdict = Verdict.FAIL
            details.append(
                f"{len(missing)} more are needed: {projected} > {self.data_integration_quota}. Raise the quota "
                "(Service Quotas, AppIntegrations) or export fewer object types"
            )
        summary = f"{projected} of {self.data_integration_quota} data integrations once every object type exported"
        return CheckResult("data-integrations", verdict, summary, details)

    def _conflicts(self, configured: list[tuple[str, str, str]], names: set[str]) -> list[str]:
        """Existing data integrations of this stack's names that export something else (never reused)."""
        key = self.deployment.outputs.get("ExportKeyArn")
        conflicts = []
        for domain, object_type, name in configured:
            if name not in names:
                continue
            found = self.appintegrations.get_data_integration(name)
            if found is None:
                continue
            if (found.domain_names and found.domain_names != (domain,)) or (
                found.object_types and found.object_types != (object_type,)
            ):
                conflicts.append(
                    f"{name} exports {found.domain_names}/{found.object_types}, not {domain}/{object_type}"
                )
            if key and found.kms_key and found.kms_key != key:
                conflicts.append(f"{name} uses key {found.kms_key}, not the export key")
        return conflicts

    def export_jobs(self) -> CheckResult:
        running: list[str] = []
        for data_integration in self.appintegrations.list_data_integrations():
            association = self.appintegrations.find_association(
                DataIntegration(name=data_integration.name, id=data_integration.id, arn=data_integration.arn)
            )
            if association is not None and association.status == "IN_PROGRESS":
                running.append(data_integration.name)
        concurrency = int(self.deployment.number("MaxConcurrentExports", 5))
        quota = MAX_CONCURRENT_EXPORT_JOBS
        summary = (
            f"{len(running)} of {quota} concurrent export jobs running in the Region; this stack runs up to "
            f"{concurrency} at a time"
        )
        details = [f"running: {', '.join(running)}"] if running else []
        if concurrency > quota:
            return CheckResult("export-jobs", Verdict.FAIL, summary, [f"MaxConcurrentExports {concurrency} > {quota}"])
        if len(running) + concurrency > quota:
            details.append("other jobs leave less room than MaxConcurrentExports: some exports will wait for quota")
            return CheckResult("export-jobs", Verdict.WARN, summary, details)
        return CheckResult("export-jobs", Verdict.OK, summary, details)

    # -- running and paging ----------------------------------------------------------------------------
    def _schedules(self) -> list[dict[str, Any]]:
        scheduler = self.client("scheduler")
        names = self.deployment.physical_ids("AWS::Scheduler::Schedule")
        if names:
            return [scheduler.get_schedule(Name=name) for name in names]
        # A stack whose resources do not list the schedule: find it by its target.
        found = []
        for page in scheduler.get_paginator("list_schedules").paginate():
            for summary in page.get("Schedules", []):
                if (summary.get("Target") or {}).get("Arn") == self.deployment.state_machine_arn:
                    found.append(scheduler.get_schedule(Name=summary["Name"], GroupName=summary.get("GroupName")))
        return found

    def schedule(self) -> CheckResult:
        schedules = self._schedules()
        if not schedules:
            return CheckResult(
                "schedule",
                Verdict.FAIL,
                "no EventBridge Scheduler schedule targets the state machine: nothing exports by itself",
            )
        configured = self.deployment.parameters.get("ScheduleState", "ENABLED")
        verdict = Verdict.OK
        details = []
        for schedule in schedules:
            state = schedule.get("State", "ENABLED")
            name = f"{schedule.get('GroupName', 'default')}/{schedule.get('Name')}"
            details.append(
                f"{name}: {state}, {schedule.get('ScheduleExpression')} ({schedule.get('ScheduleExpressionTimezone', 'UTC')})"
            )
            if state != "ENABLED":
                as_configured = configured == state
                verdict = max(verdict, Verdict.WARN if as_configured else Verdict.FAIL)
                details.append(
                    f"{name} is {state}"
                    + (
                        " as ScheduleState says: no scheduled exports"
                        if as_configured
                        else f" but ScheduleState is {configured}"
                    )
                )
            if "<aws.scheduler.scheduled-time>" not in str((schedule.get("Target") or {}).get("Input", "")):
                verdict = max(verdict, Verdict.WARN)
                details.append(f"{name}: its input does not send scheduledTime (a late tick would plan another window)")
        summary = "the schedule is enabled" if verdict == Verdict.OK else "the schedule does not run as configured"
        return CheckResult("schedule", verdict, summary, details)

    def _alarms(self, topic: str) -> tuple[list[str], list[dict[str, Any]]]:
        """The stack's alarms (names, descriptions); by the alarm topic when the stack does not list them."""
        cloudwatch = self.client("cloudwatch")
        names = self.deployment.physical_ids("AWS::CloudWatch::Alarm")
        if names:
            found = []
            for start in range(0, len(names), 100):
                found.extend(cloudwatch.describe_alarms(AlarmNames=names[start : start + 100])["MetricAlarms"])
            return names, found
        found = [
            alarm
            for page in cloudwatch.get_paginator("describe_alarms").paginate(AlarmTypes=["MetricAlarm"])
            for alarm in page.get("MetricAlarms", [])
            if topic and topic in alarm.get("AlarmActions", [])
        ]
        return [alarm["AlarmName"] for alarm in found], found

    def alarms(self) -> CheckResult:
        topic = self.deployment.outputs.get("AlarmTopicArn", "")
        names, found = self._alarms(topic)
        if not names:
            return CheckResult("alarms", Verdict.FAIL, "the stack has no CloudWatch alarms: nothing pages on-call")
        details = [f"{name}: missing" for name in sorted(set(names) - {a["AlarmName"] for a in found})]
        for alarm in found:
            if topic not in alarm.get("AlarmActions", []):
                details.append(f"{alarm['AlarmName']}: does not notify the alarm topic")
            elif not alarm.get("ActionsEnabled", True):
                details.append(f"{alarm['AlarmName']}: actions disabled")
        if details:
            return CheckResult("alarms", Verdict.FAIL, f"{len(details)} of {len(names)} alarms will not page", details)
        return CheckResult("alarms", Verdict.OK, f"{len(names)} alarms notify the alarm topic")

    def alarm_subscriptions(self) -> CheckResult:
        topic = self.deployment.outputs.get("AlarmTopicArn", "")
        sns = self.client("sns")
        confirmed, pending = [], []
        for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic):
            for subscription in page.get("Subscriptions", []):
                who = f"{subscription.get('Protocol')}:{subscription.get('Endpoint')}"
                if self._pending(sns, subscription):
                    pending.append(who)
                else:
                    confirmed.append(who)
        details = [f"confirmed: {who}" for who in confirmed] + [
            f"PENDING CONFIRMATION (never receives anything until confirmed): {who}" for who in pending
        ]
        if not confirmed:
            reason = "only unconfirmed subscriptions" if pending else "no subscription"
            return CheckResult(
                "alarm-subscriptions", Verdict.FAIL, f"the alarm topic has {reason}: nobody is paged", details
            )
        if pending:
            return CheckResult(
                "alarm-subscriptions",
                Verdict.WARN,
                f"{len(pending)} subscription(s) of the alarm topic unconfirmed",
                details,
            )
        return CheckResult("alarm-subscriptions", Verdict.OK, f"{len(confirmed)} confirmed subscription(s)", details)

    @staticmethod
    def _pending(sns: Any, subscription: dict[str, Any]) -> bool:
        arn = str(subscription.get("SubscriptionArn", ""))
        # AWS lists an unconfirmed subscription with this placeholder instead of an ARN.
        if arn == "PendingConfirmation" or not arn.startswith("arn:"):
            return True
        attributes = sns.get_subscription_attributes(SubscriptionArn=arn).get("Attributes", {})
        return str(attributes.get("PendingConfirmation", "false")).lower() == "true"

    def client(self, service: str) -> Any:
        return self.connection.client(service)
