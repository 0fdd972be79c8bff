"""`python -m local serve` on the real template: a plain boto3 script exports through the printed endpoints."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime

import boto3
import pytest

from tests.e2e_local.conftest import ROOT

pytestmark = pytest.mark.e2e
CREDENTIALS = {"region_name": "us-east-1", "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@pytest.fixture(scope="module")
def served():
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "local", "serve", "--param", "DomainNames=plain-domain", "--time-scale", "0.01"],
        cwd=ROOT,
        env=env | {"PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'layers' / 'common'}"},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        yield json.loads(line)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def test_serve_prints_one_line_with_the_outputs_and_both_endpoints(served):
    for name in ("StateMachineArn", "ExportBucketName", "NotificationTopicArn", "StateTableName"):
        assert served[name]
    assert served["Endpoint"].startswith("http://127.0.0.1:")
    assert served["AppIntegrationsEndpoint"].startswith("http://127.0.0.1:")


def test_a_plain_boto3_script_exports_and_reads_the_files(served):
    appintegrations = boto3.client("appintegrations", endpoint_url=served["AppIntegrationsEndpoint"], **CREDENTIALS)
    s3 = boto3.client("s3", endpoint_url=served["Endpoint"], **CREDENTIALS)
    start = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp() * 1000)
    objects = [{"id": f"p-{n}", "lastUpdated": start + n * 60_000, "FirstName": f"N{n}"} for n in range(12)]
    seed = urllib.request.Request(
        served["AppIntegrationsEndpoint"] + "/_emulator/objects",
        data=json.dumps({"domainName": "plain-domain", "objectType": "_profile", "objects": objects}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(seed, timeout=10).read()

    created = appintegrations.create_data_integration(
        Name="plain-script",
        KmsKey=served["ExportKeyArn"],
        SourceURI="AmazonConnect://AppIntegrations",
        ObjectConfiguration={"CustomerProfiles": {"domainName": ["plain-domain"], "objectType": ["_profile"]}},
    )
    appintegrations.create_data_integration_association(
        DataIntegrationIdentifier=created["Arn"],
        DestinationURI=f"s3://{served['ExportBucketName']}/script",
        ExecutionConfiguration={
            "ExecutionMode": "ON_DEMAND",
            "OnDemandConfiguration": {"StartTime": str(start), "EndTime": str(start + 86_400_000)},
        },
    )
    for _ in range(200):
        (summary,) = appintegrations.list_data_integration_associations(DataIntegrationIdentifier="plain-script")[
            "DataIntegrationAssociations"
        ]
        if summary["LastExecutionStatus"]["ExecutionStatus"] != "IN_PROGRESS":
            break
        time.sleep(0.05)
    assert summary["LastExecutionStatus"]["ExecutionStatus"] == "COMPLETED"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=served["ExportBucketName"], Prefix="script/")["Contents"]]
    assert all(key.split("/")[1:3] == ["123456789012", "plain-domain"] for key in keys)
    lines = [
        json.loads(line)
        for key in keys
        for line in s3.get_object(Bucket=served["ExportBucketName"], Key=key)["Body"].read().decode().splitlines()
    ]
    assert sorted(record["id"] for record in lines) == sorted(o["id"] for o in objects)


def test_the_served_stack_exports_a_seeded_domain_and_the_next_run_only_what_changed(served):
    """From outside the server process: seed, run two scheduled days, read manifests and watermarks."""
    sfn = boto3.client("stepfunctions", endpoint_url=served["Endpoint"], **CREDENTIALS)
    s3 = boto3.client("s3", endpoint_url=served["Endpoint"], **CREDENTIALS)
    ddb = boto3.client("dynamodb", endpoint_url=served["Endpoint"], **CREDENTIALS)
    day = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp() * 1000)
    hour = 3_600_000

    def seed(objects):
        body = {"domainName": "plain-domain", "objectType": "_profile", "objects": objects}
        urllib.request.urlopen(
            urllib.request.Request(
                served["AppIntegrationsEndpoint"] + "/_emulator/objects",
                data=json.dumps(body).encode(),
                headers={"Content-Type": "application/json"},
                method="POST",
            ),
            timeout=10,
        ).read()

    def scheduled_run(name, scheduled_time):
        arn = sfn.start_execution(
            stateMachineArn=served["StateMachineArn"], name=name, input=json.dumps({"scheduledTime": scheduled_time})
        )["executionArn"]
        for _ in range(1200):
            described = sfn.describe_execution(executionArn=arn)
            if described["status"] != "RUNNING":
                return described
            time.sleep(0.05)
        raise AssertionError(f"{name} still running")

    def run_index():
        items = ddb.query(
            TableName=served["StateTableName"],
            KeyConditionExpression="pk = :pk AND begins_with(sk, :run)",
            ExpressionAttributeValues={":pk": {"S": "EXPORT#plain-domain#_profile"}, ":run": {"S": "RUN#"}},
        )["Items"]
        return [{k: next(iter(v.values())) for k, v in item.items()} for item in items]

    def lines(key):
        body = s3.get_object(Bucket=served["ExportBucketName"], Key=key)["Body"].read()
        return [json.loads(line) for line in body.splitlines() if line.strip()]

    def exported(manifest_key):
        manifest = json.loads(s3.get_object(Bucket=served["ExportBucketName"], Key=manifest_key)["Body"].read())
        return sorted(record["id"] for file in lines(manifest["fileList"]) for record in lines(file["key"]))

    first_batch = [{"id": f"a-{n}", "lastUpdated": day + n * 60_000} for n in range(40)]
    seed(first_batch)
    assert scheduled_run("day-1", "2026-11-02T00:00:00Z")["status"] == "SUCCEEDED"
    changed = [{"id": f"a-{n}", "lastUpdated": day + 30 * hour + n} for n in range(5)]
    new = [{"id": f"b-{n}", "lastUpdated": day + 40 * hour + n} for n in range(7)]
    seed(changed + new)
    assert scheduled_run("day-2", "2026-11-03T00:00:00Z")["status"] == "SUCCEEDED"

    first, second = sorted(run_index(), key=lambda run: run["windowStart"])
    # (the plain-script test of this module seeded this domain too: those objects come along)
    assert {o["id"] for o in first_batch} <= set(exported(first["manifestKey"]))
    assert second["windowStart"] == first["windowEnd"] == "2026-11-01T23:30:00Z"
    assert exported(second["manifestKey"]) == sorted(o["id"] for o in changed + new)
