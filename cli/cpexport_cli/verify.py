"""`cpexport verify`: proof, right after `sam deploy`, that the deployed stack exports as a night will.

Two parts, each a list of steps with a verdict, a line, and the fix when it fails:

1. **Permissions, before anything starts** (read-only). Every role of the stack is simulated with
   `iam:SimulatePrincipalPolicy` against every call its code (or its service) makes, dependent
   actions included, on the stack's real resource ARNs with the condition keys the real calls carry:
   one row each of `cpexport_cli.permissions`, the table the offline stack enforces. KMS calls also
   need the key policy to name the role or let the account's IAM policies grant it; S3 calls must not
   be denied by the bucket policy. AppIntegrations itself writes the files as its service principal,
   which no AWS API simulates: the bucket and key policies (GetBucketPolicy, GetKeyPolicy) are
   evaluated for `app-integrations.amazonaws.com` with `cpexport_cli.policy`, the evaluator the
   offline stack enforces them with, both with this account's `aws:SourceAccount`/`aws:SourceArn`
   (must be allowed) and another account's (must not: a statement without those conditions lets any
   account's data integration write into the bucket).
2. **A real export**, unless a permission failed: a backfill of a few minutes of one domain and
   object type, ending a little before the watermark (a range already exported), marked as a
   verification: no watermark moves, its lease lasts as long as its job. Then, read back: the
   data integration and its association, the job COMPLETED for its window (ListDataIntegrationAssociations),
   each file SSE-KMS with the stack's key (HeadObject), the manifest listing exactly those files,
   the Glue partition, and the notification and result event. SNS messages and EventBridge events
   cannot be read back on AWS: both are read from the Notify step's output in the execution's history
   (the MessageId SNS returned, how many events EventBridge took and refused), which needs no
   subscription, rule or queue of its own.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import IntEnum
from functools import cached_property
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from cpexport.catalog import state_table_name, table_name
from cpexport.clients.appintegrations import AppIntegrations, Association, DataIntegration
from cpexport.clients.state_table import StateTable
from cpexport.current_state import CURRENT_STATE_FOLDER
from cpexport.errors import ExportError
from cpexport.exports import data_integration_name
from cpexport.models import ExportWindow, render_utc
from cpexport.paths import domain_root, export_folder, manifest_key, render_stamp
from cpexport.windows import latest_safe_end

from cpexport_cli import permissions as table
from cpexport_cli.connection import Connection
from cpexport_cli.deployment import Deployment
from cpexport_cli.errors import InvalidInput
from cpexport_cli.policy import Caller, Decision, Request, delegates_to_account, evaluate_resource_policy
from cpexport_cli.story import ExecutionStory, ExportStory

SERVICE_PRINCIPAL = "app-integrations.amazonaws.com"
# What the bulk-export documentation's bucket and key statements give the service (README, Deploying).
SERVICE_BUCKET_ACTIONS = ("s3:PutObject", "s3:GetObject", "s3:ListBucket", "s3:PutObjectAcl")
SERVICE_KEY_ACTIONS = ("kms:GenerateDataKey", "kms:Encrypt", "kms:Decrypt", "kms:DescribeKey")
FOREIGN_ACCOUNT = "000000000000"  # any other account: the bucket must not let its data integrations in
DEFAULT_OBJECT_TYPE = "_profile"
DEFAULT_MINUTES = 5
# The window ends this long before the watermark: inside what the last export already covered.
BEFORE_WATERMARK = timedelta(minutes=1)
HEAD_LIMIT = 200  # files whose encryption is read one by one (HeadObject); the rest are counted
_BOOLEAN_KEYS = {"kms:GrantIsForAWSResource", "aws:SecureTransport"}
# Condition keys every real call carries (AWS endpoints are HTTPS).
_EVERY_CALL = {"aws:SecureTransport": "true"}


class Verdict(IntEnum):
    """A step's result; the worst one decides the exit code (FAIL: 1)."""

    OK = 0
    SKIPPED = 1
    WARN = 2
    FAIL = 3

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass
class Step:
    """One thing a night depends on: its verdict, one line, the fix when it failed, the details."""

    name: str
    verdict: Verdict
    summary: str
    fix: str | None = None
    details: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.verdict.label,
            "summary": self.summary,
            "fix": self.fix,
            "details": self.details,
        }


def _error(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{exc.operation_name}: {error.get('Code', 'Error')}: {error.get('Message', '')}".rstrip(": ")
    return f"{type(exc).__name__}: {exc}"


def _document(value: Any) -> str | None:
    if not value:
        return None
    return value if isinstance(value, str) else json.dumps(value)


# ------------------------------------------------------------------------------------ resources
@dataclass(frozen=True)
class Scope:
    """The domain and object type a scoped resource name (a data integration, a domain, a file) is about."""

    domain_name: str
    object_type: str


class StackResources:
    """The ARNs behind `cpexport_cli.permissions`' resource names, for one deployed stack.

    Each scoped name resolves per configured domain and object type; the data integration and its
    association are the real ones when they exist, else the ARN IAM sees before they exist.
    """

    def __init__(
        self, deployment: Deployment, connection: Connection, appintegrations: AppIntegrations, now: datetime
    ) -> None:
        self.deployment = deployment
        self.region = deployment.region
        self.account = deployment.account_id
        parts = deployment.stack_id.split(":")
        self.partition = parts[1] if len(parts) > 1 and parts[1] else "aws"
        self.settings = deployment.settings()
        self.bucket = self.settings.export_bucket_name
        self.export_key = self.settings.kms_key_arn
        self._connection = connection
        self._appintegrations = appintegrations
        self._now = now
        self._physical = {r.logical_id: r.physical_id for r in deployment.resources}
        self._data_integrations: dict[Scope, tuple[DataIntegration | None, Association | None]] = {}

    def _arn(self, service: str, resource: str, region: bool = True) -> str:
        return f"arn:{self.partition}:{service}:{self.region if region else ''}:{self.account}:{resource}"

    def role_arns(self) -> dict[str, str]:
        """Logical id -> ARN of each role of the stack that the table knows."""
        return {
            logical: f"arn:{self.partition}:iam::{self.account}:role/{self._physical[logical]}"
            for logical in table.ROLE_CALLS
            if self._physical.get(logical)
        }

    def unknown_roles(self) -> list[str]:
        """Roles of the deployed stack the table has no row for (a newer template than this CLI)."""
        return [
            r.logical_id
            for r in self.deployment.resources
            if r.resource_type == "AWS::IAM::Role" and r.logical_id not in table.ROLE_CALLS
        ]

    def scopes(self) -> list[Scope]:
        return [Scope(d, t) for d in self.deployment.domain_names for t in self.deployment.object_types]

    def found(self, scope: Scope) -> tuple[DataIntegration | None, Association | None]:
        """The scope's data integration and association, if they exist yet."""
        if scope not in self._data_integrations:
            name = data_integration_name(self.deployment.stack_name, scope.domain_name, scope.object_type)
            found = self._appintegrations.get_data_integration(name)
            association = self._appintegrations.find_association(found) if found is not None else None
            self._data_integrations[scope] = (found, association)
        return self._data_integrations[scope]

    def forget(self, scope: Scope) -> None:
        self._data_integrations.pop(scope, None)

    @cached_property
    def notification_key(self) -> str | None:
        """The ARN of the notification topic's KMS key (None: the topic is not encrypted)."""
        topic = self.deployment.outputs.get("NotificationTopicArn", "")
        attributes = self._connection.client("sns").get_topic_attributes(TopicArn=topic)["Attributes"]
        key = str(attributes.get("KmsMasterKeyId") or "")
        if not key:
            return None
        if key.startswith("arn:"):
            return key
        if key.startswith("alias/"):
            return str(self._connection.client("kms").describe_key(KeyId=key)["KeyMetadata"]["Arn"])
        return self._arn("kms", f"key/{key}")  # a key id, as the template's Ref gives it

    def _window(self) -> ExportWindow:
        end = self._now.replace(second=0, microsecond=0)
        return ExportWindow(start=end - timedelta(minutes=DEFAULT_MINUTES), end=end)

    def _root(self, scope: Scope) -> str:
        return domain_root(self.settings.export_prefix, self.account, scope.domain_name)

    def _object(self, key: str) -> str:
        return f"arn:{self.partition}:s3:::{self.bucket}/{key}"

    def arns(self, name: str, scope: Scope) -> list[str]:
        """The ARNs a resource name stands for in `scope` (several for the state machine's functions)."""
        outputs = self.deployment.outputs
        head = f"{self.settings.export_prefix.strip('/')}/" if self.settings.export_prefix.strip("/") else ""
        stamp = render_stamp(self._now)
        database = outputs.get("GlueDatabaseName", "")
        fixed: dict[str, Callable[[], str]] = {
            table.ANY: lambda: "*",
            table.STATE_TABLE: lambda: self._arn("dynamodb", f"table/{outputs.get('StateTableName', '')}"),
            table.IDEMPOTENCY_TABLE: lambda: self._arn("dynamodb", f"table/{outputs.get('IdempotencyTableName', '')}"),
            table.EXPORT_BUCKET: lambda: f"arn:{self.partition}:s3:::{self.bucket}",
            table.EXPORT_FILE: lambda: self._object(
                export_folder(self._root(scope), stamp, self._window(), scope.object_type) + "verify"
            ),
            table.MANIFEST: lambda: self._object(
                manifest_key(self._root(scope), stamp, self._window(), scope.object_type)
            ),
            table.MANIFEST_PART: lambda: self._object(
                manifest_key(self._root(scope), stamp, self._window(), scope.object_type).removesuffix(".json")
                + ".parts/verify.jsonl"
            ),
            table.CURRENT_STATE_FILE: lambda: self._object(
                f"{head}{CURRENT_STATE_FOLDER}/{state_table_name(scope.object_type)}/data/verify.parquet"
            ),
            table.QUERY_RESULT: lambda: self._object("athena-results/verify.csv"),
            table.EXPORT_KEY: lambda: self.export_key,
            table.NOTIFICATION_TOPIC: lambda: outputs.get("NotificationTopicArn", ""),
            table.EVENT_BUS: lambda: self._bus(outputs.get("EventBusName") or "default"),
            table.GLUE_CATALOG: lambda: self._arn("glue", "catalog"),
            table.GLUE_DATABASE: lambda: self._arn("glue", f"database/{database}"),
            table.VERSIONS_TABLE: lambda: self._arn("glue", f"table/{database}/{table_name(scope.object_type)}"),
            table.CATALOG_TABLE: lambda: self._arn("glue", f"table/{database}/{state_table_name(scope.object_type)}"),
            table.ALL_TABLES: lambda: self._arn("glue", f"table/{database}/*"),
            table.WORKGROUP: lambda: self._arn("athena", f"workgroup/{outputs.get('AthenaWorkGroupName', '')}"),
            table.EXPORT_STATE_MACHINE: lambda: outputs.get("StateMachineArn", ""),
            table.MAINTENANCE_STATE_MACHINE: lambda: outputs.get("MaintenanceStateMachineArn", ""),
            table.SCHEDULE_DEAD_LETTER_QUEUE: lambda: self._queue("ScheduleDeadLetterQueue"),
            table.DATA_INTEGRATION: lambda: self._data_integration(scope),
            table.NEW_DATA_INTEGRATION: lambda: self._arn("app-integrations", "data-integration/*"),
            table.ASSOCIATION: lambda: self._association(scope),
            table.DOMAIN: lambda: self._domain(scope),
            table.OBJECT_TYPE: lambda: f"{self._domain(scope)}/object-types/{scope.object_type}",
            table.OBJECT_KEY: lambda: self.export_key,  # every object of the bucket is SSE-KMS with it
            table.REQUESTED_KEY: lambda: self.export_key,  # the data integrations' KmsKey
        }
        if name == table.TOPIC_KEY:
            key = self.notification_key
            return [key] if key else []
        if name in fixed:
            return [fixed[name]()]
        if name in self._physical:  # a function of the stack
            return [self._arn("lambda", f"function:{self._physical[name]}")]
        raise KeyError(f"{name}: a resource name cli/cpexport_cli/verify.py does not resolve")

    def _bus(self, name: str) -> str:
        return name if name.startswith("arn:") else self._arn("events", f"event-bus/{name}")

    def _queue(self, logical_id: str) -> str:
        url = self._physical.get(logical_id, "")
        return self._arn("sqs", url.rstrip("/").rsplit("/", 1)[-1])

    def _domain(self, scope: Scope) -> str:
        return self._arn("profile", f"domains/{scope.domain_name}")

    def _data_integration(self, scope: Scope) -> str:
        found, _ = self.found(scope)
        return found.arn if found is not None else self._arn("app-integrations", "data-integration/*")

    def _association(self, scope: Scope) -> str:
        found, association = self.found(scope)
        if association is not None:
            return association.arn
        owner = found.id if found is not None else "*"
        return self._arn("app-integrations", f"data-integration-association/{owner}/*")


# ------------------------------------------------------------------------------------ permissions
@dataclass(frozen=True)
class Question:
    """One simulation: may the role do `action` on `resource` with these condition keys."""

    role: str
    action: str
    resource: str
    context: tuple[tuple[str, str], ...]
    why: str


@dataclass(frozen=True)
class Answer:
    decision: str  # allowed, explicitDeny, implicitDeny
    matched: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()


def questions_of(role: str, resources: StackResources) -> list[Question]:
    """Every (action, resource, condition keys) a role's calls need, dependent actions included, in every scope."""
    found: dict[tuple[str, str, tuple[tuple[str, str], ...]], Question] = {}
    for call in table.ROLE_CALLS[role]:
        for scope in resources.scopes():
            for name in call.resources:
                for arn in resources.arns(name, scope):
                    for action in call.actions:
                        context = tuple(sorted(_EVERY_CALL.items()))
                        found.setdefault((action, arn, context), Question(role, action, arn, context, call.why))
                        for dependent in table.dependents(action):
                            keys = _EVERY_CALL | dependent.condition_keys(resources.region)
                            for target in resources.arns(dependent.resource, scope):
                                why = f"{action} needs it ({call.why})"
                                context = tuple(sorted(keys.items()))
                                key = (dependent.action, target, context)
                                found.setdefault(key, Question(role, dependent.action, target, context, why))
    return list(found.values())


def _context_entries(context: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
    return [
        {
            "ContextKeyName": name,
            "ContextKeyValues": [value],
            "ContextKeyType": "boolean" if name in _BOOLEAN_KEYS else "string",
        }
        for name, value in context
    ]


def simulate(iam: Any, role_arn: str, questions: Sequence[Question]) -> dict[Question, Answer]:
    """Ask IAM's policy simulator every question of one role, one call per resource and context."""
    grouped: dict[tuple[str, tuple[tuple[str, str], ...]], list[Question]] = defaultdict(list)
    for question in questions:
        grouped[(question.resource, question.context)].append(question)
    answers: dict[Question, Answer] = {}
    for (resource, context), asked in grouped.items():
        by_action = {question.action: question for question in asked}
        pages = iam.get_paginator("simulate_principal_policy").paginate(
            PolicySourceArn=role_arn,
            ActionNames=sorted(by_action),
            ResourceArns=[resource],
            ContextEntries=_context_entries(context),
        )
        for page in pages:
            for result in page.get("EvaluationResults", []):
                asked_for = by_action.get(str(result.get("EvalActionName")))
                if asked_for is None:
                    continue
                decision = str(result.get("EvalDecision"))
                statements = result.get("MatchedStatements") or []
                # With ResourceArns, AWS may answer per resource as well: that answer is the resource's.
                for specific in result.get("ResourceSpecificResults") or []:
                    if specific.get("EvalResourceName") == resource:
                        decision = str(specific.get("EvalResourceDecision", decision))
                        statements = specific.get("MatchedStatements") or statements
                answers[asked_for] = Answer(
                    decision,
                    tuple(str(s.get("SourcePolicyId", "")) for s in statements),
                    tuple(str(key) for key in result.get("MissingContextValues") or []),
                )
    return answers


def _session(role_arn: str) -> Caller:
    # A role acts through a session: resource policies see arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION.
    parts = role_arn.split(":")
    name = role_arn.rsplit("/", 1)[-1]
    return Caller(arn=f"arn:{parts[1]}:sts::{parts[4]}:assumed-role/{name}/cpexport-verify", account_id=parts[4])


@dataclass
class Policies:
    """The resource policies the roles' calls also meet: key policies and the bucket policy."""

    keys: dict[str, str | None]
    bucket: str | None


def _refusal(question: Question, answer: Answer | None, role_arn: str, policies: Policies) -> str | None:
    """Why the role's real call would be refused (None: it would not)."""
    if answer is None:
        return "the simulator gave no answer"
    if answer.decision != "allowed":
        reason = (
            f"explicitly denied by {', '.join(answer.matched)}"
            if answer.decision == "explicitDeny"
            else "no statement of the role's policies allows it"
        )
        if answer.missing:
            reason += f" (condition keys not met: {', '.join(answer.missing)})"
        return f"{answer.decision}: {reason}"
    request = Request(question.action, question.resource, dict(question.context))
    caller = _session(role_arn)
    if question.action.startswith("kms:") and question.resource in policies.keys:
        key_policy = policies.keys[question.resource]
        decided = evaluate_resource_policy(key_policy, request, caller)
        if decided is Decision.DENY:
            return "explicitly denied by the key policy"
        if decided is not Decision.ALLOW and not delegates_to_account(key_policy, request, caller):
            return "the key policy neither names the role nor lets this account's IAM policies grant it"
    if (
        question.action.startswith("s3:")
        and evaluate_resource_policy(policies.bucket, request, caller) is Decision.DENY
    ):
        return "explicitly denied by the bucket policy"
    return None


def role_step(
    role: str, role_arn: str, questions: Sequence[Question], answers: Mapping[Question, Answer], policies: Policies
) -> Step:
    """The role's verdict: every question allowed, or each refusal with the action and the resource."""
    refused, first = [], ""
    for question in questions:
        reason = _refusal(question, answers.get(question), role_arn, policies)
        if reason is not None:
            refused.append(f"{question.action} on {question.resource}: {reason} [{question.why}]")
            first = first or f"{question.action} on {question.resource}"
    name = f"permissions {role}"
    services = sorted({question.action.split(":", 1)[0] for question in questions})
    if not refused:
        return Step(name, Verdict.OK, f"{len(questions)} action(s) allowed ({', '.join(services)})")
    return Step(
        name,
        Verdict.FAIL,
        f"{len(refused)} of {len(questions)} action(s) refused: {first}" + (", ..." if len(refused) > 1 else ""),
        fix=f"grant {role} what template.yaml grants it (redeploy with sam deploy; was a policy edited by hand?)"
        if not any("key policy" in line or "bucket policy" in line for line in refused)
        else "the resource policy named must let the role in (README: Deploying, bring your own bucket or key)",
        details=refused,
    )


def _service_context(resources: StackResources, scope: Scope, account: str) -> dict[str, str]:
    found, _ = resources.found(scope)
    source = (
        found.arn
        if found is not None and account == resources.account
        else f"arn:{resources.partition}:app-integrations:{resources.region}:{account}:data-integration/verify"
    )
    return {"aws:SourceAccount": account, "aws:SourceArn": source, **_EVERY_CALL}


def service_bucket_step(resources: StackResources, bucket_policy: str | None, scope: Scope) -> Step:
    """Whether the bucket policy lets AppIntegrations write this account's exports, and no other account's."""
    name = "service: bucket policy"
    bucket = resources.bucket
    fix = (
        f"put the statement 'Allow AppIntegrations to write data to destination bucket' in {bucket}'s policy, "
        "with its aws:SourceAccount and aws:SourceArn conditions (README: Deploying)"
    )
    if not bucket_policy:
        return Step(name, Verdict.FAIL, f"bucket {bucket} has no policy: {SERVICE_PRINCIPAL} cannot write", fix)
    caller = Caller(service=SERVICE_PRINCIPAL)
    bucket_arn, file_arn = resources.arns(table.EXPORT_BUCKET, scope)[0], resources.arns(table.EXPORT_FILE, scope)[0]
    # ListBucket is authorized on the bucket, the object actions on the file the job writes.
    targets = {action: bucket_arn if action == "s3:ListBucket" else file_arn for action in SERVICE_BUCKET_ACTIONS}
    ours = _service_context(resources, scope, resources.account)
    refused = [
        f"{action} on {resource}"
        for action, resource in targets.items()
        if evaluate_resource_policy(bucket_policy, Request(action, resource, ours), caller) is not Decision.ALLOW
    ]
    if refused:
        return Step(
            name,
            Verdict.FAIL,
            f"{bucket}'s policy does not let {SERVICE_PRINCIPAL} {refused[0]}: the export job would fail",
            fix,
            [f"refused: {item}" for item in refused],
        )
    theirs = _service_context(resources, scope, FOREIGN_ACCOUNT)
    open_to_all = [
        action
        for action, resource in targets.items()
        if evaluate_resource_policy(bucket_policy, Request(action, resource, theirs), caller) is Decision.ALLOW
    ]
    if open_to_all:
        return Step(
            name,
            Verdict.FAIL,
            f"finding: {bucket}'s policy lets {SERVICE_PRINCIPAL} {', '.join(open_to_all)} for any account's "
            "data integration (no aws:SourceAccount/aws:SourceArn condition)",
            fix,
            [f"allowed with aws:SourceAccount {FOREIGN_ACCOUNT}: {action}" for action in open_to_all],
        )
    return Step(name, Verdict.OK, f"{SERVICE_PRINCIPAL} may write {bucket}, only for this account's data integrations")


def service_key_step(resources: StackResources, key_policy: str | None, scope: Scope) -> Step:
    """Whether the key policy lets AppIntegrations encrypt the files it writes with the export key."""
    name = "service: key policy"
    key = resources.export_key
    fix = (
        f"add {SERVICE_PRINCIPAL} to the key policy statement 'Enable AppIntegrations access to KMS key' "
        "(README: Deploying)"
    )
    context = _service_context(resources, scope, resources.account)
    caller = Caller(service=SERVICE_PRINCIPAL)
    refused = [
        action
        for action in SERVICE_KEY_ACTIONS
        if evaluate_resource_policy(key_policy, Request(action, key, context), caller) is not Decision.ALLOW
    ]
    if refused:
        return Step(
            name,
            Verdict.FAIL,
            f"the export key's policy does not let {SERVICE_PRINCIPAL} {', '.join(refused)}: "
            "the export job would fail writing its first file",
            fix,
            [f"refused: {action} on {key}" for action in refused],
        )
    return Step(name, Verdict.OK, f"{SERVICE_PRINCIPAL} may encrypt and decrypt with the export key")


# ------------------------------------------------------------------------------------ the export
@dataclass(frozen=True)
class Target:
    """What the verification exports: one domain, one object type, one window."""

    domain_name: str
    object_type: str
    window: ExportWindow
    watermark: datetime | None


def choose_target(
    deployment: Deployment, state: StateTable, domain: str | None, object_type: str | None, minutes: int, now: datetime
) -> Target:
    """The default window: `minutes` ending a little before the watermark (already exported), never past what
    an export is sure to include; the first configured domain and `_profile` unless told otherwise."""
    domains, types = deployment.domain_names, deployment.object_types
    domain = domain or (domains[0] if domains else "")
    if object_type is None:
        object_type = DEFAULT_OBJECT_TYPE if DEFAULT_OBJECT_TYPE in types else (types[0] if types else "")
    for given, configured, option in ((domain, domains, "--domain"), (object_type, types, "--type")):
        if given not in configured:
            raise InvalidInput(
                f"{option} {given}: not configured in stack {deployment.stack_name} "
                f"(configured: {', '.join(configured) or 'none'})"
            )
    settings = deployment.settings()
    watermark = state.get_watermark(domain, object_type)
    end = latest_safe_end(now, settings.safety_lag_minutes)
    if watermark is not None and watermark < end:
        end = watermark
    end = end.replace(second=0, microsecond=0) - BEFORE_WATERMARK
    return Target(domain, object_type, ExportWindow(start=end - timedelta(minutes=minutes), end=end), watermark)


def verification_request(target: Target, name: str) -> dict[str, Any]:
    """The state machine input: a backfill of the target window, marked as a verification."""
    return {
        "domainName": target.domain_name,
        "objectTypes": [target.object_type],
        "startTime": render_utc(target.window.start),
        "endTime": render_utc(target.window.end),
        "correlationId": name,
        "verification": True,
    }


class ExportChecks:
    """The steps after the execution: each reads what AWS holds now."""

    def __init__(
        self,
        deployment: Deployment,
        connection: Connection,
        appintegrations: AppIntegrations,
        state: StateTable,
        target: Target,
    ) -> None:
        self.deployment = deployment
        self.connection = connection
        self.appintegrations = appintegrations
        self.state = state
        self.target = target
        self.settings = deployment.settings()

    def run(self, story: ExecutionStory) -> list[Step]:
        export = story.exports.get((self.target.domain_name, self.target.object_type))
        steps = [self.execution(story, export)]
        result = export.result if export is not None else None
        succeeded = story.status == "SUCCEEDED" and result is not None and result.get("status") == "SUCCEEDED"
        checks: list[tuple[str, Callable[[], Step]]] = [
            ("data integration", lambda: self.data_integration(export)),
            ("job", lambda: self.job(export)),
        ]
        if succeeded:
            assert result is not None
            checks += [
                ("files", lambda: self.files(result)),
                ("manifest", lambda: self.manifest(result)),
                ("partition", lambda: self.partition(result)),
            ]
        else:
            steps += [
                Step(name, Verdict.SKIPPED, "not checked: the export did not succeed")
                for name in ("files", "manifest", "partition")
            ]
        checks += [
            ("notification", lambda: self.notification(story)),
            ("result event", lambda: self.result_event(story)),
            ("watermark and lease", lambda: self.watermark_and_lease(story)),
        ]
        for name, check in checks:
            try:
                steps.append(check())
            except (ClientError, BotoCoreError, ExportError) as exc:
                steps.append(Step(name, Verdict.FAIL, f"could not check: {_error(exc)}", _READ_FIX))
        return _ordered(steps)

    def execution(self, story: ExecutionStory, export: ExportStory | None) -> Step:
        result = (export.result if export is not None else None) or {}
        window = (export.window if export is not None else None) or self.target.window.to_wire()
        where = f"{self.target.domain_name}/{self.target.object_type} {window.get('start')}..{window.get('end')}"
        if story.status == "SUCCEEDED" and result.get("status") == "SUCCEEDED":
            return Step(
                "export",
                Verdict.OK,
                f"execution {story.name} SUCCEEDED: {where}, {result.get('files', 0)} file(s), "
                f"{result.get('records', 0)} record(s)",
            )
        reason = result.get("message") or (story.failure or {}).get("cause") or (export.last_error if export else None)
        return Step(
            "export",
            Verdict.FAIL,
            f"execution {story.name} {story.status}: {where}: {result.get('status') or 'no result'}"
            + (f": {reason}" if reason else ""),
            f"cpexport explain {story.name} tells each step; fix the reason, then run cpexport verify again",
        )

    def data_integration(self, export: ExportStory | None) -> Step:
        name = (export.data_integration_name if export else None) or data_integration_name(
            self.deployment.stack_name, self.target.domain_name, self.target.object_type
        )
        found = self.appintegrations.get_data_integration(name)
        if found is None:
            return Step(
                "data integration",
                Verdict.FAIL,
                f"{name} does not exist: StartExport never created it",
                "read StartExport's error in cpexport explain (AppIntegrations quota, permissions)",
            )
        problems = []
        if found.domain_names != (self.target.domain_name,) or found.object_types != (self.target.object_type,):
            problems.append(f"exports {found.domain_names}/{found.object_types}")
        if found.kms_key != self.settings.kms_key_arn:
            problems.append(f"uses key {found.kms_key}, not the stack's {self.settings.kms_key_arn}")
        association = self.appintegrations.find_association(found)
        destination = f"s3://{self.settings.export_bucket_name}" + (
            f"/{self.settings.export_prefix.strip('/')}" if self.settings.export_prefix.strip("/") else ""
        )
        if association is None:
            problems.append("has no association")
        elif (association.destination_uri or "").rstrip("/") != destination:
            problems.append(f"its association writes to {association.destination_uri}, not {destination}")
        if problems:
            return Step(
                "data integration",
                Verdict.FAIL,
                f"{name} {'; '.join(problems)}",
                "a data integration of this name that exports something else is never reused: remove it "
                "(it cannot be deleted once associated: use another stack name)",
            )
        return Step(
            "data integration",
            Verdict.OK,
            f"{name}: {self.target.domain_name}/{self.target.object_type} with the stack's key, "
            f"association to {destination}",
        )

    def job(self, export: ExportStory | None) -> Step:
        window = (export.window if export else None) or self.target.window.to_wire()
        name = (export.data_integration_name if export else None) or data_integration_name(
            self.deployment.stack_name, self.target.domain_name, self.target.object_type
        )
        found = self.appintegrations.get_data_integration(name)
        association = self.appintegrations.find_association(found) if found is not None else None
        shown = association.window.to_wire() if association and association.window else None
        if association is not None and shown == window:
            if association.status == "COMPLETED":
                return Step(
                    "job",
                    Verdict.OK,
                    f"ListDataIntegrationAssociations shows the job of {window['start']}..{window['end']} COMPLETED",
                )
            return Step(
                "job",
                Verdict.FAIL,
                f"ListDataIntegrationAssociations shows the job {association.status}: "
                f"{association.status_message or 'no message'}",
                "the service's message says why; for access errors see the service steps above",
            )
        exported = ExportWindow.model_validate(window)
        ledger = self.state.get_job(self.target.domain_name, self.target.object_type, exported)
        recorded = ledger.state.value if ledger is not None else "no ledger item"
        if association is not None and ledger is not None and ledger.state.value == "COMPLETED":
            return Step(
                "job",
                Verdict.WARN,
                f"the service now shows a later job ({shown}); the pipeline recorded this one COMPLETED",
            )
        return Step(
            "job",
            Verdict.FAIL,
            f"the service does not show the job of {window.get('start')}..{window.get('end')} "
            f"(it shows {shown or 'no job'}; the ledger says {recorded})",
            "cpexport status shows the object type's job and lease",
        )

    def _files(self, result: Mapping[str, Any]) -> list[str]:
        s3 = self.connection.client("s3")
        keys: list[str] = []
        for partition in result.get("partitions") or []:
            location = str(partition.get("location", ""))
            prefix = location.split("/", 3)[3] if location.startswith("s3://") else location
            for page in s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.settings.export_bucket_name, Prefix=prefix
            ):
                keys.extend(str(item["Key"]) for item in page.get("Contents", []))
        return keys

    def _encryption_problem(self, key: str) -> str | None:
        head = self.connection.client("s3").head_object(Bucket=self.settings.export_bucket_name, Key=key)
        algorithm = head.get("ServerSideEncryption")
        used = str(head.get("SSEKMSKeyId") or "")
        if algorithm != "aws:kms":
            return f"{key}: {algorithm or 'no'} encryption, not aws:kms"
        if not _same_key(used, self.settings.kms_key_arn):
            return f"{key}: encrypted with {used}, not the stack's key {self.settings.kms_key_arn}"
        return None

    def files(self, result: Mapping[str, Any]) -> Step:
        keys = self._files(result)
        if not keys:
            return Step(
                "files",
                Verdict.WARN,
                "the window held no updated object: no file to check the encryption of",
                "run cpexport verify --minutes N with a window that holds objects (the manifest is still checked)",
            )
        problems = [problem for key in keys[:HEAD_LIMIT] if (problem := self._encryption_problem(key))]
        if problems:
            return Step(
                "files",
                Verdict.FAIL,
                f"{len(problems)} of {min(len(keys), HEAD_LIMIT)} file(s) not SSE-KMS with the stack's key",
                "the bucket's default encryption must be SSE-KMS with the export key (cpexport doctor)",
                problems,
            )
        checked = f"{min(len(keys), HEAD_LIMIT)} checked" if len(keys) > HEAD_LIMIT else "each checked"
        return Step("files", Verdict.OK, f"{len(keys)} file(s) in S3, SSE-KMS with the stack's key ({checked})")

    def manifest(self, result: Mapping[str, Any]) -> Step:
        summary_key = str(result.get("manifestKey") or "")
        if not summary_key:
            return Step("manifest", Verdict.FAIL, "the result names no manifest", _READ_FIX)
        s3 = self.connection.client("s3")
        bucket = self.settings.export_bucket_name
        summary = json.loads(s3.get_object(Bucket=bucket, Key=summary_key)["Body"].read())
        listed = []
        for line in s3.get_object(Bucket=bucket, Key=summary["fileList"])["Body"].iter_lines():
            if line.strip():
                listed.append(str(json.loads(line)["key"]))
        problems = []
        actual = sorted(self._files(result))
        if sorted(listed) != actual:
            problems.append(f"lists {len(listed)} file(s), the folder holds {len(actual)}")
        if summary.get("fileCount") != len(listed):
            problems.append(f"says fileCount {summary.get('fileCount')}, lists {len(listed)}")
        if summary.get("backfill") is not True:
            problems.append("is not marked as a backfill (the verification's export must not move a watermark)")
        for key in (summary_key, summary["fileList"]):
            encrypted = self._encryption_problem(key)
            if encrypted:
                problems.append(encrypted)
        if problems:
            return Step(
                "manifest",
                Verdict.FAIL,
                f"s3://{bucket}/{summary_key} {problems[0]}",
                "the Index function writes it: its log has the execution ARN",
                problems,
            )
        return Step(
            "manifest",
            Verdict.OK,
            f"s3://{bucket}/{summary_key} lists the {len(listed)} file(s), SSE-KMS with the stack's key",
        )

    def partition(self, result: Mapping[str, Any]) -> Step:
        partitions = result.get("partitions") or []
        if not partitions:
            return Step("partition", Verdict.FAIL, "the result names no Glue partition", _READ_FIX)
        glue = self.connection.client("glue")
        database, name = str(result.get("database")), str(result.get("table"))
        problems = []
        for partition in partitions:
            try:
                found = glue.get_partition(DatabaseName=database, TableName=name, PartitionValues=partition["values"])
            except ClientError as exc:
                problems.append(f"{partition['name']}: {_error(exc)}")
                continue
            location = found["Partition"].get("StorageDescriptor", {}).get("Location")
            if location != partition["location"]:
                problems.append(f"{partition['name']} points at {location}, not {partition['location']}")
        if problems:
            return Step(
                "partition",
                Verdict.FAIL,
                f"{database}.{name}: {problems[0]}",
                "the Index function registers it (glue:CreatePartition on the stack's *_versions tables)",
                problems,
            )
        return Step("partition", Verdict.OK, f"{database}.{name}: {partitions[0]['name']}")

    def notification(self, story: ExecutionStory) -> Step:
        verdict = story.verdict or {}
        topic = self.deployment.outputs.get("NotificationTopicArn", "")
        if verdict.get("messageId"):
            return Step(
                "notification",
                Verdict.OK,
                f"SNS took message {verdict['messageId']} on {topic} ('{verdict.get('subject')}'; "
                "read from the Notify step's output: SNS messages cannot be read back)",
            )
        return Step(
            "notification",
            Verdict.FAIL,
            "no notification was published (the Notify step returned no MessageId)",
            f"cpexport explain {story.name}; the Notify function's log says why",
        )

    def result_event(self, story: ExecutionStory) -> Step:
        verdict = story.verdict or {}
        bus = self.settings.event_bus_name
        if "events" not in verdict:
            return Step(
                "result event",
                Verdict.FAIL,
                "the Notify step does not say what EventBridge took",
                "deploy this version of the template (sam build && sam deploy): its Notify reports it",
            )
        sent, refused = int(verdict.get("events") or 0), int(verdict.get("eventsFailed") or 0)
        if sent and not refused:
            return Step(
                "result event",
                Verdict.OK,
                f'EventBridge took {sent} result event(s) on bus {bus} ("verification": true; read from the '
                "Notify step's output: events cannot be read back)",
            )
        return Step(
            "result event",
            Verdict.FAIL,
            f"EventBridge took {sent - refused} of {sent} result event(s) on bus {bus}",
            "the Notify function's log has the events and the error (ResultEventsFailedAlarm counts them)",
        )

    def watermark_and_lease(self, story: ExecutionStory) -> Step:
        domain, object_type = self.target.domain_name, self.target.object_type
        watermark = self.state.get_watermark(domain, object_type)
        lease = self.state.get_lease(domain, object_type)
        problems = []
        if watermark != self.target.watermark:
            problems.append(
                f"the watermark moved from {_when(self.target.watermark)} to {_when(watermark)} (another export?)"
            )
        if lease is not None and lease.execution_arn == story.execution_arn:
            problems.append(f"the verification still holds the lease of {domain}/{object_type}")
        if problems:
            return Step(
                "watermark and lease",
                Verdict.FAIL,
                "; ".join(problems),
                f"cpexport status; cpexport release-lease --domain {domain} --type {object_type} once its job ended",
            )
        stayed = f"the watermark stayed at {_when(watermark)}" if watermark else "no watermark yet, and none was set"
        return Step("watermark and lease", Verdict.OK, f"{stayed}; the verification holds no lease")


_READ_FIX = "check the caller's permissions (docs/cli.md, verify) and run cpexport verify again"


def _when(moment: datetime | None) -> str:
    return render_utc(moment) if moment else "unset"


def _same_key(used: str, expected: str) -> bool:
    return bool(used) and (used == expected or used.rsplit("/", 1)[-1] == expected.rsplit("/", 1)[-1])


_ORDER = ("export", "data integration", "job", "files", "manifest", "partition", "notification", "result event")


def _ordered(steps: list[Step]) -> list[Step]:
    rank = {name: index for index, name in enumerate(_ORDER)}
    return sorted(steps, key=lambda step: rank.get(step.name, len(_ORDER)))


def not_started(reason: str) -> list[Step]:
    """The export's steps when the export was not started."""
    names = ("export", *_ORDER[1:], "watermark and lease")
    return [Step(name, Verdict.SKIPPED, reason) for name in names]


def worst(steps: Iterable[Step]) -> Verdict:
    return max((step.verdict for step in steps), default=Verdict.OK)


def _policy(read: Callable[[], Any], missing_code: str) -> str | None:
    try:
        return _document(read())
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == missing_code:
            return None
        raise


def _key_policy(kms: Any, key: str) -> str | None:
    return _document(kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"])


def permission_steps(resources: StackResources, connection: Connection, scope: Scope) -> list[Step]:
    """Every role simulated against every call of the table, then the service's own access to bucket and key."""
    iam, s3, kms = (connection.client(name) for name in ("iam", "s3", "kms"))
    try:
        bucket_policy = _policy(lambda: s3.get_bucket_policy(Bucket=resources.bucket)["Policy"], "NoSuchBucketPolicy")
        keys = [key for key in (resources.export_key, resources.notification_key) if key]
        key_policies = {key: _key_policy(kms, key) for key in keys}
    except (ClientError, BotoCoreError) as exc:
        return [
            Step("permissions", Verdict.FAIL, f"could not read the bucket and key policies: {_error(exc)}", _READ_FIX)
        ]
    policies = Policies(keys=key_policies, bucket=bucket_policy)
    steps = []
    for role, arn in resources.role_arns().items():
        questions = questions_of(role, resources)
        try:
            answers = simulate(iam, arn, questions)
        except (ClientError, BotoCoreError) as exc:
            steps.append(
                Step(
                    f"permissions {role}",
                    Verdict.FAIL,
                    f"could not simulate {arn}: {_error(exc)}",
                    "the caller needs iam:SimulatePrincipalPolicy on the stack's roles (docs/cli.md, verify)",
                )
            )
            continue
        steps.append(role_step(role, arn, questions, answers, policies))
    for role in resources.unknown_roles():
        steps.append(
            Step(
                f"permissions {role}",
                Verdict.WARN,
                "a role of the stack that cli/cpexport_cli/permissions.py does not know: nothing simulated",
                "add what it calls to ROLE_CALLS (this cpexport may be older than the deployed template)",
            )
        )
    steps.append(service_bucket_step(resources, bucket_policy, scope))
    steps.append(service_key_step(resources, key_policies.get(resources.export_key), scope))
    return steps
