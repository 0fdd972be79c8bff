"""Constants and helpers shared by the emulator tests."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from botocore.config import Config

REGION = "us-east-1"
ACCOUNT = "123456789012"
DOMAIN = "test-domain"
SOURCE_URI = "AmazonConnect://AppIntegrations"
DAY_MS = 86_400_000
HOUR_MS = 3_600_000
CREDS: dict[str, Any] = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": REGION}
# One attempt: throttling and internal errors must surface, not be retried away by botocore.
NO_RETRY = Config(retries={"total_max_attempts": 1, "mode": "standard"})
# Fast by default: a 1 s job runs in 50 ms. Tests about timing set their own values.
FAST: dict[str, Any] = {"job_duration_seconds": 1.0, "time_scale": 0.05}


def now_ms() -> int:
    """Wall clock in epoch ms."""
    return int(time.time() * 1000)


def object_config(domain: str = DOMAIN, object_type: str = "_profile") -> dict[str, Any]:
    """The documented ObjectConfiguration for one domain and object type."""
    return {"CustomerProfiles": {"domainName": [domain], "objectType": [object_type]}}


def on_demand(start_ms: int, end_ms: int | None = None) -> dict[str, Any]:
    """An ON_DEMAND ExecutionConfiguration for [start_ms, end_ms)."""
    cfg: dict[str, Any] = {"StartTime": str(start_ms)}
    if end_ms is not None:
        cfg["EndTime"] = str(end_ms)
    return {"ExecutionMode": "ON_DEMAND", "OnDemandConfiguration": cfg}


@dataclass
class Export:
    """A data integration and its association, as created by ``create_export``."""

    name: str
    id: str
    arn: str
    association_id: str


def create_data_integration(
    client: Any, kms_key_arn: str, name: str = "di-profile", object_type: str = "_profile", **extra: Any
) -> dict[str, Any]:
    """Create a Customer Profiles export data integration."""
    response: dict[str, Any] = client.create_data_integration(
        Name=name,
        KmsKey=kms_key_arn,
        SourceURI=SOURCE_URI,
        ObjectConfiguration=object_config(object_type=object_type),
        **extra,
    )
    return response


def create_export(
    client: Any,
    kms_key_arn: str,
    destination: str,
    *,
    name: str = "di-profile",
    object_type: str = "_profile",
    execution: dict[str, Any] | None = None,
) -> Export:
    """Create a data integration and its association (starting a job when ``execution`` is given)."""
    di = create_data_integration(client, kms_key_arn, name=name, object_type=object_type)
    kwargs: dict[str, Any] = {"DataIntegrationIdentifier": name, "DestinationURI": destination}
    if execution is not None:
        kwargs["ExecutionConfiguration"] = execution
    assoc = client.create_data_integration_association(**kwargs)
    return Export(name=name, id=di["Id"], arn=di["Arn"], association_id=assoc["DataIntegrationAssociationId"])


def last_status(client: Any, identifier: str) -> dict[str, Any]:
    """The single association summary of a data integration."""
    summaries = client.list_data_integration_associations(DataIntegrationIdentifier=identifier)
    summary: dict[str, Any] = summaries["DataIntegrationAssociations"][0]
    return summary


def wait_status(client: Any, identifier: str, timeout: float = 10.0) -> dict[str, Any]:
    """Poll List until the last job leaves IN_PROGRESS; return the summary."""
    deadline = time.monotonic() + timeout
    while True:
        summary = last_status(client, identifier)
        if summary["LastExecutionStatus"]["ExecutionStatus"] != "IN_PROGRESS":
            return summary
        if time.monotonic() > deadline:
            raise TimeoutError(f"still IN_PROGRESS: {summary}")
        time.sleep(0.02)


def list_keys(s3: Any, bucket: str, prefix: str = "") -> list[str]:
    """Every key in a bucket (under ``prefix``)."""
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(o["Key"] for o in page.get("Contents", []))
    return keys
