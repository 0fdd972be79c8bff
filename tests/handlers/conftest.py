"""Handlers against moto (in-process) and the AppIntegrations emulator: the real code, no stubs."""

from __future__ import annotations

import importlib.util
import json
import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from cpexport.catalog import database_name
from cpexport.clients import reset_clients
from cpexport.clients.glue import GlueCatalog
from cpexport.config import get_settings
from cpexport.planning import ensure_export_catalog
from moto import mock_aws

from local.emulator import EmulatorConfig, EmulatorControl, EmulatorServer

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
DOMAIN = "demo-domain"


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / f"{name}.json").read_text())


@dataclass
class FakeContext:
    """The parts of a Lambda context that Powertools and the handlers read."""

    function_name: str = "test-function"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def load_handler(function: str) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """Import functions/<function>/app.py under a name of its own (every handler module is app.py)."""
    path = ROOT / "functions" / function / "app.py"
    spec = importlib.util.spec_from_file_location(f"handler_{function}_{uuid.uuid4().hex}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    handler = module.lambda_handler

    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        return handler(json.loads(json.dumps(event)), FakeContext(function_name=function))

    return invoke


@dataclass
class Stack:
    bucket: str
    kms_key_arn: str
    state_table: str
    topic_arn: str
    notifications_queue_url: str
    events_queue_url: str
    emulator: EmulatorControl

    def messages(self, queue_url: str) -> list[dict[str, Any]]:
        sqs = boto3.client("sqs")
        received: list[dict[str, Any]] = []
        while True:
            batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                return received
            received += [json.loads(m["Body"]) for m in batch]

    def watermark(self, object_type: str, domain: str = DOMAIN) -> str | None:
        item = (
            boto3.client("dynamodb")
            .get_item(
                TableName=self.state_table,
                Key={"pk": {"S": f"EXPORT#{domain}#{object_type}"}, "sk": {"S": "WATERMARK"}},
            )
            .get("Item")
        )
        return item["watermark"]["S"] if item else None

    def runs(self, object_type: str, domain: str = DOMAIN) -> list[dict[str, Any]]:
        items = boto3.client("dynamodb").query(
            TableName=self.state_table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :run)",
            ExpressionAttributeValues={":pk": {"S": f"EXPORT#{domain}#{object_type}"}, ":run": {"S": "RUN#"}},
        )["Items"]
        return [{k: next(iter(v.values())) for k, v in item.items()} for item in items]

    def keys(self, prefix: str = "") -> list[str]:
        pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def read_json(self, key: str) -> Any:
        return json.loads(boto3.client("s3").get_object(Bucket=self.bucket, Key=key)["Body"].read())


def catalog_ready() -> dict[str, str]:
    """The tables and views of the configured object types, as Plan makes them ready (idempotent)."""
    return ensure_export_catalog(get_settings(), GlueCatalog())


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    logging.getLogger("moto").setLevel(logging.WARNING)
    with mock_aws():
        key_arn = boto3.client("kms").create_key()["KeyMetadata"]["Arn"]
        boto3.client("s3").create_bucket(Bucket="exports-bucket")
        dynamodb = boto3.client("dynamodb")
        dynamodb.create_table(
            TableName="state",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        )
        dynamodb.create_table(
            TableName="idempotency",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        )
        # The stack's Glue database, as template.yaml's GlueDatabase creates it
        boto3.client("glue").create_database(DatabaseInput={"Name": database_name("customer-profiles-export")})
        sqs, sns, events = boto3.client("sqs"), boto3.client("sns"), boto3.client("events")
        topic = sns.create_topic(Name="notifications")["TopicArn"]
        notifications = sqs.create_queue(QueueName="notifications")["QueueUrl"]
        sns.subscribe(
            TopicArn=topic,
            Protocol="sqs",
            Endpoint=sqs.get_queue_attributes(QueueUrl=notifications, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ],
        )
        results = sqs.create_queue(QueueName="result-events")["QueueUrl"]
        events.put_rule(Name="results", EventPattern=json.dumps({"source": ["customer-profiles-export"]}))
        events.put_targets(
            Rule="results",
            Targets=[
                {
                    "Id": "q",
                    "Arn": sqs.get_queue_attributes(QueueUrl=results, AttributeNames=["QueueArn"])["Attributes"][
                        "QueueArn"
                    ],
                }
            ],
        )
        server = EmulatorServer(
            host="127.0.0.1",
            port=0,
            s3_endpoint_url=None,
            region="us-east-1",
            account_id="123456789012",
            config=EmulatorConfig(job_duration_seconds=0.2, records_per_file=40),
        )
        server.start()
        env = {
            "AWS_ENDPOINT_URL_APPINTEGRATIONS": server.url,
            "STACK_NAME": "customer-profiles-export",
            "ACCOUNT_ID": "123456789012",
            "DOMAIN_NAMES": DOMAIN,
            "OBJECT_TYPES": "_profile,_order",
            "EXPORT_BUCKET_NAME": "exports-bucket",
            "EXPORT_PREFIX": "exports",
            "KMS_KEY_ARN": key_arn,
            "STATE_TABLE_NAME": "state",
            "IDEMPOTENCY_TABLE_NAME": "idempotency",
            "NOTIFICATION_TOPIC_ARN": topic,
            "INITIAL_START_TIME": "2026-11-01T00:00:00Z",
            "POWERTOOLS_SERVICE_NAME": "customer-profiles-export",
            "POWERTOOLS_METRICS_NAMESPACE": "CustomerProfilesExport",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "EXPORT_TIMEOUT_HOURS": "24",
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        reset_clients()
        catalog_ready()  # as an earlier execution's Plan left it
        try:
            yield Stack(
                bucket="exports-bucket",
                kms_key_arn=key_arn,
                state_table="state",
                topic_arn=topic,
                notifications_queue_url=notifications,
                events_queue_url=results,
                emulator=EmulatorControl(server.url),
            )
        finally:
            server.stop()
            get_settings.cache_clear()
            reset_clients()
