"""Which resource ARN(s) AWS authorizes each API operation against, offline.

moto's own enforcement checks every non-S3 call against resource `*`, so a grant scoped to a table,
topic or queue ARN (what SAM policy templates produce) would never match. Here each operation the
offline stack's principals use names the real resource(s) AWS checks. *Which* IAM actions an
operation is authorized as, and the *dependent* actions AWS checks on other resources for the caller
(SSE-KMS on S3 and SNS) with their condition keys, come from the product's own table,
`cpexport_cli.permissions`, which `cpexport verify` simulates on AWS: the two cannot drift. An
operation missing here is denied for every principal but the administrator, loudly, so a new call
the pipeline makes is noticed offline instead of being allowed by accident.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from cpexport_cli import permissions

from local.iam.resources import ResourceDirectory


@dataclass(frozen=True)
class ApiCall:
    """A signed request as the authorizer sees it."""

    service: str  # the signing name from the credential scope: dynamodb, states, monitoring, s3 ...
    operation: str  # the API operation: PutItem, Invoke, Publish, PutObject ...
    params: Mapping[str, Any]  # request parameters (JSON body, query/form fields, flattened)
    path: str
    headers: Mapping[str, str]
    account_id: str
    region: str
    resource: str | None = None  # what moto already determined (S3 bucket/object ARN)
    body: bytes = b""  # the raw body (an invocation payload, an object's data)


@dataclass(frozen=True)
class Check:
    """One authorization the request needs: `action` on `resource`.

    `dependent` marks an action AWS checks on another service's resource on the caller's behalf
    (kms:GenerateDataKey for an SSE-KMS PutObject): denied, it fails the request with the calling
    service's error shape.
    """

    action: str
    resource: str
    dependent: bool = False
    context: Mapping[str, str] = field(default_factory=dict)


class UnmappedOperation(LookupError):
    """The table has no entry for an operation: who knows which resource AWS would check."""


Resolver = Callable[[ApiCall, ResourceDirectory], list[Check]]

# Signing names that differ from the IAM service prefix.
IAM_PREFIX = {"monitoring": "cloudwatch", "execute-api": "execute-api"}


def iam_prefix(signing_name: str) -> str:
    """The IAM action prefix of a signing name (monitoring -> cloudwatch)."""
    return IAM_PREFIX.get(signing_name, signing_name)


def _arn(call: ApiCall, service: str, resource: str, region: bool = True) -> str:
    return f"arn:aws:{service}:{call.region if region else ''}:{call.account_id}:{resource}"


def _action(call: ApiCall) -> str:
    """The IAM action of a call, as the product's table declares it (`service:Operation` by default)."""
    (action,) = permissions.iam_actions(iam_prefix(call.service), call.operation)
    return action


def _param(call: ApiCall, name: str) -> str:
    value = call.params.get(name)
    if value is None:
        raise UnmappedOperation(f"{call.service}:{call.operation} without {name}")
    return str(value)


# ---------------------------------------------------------------------------------- DynamoDB
def _table_arn(call: ApiCall, name: str) -> str:
    return name if name.startswith("arn:") else _arn(call, "dynamodb", f"table/{name}")


def _dynamodb_single(call: ApiCall, _: ResourceDirectory) -> list[Check]:
    resource = _table_arn(call, _param(call, "TableName"))
    if call.operation in ("Query", "Scan") and call.params.get("IndexName"):
        resource = f"{resource}/index/{call.params['IndexName']}"
    return [Check(_action(call), resource)]


def _dynamodb_batch(call: ApiCall, _: ResourceDirectory) -> list[Check]:
    items = call.params.get("RequestItems") or {}
    return [Check(_action(call), _table_arn(call, table)) for table in items]


_TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


def _dynamodb_transact_write(call: ApiCall, _: ResourceDirectory) -> list[Check]:
    checks = []
    for item in call.params.get("TransactItems") or []:
        for kind, body in item.items():
            checks.append(Check(f"dynamodb:{_TRANSACT_ACTIONS[kind]}", _table_arn(call, body["TableName"])))
    return checks


def _dynamodb_transact_get(call: ApiCall, _: ResourceDirectory) -> list[Check]:
    return [
        Check("dynamodb:GetItem", _table_arn(call, item["Get"]["TableName"]))
        for item in call.params.get("TransactItems") or []
    ]


# ---------------------------------------------------------------------------------- S3
# moto names most S3 requests by their IAM action (PutObject for a multipart upload's parts), some by
# API operation: those the pipeline makes are in the product's table, these others only offline.
_MOTO_S3_ACTIONS = {
    "ListObjects": "ListBucket",
    "ListObjectVersions": "ListBucketVersions",
    "ListBuckets": "ListAllMyBuckets",
    "ListMultipartUploads": "ListBucketMultipartUploads",
    "GetBucketCORS": "GetBucketCORS",
}


def _bucket_and_key(resource: str) -> tuple[str, str | None]:
    name = resource.split(":::", 1)[-1]
    bucket, _, key = name.partition("/")
    return bucket, (key or None)


def _s3(call: ApiCall, directory: ResourceDirectory) -> list[Check]:
    resource = call.resource or "arn:aws:s3:::*"
    action = f"s3:{_MOTO_S3_ACTIONS[call.operation]}" if call.operation in _MOTO_S3_ACTIONS else _action(call)
    checks = [Check(action, resource)]
    bucket, key = _bucket_and_key(resource)
    if key is None:
        return checks
    for dependent in permissions.dependents(action):
        kms_key = _object_kms_key(call, directory, action, bucket, unquote(key))
        if kms_key:
            arn = _key(directory, kms_key, call)
            checks.append(Check(dependent.action, arn, True, dependent.condition_keys(call.region)))
    return checks


def _object_kms_key(call: ApiCall, directory: ResourceDirectory, action: str, bucket: str, key: str) -> str | None:
    """The KMS key S3 uses for the caller (the dependents' `ObjectKey`): None when the object is not SSE-KMS."""
    if action == "s3:PutObject":
        if call.headers.get("x-amz-copy-source") is not None:
            return None  # a copy: S3 re-encrypts it server-side (not modelled)
        return _requested_s3_kms_key(call, directory, bucket)
    return directory.object_kms_key(bucket, key)


def _requested_s3_kms_key(call: ApiCall, directory: ResourceDirectory, bucket: str) -> str | None:
    headers = {k.lower(): v for k, v in call.headers.items()}
    algorithm = headers.get("x-amz-server-side-encryption")
    if algorithm == "aws:kms":
        return headers.get("x-amz-server-side-encryption-aws-kms-key-id") or "alias/aws/s3"
    if algorithm:
        return None
    return directory.bucket_default_kms_key(bucket)


def _key(directory: ResourceDirectory, key_id: str, call: ApiCall) -> str:
    arn = directory.key_arn(key_id)
    if arn is not None:
        return arn
    # An AWS managed key that does not exist yet (alias/aws/s3): AWS would create it on first use.
    return key_id if key_id.startswith("arn:") else _arn(call, "kms", key_id)


# ---------------------------------------------------------------------------------- SNS, SQS, events
def _sns_publish(call: ApiCall, directory: ResourceDirectory) -> list[Check]:
    topic = str(call.params.get("TopicArn") or call.params.get("TargetArn") or "")
    if not topic:
        raise UnmappedOperation("sns:Publish without TopicArn/TargetArn (SMS is not modelled)")
    checks = [Check("sns:Publish", topic)]
    kms_key = directory.topic_kms_key(topic)  # the dependents' `TopicKey`
    if kms_key:
        arn = _key(directory, kms_key, call)
        checks += [
            Check(dependent.action, arn, True, dependent.condition_keys(call.region))
            for dependent in permissions.dependents("sns:Publish")
        ]
    return checks


def _sns_topic(call: ApiCall, _: ResourceDirectory) -> list[Check]:
    return [Check(_action(call), _param(call, "TopicArn"))]


def _queue_arn(call: ApiCall, url: str) -> str:
    # http(s)://host/ACCOUNT/NAME -> arn:aws:sqs:REGION:ACCOUNT:NAME
    account, name = url.rstrip("/").split("/")[-2:]
    return f"arn:aws:sqs:{call.region}:{account}:{name}"


# Batches the pipeline never sends (SendMessageBatch is in the product's table).
_SQS_ACTIONS = {"DeleteMessageBatch": "DeleteMessage", "ChangeMessageVisibilityBatch": "ChangeMessageVisibility"}


def _sqs_queue(call: ApiCall, _: ResourceDirectory) -> list[Check]:
    action = f"sqs:{_SQS_ACTIONS[call.operation]}" if call.operation in _SQS_ACTIONS else _action(call)
    return [Check(action, _queue_arn(call, _param(call, "QueueUrl")))]


def _sqs_queue_by_name(call: ApiCall, _: ResourceDirectory) -> list[Check]:
    return [Check(_action(call), _arn(call, "sqs", _param(call, "QueueName")))]


def _bus_arn(call: ApiCall, bus: str | None) -> str:
    bus = bus or "default"
    return bus if bus.startswith("arn:") else _arn(call, "events", f"event-bus/{bus}")


def _events_put(call: ApiCall, _: ResourceDirectory) -> list[Check]:
    buses = {_bus_arn(call, entry.get("EventBusName")) for entry in call.params.get("Entries") or []}
    return [Check(_action(call), bus) for bus in sorted(buses)]


def _events_rule(call: ApiCall, _: ResourceDirectory) -> list[Check]:
    bus = call.params.get("EventBusName") or "default"
    rule = str(call.params.get("Name") or call.params.get("Rule") or "")
    name = bus.rsplit("/", 1)[-1]
    resource = f"rule/{rule}" if name == "default" else f"rule/{name}/{rule}"
    return [Check(_action(call), _arn(call, "events", resource))]


# ---------------------------------------------------------------------------------- Step Functions, Lambda
def _states(parameter: str) -> Resolver:
    def resolve(call: ApiCall, _: ResourceDirectory) -> list[Check]:
        return [Check(_action(call), _param(call, parameter))]

    return resolve


_FUNCTION_IN_PATH = re.compile(r"/functions/(?P<name>[^/]+)(?:/|$)")


def _function_arn(call: ApiCall) -> str:
    match = _FUNCTION_IN_PATH.search(call.path)
    if not match:
        raise UnmappedOperation(f"lambda:{call.operation}: no function in {call.path}")
    name = unquote(match.group("name"))
    qualifier = str(call.params.get("Qualifier") or "")
    if name.startswith("arn:"):
        return name
    if ":" in name:  # ACCOUNT:function:NAME or NAME:QUALIFIER
        parts = name.split(":")
        if len(parts) >= 3 and parts[1] == "function":
            return f"arn:aws:lambda:{call.region}:{name}"
        name, qualifier = parts[0], parts[1]
    arn = _arn(call, "lambda", f"function:{name}")
    return f"{arn}:{qualifier}" if qualifier else arn


def _lambda_function(call: ApiCall, _: ResourceDirectory) -> list[Check]:
    return [Check(_action(call), _function_arn(call))]


# ---------------------------------------------------------------------------------- KMS, STS, others
def _kms_key(call: ApiCall, directory: ResourceDirectory) -> list[Check]:
    return [Check(_action(call), _key(directory, _param(call, "KeyId"), call))]


def _any_resource(call: ApiCall, _: ResourceDirectory) -> list[Check]:
    # Actions that AWS authorizes only against "*" (no resource-level permissions).
    return [Check(_action(call), "*")]


def _assume_role(call: ApiCall, _: ResourceDirectory) -> list[Check]:
    return [Check("sts:AssumeRole", _param(call, "RoleArn"))]


def _simulated_principal(call: ApiCall, _: ResourceDirectory) -> list[Check]:
    # Authorized on the user or role whose policies are simulated (`cpexport verify` simulates the stack's roles).
    return [Check(_action(call), _param(call, "PolicySourceArn"))]


def _schedule(call: ApiCall, _: ResourceDirectory) -> list[Check]:
    match = re.search(r"/schedules/(?P<name>[^/?]+)", call.path)
    group = str(call.params.get("GroupName") or "default")
    name = unquote(match.group("name")) if match else "*"
    return [Check(_action(call), _arn(call, "scheduler", f"schedule/{group}/{name}"))]


def _log_group(call: ApiCall, _: ResourceDirectory) -> list[Check]:
    group = _param(call, "logGroupName")
    return [Check(_action(call), _arn(call, "logs", f"log-group:{group}:*"))]


# ---------------------------------------------------------------------------------- Glue, Athena
# Glue authorizes a call on the catalog, the database and the table(s) it touches, all three; names in
# ARNs are lower case, as Glue stores them (a grant naming `database/Foo` never matches).
def _glue_catalog(call: ApiCall) -> str:
    return _arn(call, "glue", "catalog")


def _glue_database_name(call: ApiCall) -> str:
    database_input = call.params.get("DatabaseInput")
    given = call.params.get("DatabaseName") or call.params.get("Name")
    if given is None and isinstance(database_input, Mapping):
        given = database_input.get("Name")
    return str(given or "").lower()


def _glue_database(call: ApiCall, _: ResourceDirectory) -> list[Check]:
    database = _glue_database_name(call)
    if not database:
        raise UnmappedOperation(f"glue:{call.operation} without a database name")
    action = _action(call)
    return [Check(action, _glue_catalog(call)), Check(action, _arn(call, "glue", f"database/{database}"))]


def _glue_table(call: ApiCall, _: ResourceDirectory) -> list[Check]:
    database = str(call.params.get("DatabaseName") or "").lower()
    table_input = call.params.get("TableInput")
    table = call.params.get("TableName") or call.params.get("Name")
    if table is None and isinstance(table_input, Mapping):
        table = table_input.get("Name")
    if not database or not table:
        raise UnmappedOperation(f"glue:{call.operation} without DatabaseName and a table name")
    action = _action(call)
    return [
        Check(action, _glue_catalog(call)),
        Check(action, _arn(call, "glue", f"database/{database}")),
        Check(action, _arn(call, "glue", f"table/{database}/{str(table).lower()}")),
    ]


def _glue_all_databases(call: ApiCall, _: ResourceDirectory) -> list[Check]:
    action = _action(call)
    return [Check(action, _glue_catalog(call)), Check(action, _arn(call, "glue", "database/*"))]


def _glue_all_tables(call: ApiCall, _: ResourceDirectory) -> list[Check]:
    # GetTables reads every table of the database: the grant must cover `table/DB/*`.
    database = _glue_database_name(call)
    if not database:
        raise UnmappedOperation(f"glue:{call.operation} without DatabaseName")
    action = _action(call)
    return [
        Check(action, _glue_catalog(call)),
        Check(action, _arn(call, "glue", f"database/{database}")),
        Check(action, _arn(call, "glue", f"table/{database}/*")),
    ]


def _athena_workgroup(call: ApiCall, _: ResourceDirectory) -> list[Check]:
    workgroup = str(call.params.get("WorkGroup") or call.params.get("Name") or "primary")
    return [Check(_action(call), _arn(call, "athena", f"workgroup/{workgroup}"))]


def _athena_query(call: ApiCall, directory: ResourceDirectory) -> list[Check]:
    # The request names only the query; AWS authorizes it on the workgroup the query ran in.
    execution_id = str(call.params.get("QueryExecutionId") or "")
    workgroup = directory.query_workgroup(execution_id) or "primary"
    return [Check(_action(call), _arn(call, "athena", f"workgroup/{workgroup}"))]


OPERATIONS: dict[tuple[str, str], Resolver] = {
    **{
        ("dynamodb", op): _dynamodb_single
        for op in (
            "GetItem",
            "PutItem",
            "UpdateItem",
            "DeleteItem",
            "Query",
            "Scan",
            "DescribeTable",
            "DescribeTimeToLive",
        )
    },
    ("dynamodb", "BatchWriteItem"): _dynamodb_batch,
    ("dynamodb", "BatchGetItem"): _dynamodb_batch,
    ("dynamodb", "TransactWriteItems"): _dynamodb_transact_write,
    ("dynamodb", "TransactGetItems"): _dynamodb_transact_get,
    ("dynamodb", "ListTables"): _any_resource,
    ("sns", "Publish"): _sns_publish,
    **{("sns", op): _sns_topic for op in ("GetTopicAttributes", "Subscribe", "ListSubscriptionsByTopic")},
    ("sns", "ListTopics"): _any_resource,
    **{
        ("sqs", op): _sqs_queue
        for op in (
            "SendMessage",
            "SendMessageBatch",
            "ReceiveMessage",
            "DeleteMessage",
            "DeleteMessageBatch",
            "ChangeMessageVisibility",
            "ChangeMessageVisibilityBatch",
            "GetQueueAttributes",
            "PurgeQueue",
        )
    },
    ("sqs", "GetQueueUrl"): _sqs_queue_by_name,
    ("sqs", "ListQueues"): _any_resource,
    ("events", "PutEvents"): _events_put,
    **{("events", op): _events_rule for op in ("DescribeRule", "ListTargetsByRule", "PutRule", "PutTargets")},
    ("events", "ListRules"): _any_resource,
    ("states", "StartExecution"): _states("stateMachineArn"),
    ("states", "StartSyncExecution"): _states("stateMachineArn"),
    ("states", "DescribeStateMachine"): _states("stateMachineArn"),
    ("states", "ListExecutions"): _states("stateMachineArn"),
    ("states", "DescribeExecution"): _states("executionArn"),
    ("states", "StopExecution"): _states("executionArn"),
    ("states", "GetExecutionHistory"): _states("executionArn"),
    ("states", "ListStateMachines"): _any_resource,
    **{("lambda", op): _lambda_function for op in ("Invoke", "InvokeAsync", "GetFunction", "GetFunctionConfiguration")},
    ("lambda", "ListFunctions"): _any_resource,
    **{
        ("kms", op): _kms_key
        for op in ("Encrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "DescribeKey", "CreateGrant")
    },
    ("sts", "AssumeRole"): _assume_role,
    ("iam", "SimulatePrincipalPolicy"): _simulated_principal,
    ("sts", "GetCallerIdentity"): _any_resource,
    ("monitoring", "PutMetricData"): _any_resource,
    ("monitoring", "GetMetricData"): _any_resource,
    ("monitoring", "DescribeAlarms"): _any_resource,
    ("xray", "PutTraceSegments"): _any_resource,
    ("xray", "PutTelemetryRecords"): _any_resource,
    **{("scheduler", op): _schedule for op in ("GetSchedule", "CreateSchedule", "UpdateSchedule", "DeleteSchedule")},
    ("scheduler", "ListSchedules"): _any_resource,
    **{("logs", op): _log_group for op in ("CreateLogStream", "PutLogEvents", "DescribeLogStreams")},
    ("logs", "CreateLogGroup"): _log_group,
    ("logs", "DescribeLogGroups"): _any_resource,
    **{("glue", op): _glue_database for op in ("GetDatabase", "CreateDatabase", "UpdateDatabase", "DeleteDatabase")},
    ("glue", "GetDatabases"): _glue_all_databases,
    **{
        ("glue", op): _glue_table
        for op in (
            "GetTable",
            "CreateTable",
            "UpdateTable",
            "DeleteTable",
            "CreatePartition",
            "GetPartition",
            "GetPartitions",
            "UpdatePartition",
            "DeletePartition",
            "BatchCreatePartition",
            "BatchGetPartition",
            "BatchDeletePartition",
        )
    },
    ("glue", "GetTables"): _glue_all_tables,
    **{
        ("athena", op): _athena_workgroup
        for op in (
            "CreateWorkGroup",
            "GetWorkGroup",
            "UpdateWorkGroup",
            "DeleteWorkGroup",
            "CreateNamedQuery",
            "ListNamedQueries",
            "StartQueryExecution",
        )
    },
    **{("athena", op): _athena_query for op in ("GetQueryExecution", "GetQueryResults", "StopQueryExecution")},
    ("athena", "ListWorkGroups"): _any_resource,
}


def checks_for(call: ApiCall, directory: ResourceDirectory) -> list[Check]:
    """Every authorization `call` needs; raises `UnmappedOperation` for an operation not in the table."""
    if call.service == "s3":
        return _s3(call, directory)
    resolver = OPERATIONS.get((call.service, call.operation))
    if resolver is None:
        raise UnmappedOperation(
            f"{call.service}:{call.operation} has no entry in local/iam/operations.py: add the resource "
            "ARN(s) AWS authorizes it against"
        )
    return resolver(call, directory)
