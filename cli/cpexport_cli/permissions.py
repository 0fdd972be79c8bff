"""What the stack's roles call, and how IAM authorizes each call: one table for the offline stack and `verify`.

Three declarations, read by two users:

- `OPERATIONS`: each API operation the pipeline's code calls (`cpexport.clients`, Powertools'
  idempotency) or a service calls as one of the stack's roles (Step Functions, Athena, the
  Scheduler), and the IAM action(s) it is authorized as: `ListObjectsV2` is `s3:ListBucket`,
  `Invoke` is `lambda:InvokeFunction`, a multipart upload's parts are `s3:PutObject`.
- `DEPENDENT_ACTIONS`: for an IAM action, what AWS also checks *for the caller* on another resource,
  with the condition keys that check carries: an SSE-KMS `s3:PutObject` needs `kms:GenerateDataKey`
  via S3; `CreateDataIntegration` needs `profile:GetDomain` and `kms:CreateGrant` for an AWS resource.
- `ROLE_CALLS`: for each IAM role of template.yaml (its logical id), each operation it makes, on
  which of the stack's resources, and why.

The offline stack authorizes every request with the first two (`local/iam/operations.py`, the
AppIntegrations emulator), so a row that is wrong fails offline first; `cpexport verify` simulates
every row of the third, dependent actions included, against the deployed roles
(`iam:SimulatePrincipalPolicy`). `tests/cli/test_permissions_table.py` fails when a client calls an
operation without a row, or when the template grants a role an action no row of it explains.

Resources are named, not spelled as ARNs: the offline stack knows them from the request, `verify`
from the deployed stack (`cpexport_cli.verify.StackResources`). A name is a template logical id
where one exists (`StateTable`), else what it stands for (`ExportBucket/manifest`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

# --------------------------------------------------------------------------- resources, by name
ANY = "*"  # actions without resource-level permissions
STATE_TABLE = "StateTable"
IDEMPOTENCY_TABLE = "IdempotencyTable"
EXPORT_BUCKET = "ExportBucket"
EXPORT_FILE = "ExportBucket/export-file"  # a file the service wrote: {prefix}/{account}/{domain}/...
MANIFEST = "ExportBucket/manifest"  # {objectType}.manifest.json / .jsonl beside an export folder
MANIFEST_PART = "ExportBucket/manifest-part"  # a Distributed Map child's part: {objectType}.manifest.parts/...
CURRENT_STATE_FILE = "ExportBucket/current-state"  # a current-state (Iceberg) table's file
QUERY_RESULT = "ExportBucket/athena-results"  # an Athena result of the stack's workgroup
EXPORT_KEY = "ExportKey"
NOTIFICATION_TOPIC = "NotificationTopic"
NOTIFICATION_KEY = "NotificationKey"  # the notification topic's KMS key
EVENT_BUS = "EventBus"  # the bus of result events (Output EventBusName)
GLUE_CATALOG = "GlueCatalog"
GLUE_DATABASE = "GlueDatabase"
VERSIONS_TABLE = "GlueDatabase/versions-table"  # an object type's `*_versions` table
CATALOG_TABLE = "GlueDatabase/table"  # any table or view of the stack's database
ALL_TABLES = "GlueDatabase/*"  # every table (GetTables)
WORKGROUP = "AthenaWorkGroup"
EXPORT_STATE_MACHINE = "ExportStateMachine"
MAINTENANCE_STATE_MACHINE = "MaintenanceStateMachine"
SCHEDULE_DEAD_LETTER_QUEUE = "ScheduleDeadLetterQueue"
DATA_INTEGRATION = "DataIntegration"  # the domain x object type's data integration
NEW_DATA_INTEGRATION = "DataIntegration/new"  # one not created yet: IAM sees `data-integration/*`
ASSOCIATION = "DataIntegration/association"
# Resources of dependent actions, known only from the request being authorized.
OBJECT_KEY = "ObjectKey"  # the KMS key an S3 object is (to be) encrypted with; none: no check
TOPIC_KEY = "TopicKey"  # the KMS key of an encrypted topic; none: no check
REQUESTED_KEY = "RequestedKey"  # the KmsKey CreateDataIntegration names
DOMAIN = "Domain"  # arn:aws:profile:{region}:{account}:domains/{domain}
OBJECT_TYPE = "Domain/object-type"  # .../domains/{domain}/object-types/{objectType}

FUNCTIONS = (
    "PlanFunction",
    "StartExportFunction",
    "CheckExportFunction",
    "IndexExportFunction",
    "CountRecordsFunction",
    "RecordFailureFunction",
    "NotifyFunction",
)


# --------------------------------------------------------------------------- operations
@dataclass(frozen=True)
class Operation:
    """One API operation (`service` is the IAM prefix) and the IAM action(s) it is authorized as."""

    service: str
    name: str
    authorized_as: tuple[str, ...] = ()

    @property
    def actions(self) -> tuple[str, ...]:
        """The IAM actions: `service:Name` unless the operation is authorized as something else."""
        return self.authorized_as or (f"{self.service}:{self.name}",)


def _operations(service: str, *names: str, authorized_as: tuple[str, ...] = ()) -> list[Operation]:
    return [Operation(service, name, authorized_as) for name in names]


OPERATIONS: dict[tuple[str, str], Operation] = {
    (operation.service, operation.name): operation
    for operation in [
        *_operations("dynamodb", "GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query"),
        *_operations("s3", "GetObject", "PutObject", "DeleteObject", "AbortMultipartUpload", "GetBucketLocation"),
        *_operations("s3", "ListObjectsV2", "HeadBucket", authorized_as=("s3:ListBucket",)),
        *_operations("s3", "HeadObject", authorized_as=("s3:GetObject",)),
        # The parts of a multipart upload are authorized as the object's PutObject.
        *_operations(
            "s3", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload", authorized_as=("s3:PutObject",)
        ),
        *_operations(
            "app-integrations",
            "GetDataIntegration",
            "CreateDataIntegration",
            "ListDataIntegrations",
            "CreateDataIntegrationAssociation",
            "UpdateDataIntegrationAssociation",
            "ListDataIntegrationAssociations",
        ),
        *_operations(
            "glue",
            "GetDatabase",
            "GetTable",
            "GetTables",
            "CreateTable",
            "UpdateTable",
            "CreatePartition",
            "GetPartition",
            "GetPartitions",
            "BatchDeletePartition",
        ),
        *_operations("athena", "StartQueryExecution", "GetQueryExecution", "GetQueryResults", "StopQueryExecution"),
        *_operations("sns", "Publish"),
        *_operations("events", "PutEvents"),
        *_operations("states", "StartExecution"),
        *_operations("lambda", "Invoke", authorized_as=("lambda:InvokeFunction",)),
        # A chat channel (Amazon Q Developer in chat applications) shows an alarm's state and graph.
        *_operations("cloudwatch", "DescribeAlarms", "GetMetricData", "GetMetricWidgetImage", "ListMetrics"),
        *_operations("sqs", "SendMessage"),
        *_operations("sqs", "SendMessageBatch", authorized_as=("sqs:SendMessage",)),
        # Step Functions delivers an execution log through these, as the state machine's role.
        *_operations(
            "logs",
            "CreateLogDelivery",
            "GetLogDelivery",
            "UpdateLogDelivery",
            "DeleteLogDelivery",
            "ListLogDeliveries",
            "PutResourcePolicy",
            "DescribeResourcePolicies",
            "DescribeLogGroups",
        ),
    ]
}


def iam_actions(service: str, operation: str) -> tuple[str, ...]:
    """The IAM actions of an operation (`service` is the IAM prefix); `service:Operation` when no row differs."""
    row = OPERATIONS.get((service, operation))
    return row.actions if row is not None else (f"{service}:{operation}",)


# --------------------------------------------------------------------------- dependent actions
@dataclass(frozen=True)
class Dependent:
    """An action AWS checks for the caller on another resource when the caller does `DEPENDENT_ACTIONS`' key.

    `via` is the service that acts (its `kms:ViaService` is `{via}.{region}.amazonaws.com`);
    `context` the other condition keys the check carries.
    """

    action: str
    resource: str
    via: str | None = None
    context: Mapping[str, str] = field(default_factory=dict)

    def condition_keys(self, region: str) -> dict[str, str]:
        """The condition keys of the check in `region`."""
        keys = dict(self.context)
        if self.via:
            keys["kms:ViaService"] = f"{self.via}.{region}.amazonaws.com"
        return keys


_SNAPSHOT = (Dependent("profile:CreateSnapshot", DOMAIN), Dependent("profile:GetSnapshot", DOMAIN))

DEPENDENT_ACTIONS: dict[str, tuple[Dependent, ...]] = {
    # SSE-KMS objects (none: no check): S3 uses the key on the caller's behalf.
    "s3:PutObject": (Dependent("kms:GenerateDataKey", OBJECT_KEY, via="s3"),),
    "s3:GetObject": (Dependent("kms:Decrypt", OBJECT_KEY, via="s3"),),
    # An encrypted topic: SNS encrypts the message with the topic's key for the publisher.
    "sns:Publish": (
        Dependent("kms:GenerateDataKey", TOPIC_KEY, via="sns"),
        Dependent("kms:Decrypt", TOPIC_KEY, via="sns"),
    ),
    # AppIntegrations acts with the caller's identity (the Service Authorization Reference's dependent
    # actions): it reads the domain, takes a grant on the key for itself, and snapshots the domain per job.
    "app-integrations:CreateDataIntegration": (
        Dependent("profile:GetDomain", DOMAIN),
        Dependent("profile:GetProfileObjectType", OBJECT_TYPE),
        Dependent(
            "kms:CreateGrant", REQUESTED_KEY, via="app-integrations", context={"kms:GrantIsForAWSResource": "true"}
        ),
    ),
    "app-integrations:CreateDataIntegrationAssociation": _SNAPSHOT,
    "app-integrations:UpdateDataIntegrationAssociation": _SNAPSHOT,
}


def dependents(action: str) -> tuple[Dependent, ...]:
    """The dependent actions of an IAM action (none for most)."""
    return DEPENDENT_ACTIONS.get(action, ())


# --------------------------------------------------------------------------- who calls what
@dataclass(frozen=True)
class Call:
    """One operation a role makes on named resources (see the names above), and why."""

    service: str
    operation: str
    resources: tuple[str, ...]
    why: str

    @property
    def actions(self) -> tuple[str, ...]:
        return iam_actions(self.service, self.operation)


def _calls(service: str, operations: str, resources: str | tuple[str, ...], why: str) -> list[Call]:
    names = (resources,) if isinstance(resources, str) else resources
    return [Call(service, operation, names, why) for operation in operations.split()]


_GLUE_TABLE = (GLUE_CATALOG, GLUE_DATABASE, CATALOG_TABLE)  # Glue authorizes catalog, database and table
_GLUE_VERSIONS = (GLUE_CATALOG, GLUE_DATABASE, VERSIONS_TABLE)
_LOG_DELIVERY = (
    "CreateLogDelivery GetLogDelivery UpdateLogDelivery DeleteLogDelivery ListLogDeliveries "
    "PutResourcePolicy DescribeResourcePolicies DescribeLogGroups"
)
# Athena runs a state machine's queries as its role: the catalog, the files it reads and writes, the key.
_ATHENA_AS_THE_ROLE = [
    *_calls("athena", "StartQueryExecution GetQueryExecution StopQueryExecution", WORKGROUP, "athena .sync task"),
    *_calls("s3", "ListObjectsV2 GetBucketLocation", EXPORT_BUCKET, "Athena lists table folders and its results"),
    *_calls(
        "s3",
        "GetObject PutObject DeleteObject AbortMultipartUpload",
        (CURRENT_STATE_FILE, QUERY_RESULT),
        "Athena rewrites the current-state tables and writes query results",
    ),
]

ROLE_CALLS: dict[str, list[Call]] = {
    "PlanFunctionRole": [
        *_calls("dynamodb", "GetItem", STATE_TABLE, "reads each object type's watermark"),
        *_calls("glue", "GetTable CreateTable UpdateTable", _GLUE_TABLE, "makes the tables and views ready"),
    ],
    "StartExportFunctionRole": [
        *_calls(
            "dynamodb",
            "GetItem PutItem UpdateItem DeleteItem Query",
            STATE_TABLE,
            "watermark, lease and job ledger; recent job durations",
        ),
        *_calls("dynamodb", "GetItem PutItem UpdateItem DeleteItem", IDEMPOTENCY_TABLE, "Powertools idempotency"),
        *_calls("app-integrations", "GetDataIntegration", DATA_INTEGRATION, "finds the data integration"),
        *_calls("app-integrations", "CreateDataIntegration", NEW_DATA_INTEGRATION, "creates it, once per object type"),
        *_calls(
            "app-integrations", "CreateDataIntegrationAssociation", DATA_INTEGRATION, "starts the first export job"
        ),
        *_calls("app-integrations", "UpdateDataIntegrationAssociation", ASSOCIATION, "starts every later job"),
        *_calls("app-integrations", "ListDataIntegrationAssociations", ANY, "adopts a job already running"),
    ],
    "CheckExportFunctionRole": [
        *_calls("app-integrations", "ListDataIntegrationAssociations", ANY, "reads the last job's status"),
    ],
    "IndexExportFunctionRole": [
        *_calls(
            "dynamodb",
            "GetItem PutItem UpdateItem DeleteItem",
            STATE_TABLE,
            "run record, watermark, ledger, lease",
        ),
        *_calls("s3", "ListObjectsV2", EXPORT_BUCKET, "lists the job's files"),
        *_calls("s3", "GetObject", (EXPORT_FILE, MANIFEST_PART), "counts records; reads manifest parts"),
        *_calls(
            "s3",
            "PutObject CreateMultipartUpload UploadPart CompleteMultipartUpload AbortMultipartUpload",
            MANIFEST,
            "writes the manifest (multipart once large)",
        ),
        *_calls("glue", "GetTable CreatePartition GetPartition", _GLUE_VERSIONS, "registers the export's partition"),
    ],
    "CountRecordsFunctionRole": [
        *_calls("s3", "GetObject", EXPORT_FILE, "counts a batch's records"),
        *_calls("s3", "PutObject", MANIFEST_PART, "writes its manifest part"),
    ],
    "RecordFailureFunctionRole": [
        *_calls(
            "dynamodb", "GetItem PutItem UpdateItem DeleteItem", STATE_TABLE, "run record, ledger, lease, watermark"
        ),
    ],
    "NotifyFunctionRole": [
        *_calls("sns", "Publish", NOTIFICATION_TOPIC, "one message per execution"),
        *_calls("events", "PutEvents", EVENT_BUS, "one result event per export"),
        *_calls("dynamodb", "GetItem PutItem UpdateItem DeleteItem", IDEMPOTENCY_TABLE, "Powertools idempotency"),
    ],
    "ExpireRawPartitionsFunctionRole": [
        *_calls("glue", "GetTable GetPartitions BatchDeletePartition", _GLUE_VERSIONS, "drops expired partitions"),
    ],
    "ExpireRawPartitionsFunctionDailyRole": [
        *_calls("lambda", "Invoke", "ExpireRawPartitionsFunction", "the daily schedule runs the job"),
        *_calls("sqs", "SendMessage", SCHEDULE_DEAD_LETTER_QUEUE, "dead-letters a tick it could not deliver"),
    ],
    "ExportStateMachineRole": [
        *_calls("lambda", "Invoke", FUNCTIONS, "the state machine's Lambda tasks"),
        *_calls("states", "StartExecution", EXPORT_STATE_MACHINE, "the Distributed Map starts its children"),
        *_calls("s3", "ListObjectsV2", EXPORT_BUCKET, "the Distributed Map's ItemReader lists the job's folder"),
        *_ATHENA_AS_THE_ROLE,
        *_calls(
            "glue",
            "GetDatabase GetTable GetPartitions CreateTable UpdateTable",
            _GLUE_TABLE,
            "Athena merges into the current-state tables",
        ),
        *_calls("s3", "GetObject", EXPORT_FILE, "Athena reads the raw exports"),
        *_calls("logs", _LOG_DELIVERY, ANY, "Step Functions delivers the execution log"),
    ],
    "ExportStateMachineScheduleRole": [
        *_calls("states", "StartExecution", EXPORT_STATE_MACHINE, "the nightly tick"),
        *_calls("sqs", "SendMessage", SCHEDULE_DEAD_LETTER_QUEUE, "dead-letters a tick it could not deliver"),
    ],
    "ExportStateMachineReconcileRole": [
        *_calls("states", "StartExecution", EXPORT_STATE_MACHINE, "the reconcile tick"),
        *_calls("sqs", "SendMessage", SCHEDULE_DEAD_LETTER_QUEUE, "dead-letters a tick it could not deliver"),
    ],
    "ExportStateMachineExportRequestedRole": [
        *_calls("states", "StartExecution", EXPORT_STATE_MACHINE, "an export request from another system"),
    ],
    "MaintenanceStateMachineRole": [
        *_calls("glue", "GetTables", (GLUE_CATALOG, GLUE_DATABASE, ALL_TABLES), "lists the current-state tables"),
        *_ATHENA_AS_THE_ROLE,
        *_calls(
            "glue",
            "GetDatabase GetTable UpdateTable GetPartitions",
            _GLUE_TABLE,
            "Athena compacts and vacuums the tables",
        ),
        *_calls("sns", "Publish", NOTIFICATION_TOPIC, "alerts when a table still fails"),
        *_calls("logs", _LOG_DELIVERY, ANY, "Step Functions delivers the execution log"),
    ],
    "ChatChannelRole": [
        *_calls(
            "cloudwatch",
            "DescribeAlarms GetMetricData GetMetricWidgetImage ListMetrics",
            ANY,
            "the chat channel shows an alarm's state and graph",
        ),
    ],
    "MaintenanceStateMachineScheduleRole": [
        *_calls("states", "StartExecution", MAINTENANCE_STATE_MACHINE, "the weekly tick"),
        *_calls("sqs", "SendMessage", SCHEDULE_DEAD_LETTER_QUEUE, "dead-letters a tick it could not deliver"),
    ],
}


__all__ = [
    "DEPENDENT_ACTIONS",
    "OPERATIONS",
    "ROLE_CALLS",
    "Call",
    "Dependent",
    "Operation",
    "dependents",
    "iam_actions",
]
