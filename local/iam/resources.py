"""What moto's in-process backends know about resources that authorization depends on.

Resource policies (bucket, queue, topic, key, function), KMS key lookup (ARN, id or alias), the
encryption of buckets, objects and topics. Read directly from moto's backends: the evaluation runs
inside moto's request handling, so an HTTP call back into the server would deadlock or recurse.
"""

from __future__ import annotations

import json
from typing import Any

from moto.athena.models import athena_backends
from moto.awslambda.models import lambda_backends
from moto.kms.models import kms_backends
from moto.s3.models import s3_backends
from moto.sns.models import sns_backends
from moto.sqs.models import sqs_backends

PARTITION = "aws"


class ResourceDirectory:
    """Look-ups of one account and Region in moto's backends; None where a resource does not exist."""

    def __init__(self, account_id: str, region: str) -> None:
        self.account_id = account_id
        self.region = region

    # ------------------------------------------------------------------ Athena
    def query_workgroup(self, query_execution_id: str) -> str | None:
        """The workgroup a query execution ran in (GetQueryExecution/Results are authorized on it)."""
        execution = athena_backends[self.account_id][self.region].executions.get(query_execution_id)
        workgroup = getattr(execution, "workgroup", None) if execution is not None else None
        return str(workgroup.name) if workgroup is not None else ("primary" if execution is not None else None)

    # ------------------------------------------------------------------ KMS
    def key_arn(self, key_id: str) -> str | None:
        """The ARN of a KMS key given as ARN, id, alias name or alias ARN."""
        backend = kms_backends[self.account_id][self.region]
        try:
            resolved = backend.any_id_to_key_id(key_id)
            key = backend.describe_key(resolved)
        except Exception:
            return None
        return str(key.arn)

    def key_policy(self, key_arn: str) -> str | None:
        """The key policy document of a KMS key."""
        backend = kms_backends[self.account_id][self.region]
        try:
            policy = backend.describe_key(key_arn.rsplit("/", 1)[-1]).policy
        except Exception:
            return None
        return _text(policy)

    # ------------------------------------------------------------------ S3
    def _bucket(self, name: str) -> Any:
        try:
            return s3_backends[self.account_id][PARTITION].get_bucket(name)
        except Exception:
            return None

    def bucket_policy(self, name: str) -> str | None:
        """The bucket policy document, if any."""
        bucket = self._bucket(name)
        if bucket is None or not bucket.policy:
            return None
        return _text(bucket.policy)

    def bucket_default_kms_key(self, name: str) -> str | None:
        """The KMS key of the bucket's default encryption (SSE-KMS), if that is its default."""
        bucket = self._bucket(name)
        if bucket is None or not bucket.encryption:
            return None
        for rule in _as_list(bucket.encryption.get("Rule")):
            default = rule.get("ApplyServerSideEncryptionByDefault") or {}
            if default.get("SSEAlgorithm") == "aws:kms":
                key = default.get("KMSMasterKeyID")
                return str(key) if key else "alias/aws/s3"
        return None

    def object_kms_key(self, bucket_name: str, key_name: str) -> str | None:
        """The KMS key an existing object is encrypted with (SSE-KMS), if any."""
        bucket = self._bucket(bucket_name)
        if bucket is None:
            return None
        stored = bucket.keys.get(key_name)
        if stored is None or stored.encryption != "aws:kms":
            return None
        return str(stored.kms_key_id) if stored.kms_key_id else "alias/aws/s3"

    # ------------------------------------------------------------------ SQS / SNS / Lambda
    def queue_policy(self, queue_arn: str) -> str | None:
        """The queue policy document of a queue, by ARN."""
        name = queue_arn.rsplit(":", 1)[-1]
        queue = sqs_backends[self.account_id][self.region].queues.get(name)
        return _text(queue.policy) if queue is not None and queue.policy else None

    def queue_exists(self, queue_arn: str) -> bool:
        """Whether the queue exists."""
        return queue_arn.rsplit(":", 1)[-1] in sqs_backends[self.account_id][self.region].queues

    def topic_policy(self, topic_arn: str) -> str | None:
        """The access policy of an SNS topic."""
        topic = sns_backends[self.account_id][self.region].topics.get(topic_arn)
        return _text(topic.policy) if topic is not None else None

    def topic_kms_key(self, topic_arn: str) -> str | None:
        """The KmsMasterKeyId of an SNS topic (server-side encryption), if set."""
        topic = sns_backends[self.account_id][self.region].topics.get(topic_arn)
        if topic is None or not topic.kms_master_key_id:
            return None
        return str(topic.kms_master_key_id)

    def function_policy(self, function_arn: str) -> str | None:
        """The resource-based policy of a Lambda function, if any."""
        try:
            function = lambda_backends[self.account_id][self.region].get_function(function_arn)
            policy = function.policy.get_policy() if function.policy else None
        except Exception:
            return None
        return _text(policy) if policy else None


def _text(document: Any) -> str:
    # moto keeps policies as JSON text, bytes or parsed dicts, depending on how they were set.
    if isinstance(document, bytes):
        return document.decode()
    return document if isinstance(document, str) else json.dumps(document)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]
