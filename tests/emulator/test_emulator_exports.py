"""Export jobs: what lands in S3 (layout, content, encryption), when, and how jobs end."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.emulator import EmulatorControl, EmulatorServer
from local.emulator.layout import parse_export_key
from local.emulator.synthetic import generate
from tests.emulator.emulator_helpers import (
    ACCOUNT,
    CREDS,
    DAY_MS,
    DOMAIN,
    HOUR_MS,
    NO_RETRY,
    create_data_integration,
    create_export,
    last_status,
    list_keys,
    now_ms,
    on_demand,
    wait_status,
)

TS = r"(\d{8}T\d{6})"
UUID4 = r"([0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12})"
MINUTE_MS = 60_000


def utc(ms: int) -> str:
    """Independent rendering of the documented yyyyMMdd'T'HHmmss (UTC)."""
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(ms // 1000))


def read_jsonl(s3: Any, bucket: str, key: str) -> list[dict[str, Any]]:
    body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    text = body.decode("utf-8")
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_export_writes_the_window_as_json_lines_in_the_documented_layout(
    make_emulator: Callable[..., EmulatorServer], s3: Any, bucket: str, kms_key_arn: str, boto_session: Any
) -> None:
    # Given profiles updated over ten days, some before, inside and after a window, 10 records per file
    emu = make_emulator(records_per_file=10)
    ctl = EmulatorControl(emu.url)
    client = boto_session.client("appintegrations", endpoint_url=emu.url, config=NO_RETRY)
    base = now_ms() - 10 * DAY_MS
    start, end = base + 2 * DAY_MS, base + 8 * DAY_MS
    objects = generate("_profile", 60, base, base + 10 * DAY_MS, seed=7)
    objects.append({"id": "at-start", "lastUpdated": start, "FirstName": "Zoë", "LastName": "Ørsted"})
    objects.append({"id": "at-end", "lastUpdated": end, "FirstName": "Excluded"})
    ctl.seed(DOMAIN, "_profile", objects)
    expected = sorted(
        (o for o in objects if start <= o["lastUpdated"] < end), key=lambda o: (o["lastUpdated"], o["id"])
    )

    # When an export of [start, end) runs to completion
    before = now_ms()
    create_export(client, kms_key_arn, f"s3://{bucket}/exports/daily", execution=on_demand(start, end))
    after = now_ms()
    summary = wait_status(client, "di-profile")

    # Then the job COMPLETED and every key follows {prefix}/{account}/{domain}/{request}/{start}-{end}/{type}/{uuid}
    assert summary["LastExecutionStatus"] == {"ExecutionStatus": "COMPLETED"}
    keys = list_keys(s3, bucket)
    pattern = re.compile(rf"^exports/daily/{ACCOUNT}/{DOMAIN}/{TS}/{TS}-{TS}/_profile/{UUID4}$")
    for key in keys:
        found = pattern.match(key)
        assert found, key
        assert utc(before) <= found[1] <= utc(after)
        assert (found[2], found[3]) == (utc(start), utc(end))
        assert parse_export_key(key).file_id == found[4]

    # And the files, in write order, hold exactly the window's objects as seeded, sorted, 10 per file
    job = ctl.jobs()[0]
    assert sorted(job["files"]) == sorted(keys)
    chunks = [read_jsonl(s3, bucket, key) for key in job["files"]]
    assert [len(c) for c in chunks] == [10] * (len(expected) // 10) + (
        [len(expected) % 10] if len(expected) % 10 else []
    )
    assert [o for c in chunks for o in c] == expected
    assert job["records"] == len(expected)
    raw = s3.get_object(Bucket=bucket, Key=job["files"][0])["Body"].read()
    assert "Zoë".encode() in raw  # UTF-8 as is, not \\u escapes

    # And every file is encrypted with SSE-KMS under the data integration's key
    for key in keys:
        head = s3.head_object(Bucket=bucket, Key=key)
        assert head["ServerSideEncryption"] == "aws:kms"
        assert head["SSEKMSKeyId"] == kms_key_arn


def test_bucket_only_destination_has_no_prefix_segment(
    client: Any, ctl: EmulatorControl, s3: Any, bucket: str, kms_key_arn: str
) -> None:
    start = now_ms() - 3 * DAY_MS
    ctl.seed(DOMAIN, "_asset", generate("_asset", 3, start, start + DAY_MS, seed=1))
    create_export(
        client, kms_key_arn, f"s3://{bucket}", object_type="_asset", execution=on_demand(start, start + DAY_MS)
    )
    wait_status(client, "di-profile")
    keys = list_keys(s3, bucket)
    assert keys and all(k.startswith(f"{ACCOUNT}/{DOMAIN}/") for k in keys)
    assert all(parse_export_key(k).prefix == "" for k in keys)


def test_empty_selection_completes_without_files(
    client: Any, ctl: EmulatorControl, s3: Any, bucket: str, kms_key_arn: str
) -> None:
    # Given objects only outside the window
    start = now_ms() - 5 * DAY_MS
    ctl.seed(DOMAIN, "_profile", generate("_profile", 5, start - DAY_MS, start, seed=3))

    # When exporting the window
    create_export(client, kms_key_arn, f"s3://{bucket}/x", execution=on_demand(start, start + DAY_MS))

    # Then the job COMPLETES and writes nothing
    assert wait_status(client, "di-profile")["LastExecutionStatus"]["ExecutionStatus"] == "COMPLETED"
    assert list_keys(s3, bucket) == []


def test_recent_objects_within_the_lag_are_left_out(
    client: Any, ctl: EmulatorControl, s3: Any, bucket: str, kms_key_arn: str
) -> None:
    # Given objects updated 31 and 29 minutes ago (default lag: 30 minutes)
    now = now_ms()
    ctl.seed(
        DOMAIN,
        "_profile",
        [
            {"id": "old-enough", "lastUpdated": now - 31 * MINUTE_MS},
            {"id": "too-recent", "lastUpdated": now - 29 * MINUTE_MS},
        ],
    )

    # When exporting "until now" (no EndTime)
    create_export(client, kms_key_arn, f"s3://{bucket}", execution=on_demand(now - HOUR_MS))
    wait_status(client, "di-profile")

    # Then only the object older than the lag is exported, and the range ends at the request time
    (key,) = list_keys(s3, bucket)
    assert [o["id"] for o in read_jsonl(s3, bucket, key)] == ["old-enough"]
    parsed = parse_export_key(key)
    assert parsed.end_timestamp == parsed.request_timestamp
    assert ctl.jobs()[0]["endTimeMs"] == ctl.jobs()[0]["requestTimeMs"]


def test_files_appear_progressively_while_in_progress(
    make_emulator: Callable[..., EmulatorServer], s3: Any, bucket: str, kms_key_arn: str, boto_session: Any
) -> None:
    # Given a 0.5 s job writing one record per file, four files
    emu = make_emulator(job_duration_seconds=0.5, time_scale=1.0, records_per_file=1)
    ctl = EmulatorControl(emu.url)
    client = boto_session.client("appintegrations", endpoint_url=emu.url, config=NO_RETRY)
    start = now_ms() - 2 * DAY_MS
    ctl.seed(DOMAIN, "_profile", generate("_profile", 4, start, start + DAY_MS, seed=5))

    # When the export runs to completion
    create_export(client, kms_key_arn, f"s3://{bucket}", execution=on_demand(start, start + DAY_MS))
    assert wait_status(client, "di-profile")["LastExecutionStatus"] == {"ExecutionStatus": "COMPLETED"}

    # Then the four files were written one after another, each while the job was still IN_PROGRESS
    (job,) = ctl.jobs()
    written = job["fileWrittenTimesMs"]
    assert len(written) == 4 and written == sorted(written)
    assert job["requestTimeMs"] <= written[0] and written[-1] <= job["finishedTimeMs"]
    # spread over the job: the first no sooner than 1/5 of it, the last no sooner than 4/5
    assert written[0] - job["requestTimeMs"] >= 100 and written[-1] - job["requestTimeMs"] >= 400
    assert sorted(list_keys(s3, bucket)) == sorted(job["files"])


def test_missing_bucket_fails_the_job_with_a_message(client: Any, kms_key_arn: str) -> None:
    create_export(client, kms_key_arn, "s3://no-such-bucket-for-export", execution=on_demand(now_ms() - DAY_MS))
    summary = wait_status(client, "di-profile")
    status = summary["LastExecutionStatus"]
    assert status["ExecutionStatus"] == "FAILED"
    assert "no-such-bucket-for-export" in status["StatusMessage"]
    assert 1 <= len(status["StatusMessage"]) <= 255


def test_update_runs_the_next_incremental_job(
    client: Any, ctl: EmulatorControl, s3: Any, bucket: str, kms_key_arn: str
) -> None:
    # Given a completed first export of day 1 and objects in day 2
    day1 = now_ms() - 5 * DAY_MS
    day2 = day1 + DAY_MS
    ctl.seed(DOMAIN, "_profile", generate("_profile", 4, day1, day2 + DAY_MS, seed=11))
    export = create_export(client, kms_key_arn, f"s3://{bucket}/inc", execution=on_demand(day1, day2))
    wait_status(client, export.name)

    # When the association is updated with the next window
    client.update_data_integration_association(
        DataIntegrationIdentifier=export.name,
        DataIntegrationAssociationIdentifier=export.association_id,
        ExecutionConfiguration=on_demand(day2, day2 + DAY_MS),
    )

    # Then a new job runs and List shows its ExecutionConfiguration
    summary = last_status(client, export.name)
    assert summary["ExecutionConfiguration"] == on_demand(day2, day2 + DAY_MS)
    assert wait_status(client, export.name)["LastExecutionStatus"]["ExecutionStatus"] == "COMPLETED"
    jobs = ctl.jobs()
    assert [(j["startTimeMs"], j["endTimeMs"]) for j in jobs] == [(day1, day2), (day2, day2 + DAY_MS)]
    folders = {k.rsplit("/", 2)[0] for k in list_keys(s3, bucket)}
    assert {f.rsplit("/", 1)[1] for f in folders} <= {f"{utc(day1)}-{utc(day2)}", f"{utc(day2)}-{utc(day2 + DAY_MS)}"}


def test_twenty_concurrent_jobs_is_the_quota(
    make_emulator: Callable[..., EmulatorServer], bucket: str, kms_key_arn: str, boto_session: Any
) -> None:
    # Given the default quota (20) and one association whose updates start overlapping jobs
    # Jobs that never end by themselves: the 20 calls below land while all of them run, however loaded the machine.
    emu = make_emulator(never_ending_rate=1.0, update_while_in_progress="accept")
    ctl = EmulatorControl(emu.url)
    client = boto_session.client("appintegrations", endpoint_url=emu.url, config=NO_RETRY)
    window = on_demand(now_ms() - 2 * DAY_MS, now_ms() - DAY_MS)
    export = create_export(client, kms_key_arn, f"s3://{bucket}", execution=window)
    for _ in range(19):
        client.update_data_integration_association(
            DataIntegrationIdentifier=export.name,
            DataIntegrationAssociationIdentifier=export.association_id,
            ExecutionConfiguration=window,
        )
    assert sum(j["status"] == "IN_PROGRESS" for j in ctl.jobs()) == 20

    # When a 21st job is requested by Update or by a new association
    with pytest.raises(client.exceptions.ResourceQuotaExceededException, match="20"):
        client.update_data_integration_association(
            DataIntegrationIdentifier=export.name,
            DataIntegrationAssociationIdentifier=export.association_id,
            ExecutionConfiguration=window,
        )
    create_data_integration(client, kms_key_arn, name="di-asset", object_type="_asset")
    with pytest.raises(client.exceptions.ResourceQuotaExceededException):
        client.create_data_integration_association(
            DataIntegrationIdentifier="di-asset", DestinationURI=f"s3://{bucket}", ExecutionConfiguration=window
        )

    # Then nothing was associated (test_max_concurrent_jobs shows the quota freeing up as jobs end)
    assert (
        client.list_data_integration_associations(DataIntegrationIdentifier="di-asset")["DataIntegrationAssociations"]
        == []
    )


def test_jobs_write_to_in_process_moto_when_no_s3_endpoint_is_given(kms_key_arn: str) -> None:
    # Given moto's mock_aws in this process and an emulator with s3_endpoint_url=None
    with mock_aws():
        s3 = boto3.client("s3", **CREDS)
        s3.create_bucket(Bucket="in-process-bucket")
        emu = EmulatorServer(s3_endpoint_url=None).start()
        try:
            emu.configure(time_scale=0.05)
            start = now_ms() - 2 * DAY_MS
            EmulatorControl(emu.url).seed(DOMAIN, "_case", generate("_case", 3, start, start + DAY_MS, seed=2))
            client = boto3.client("appintegrations", endpoint_url=emu.url, config=NO_RETRY, **CREDS)

            # When an export runs
            create_export(
                client, kms_key_arn, "s3://in-process-bucket", object_type="_case", execution=on_demand(start)
            )
            summary = wait_status(client, "di-profile")

            # Then the files are in the mocked S3
            assert summary["LastExecutionStatus"]["ExecutionStatus"] == "COMPLETED"
            keys = list_keys(s3, "in-process-bucket")
            assert len(keys) == 1 and parse_export_key(keys[0]).object_type == "_case"
        finally:
            emu.stop()


def test_request_timestamp_is_utc(client: Any, ctl: EmulatorControl, bucket: str, kms_key_arn: str) -> None:
    start = now_ms() - 2 * DAY_MS
    ctl.seed(DOMAIN, "_profile", [{"id": "a", "lastUpdated": start}])
    create_export(client, kms_key_arn, f"s3://{bucket}", execution=on_demand(start, start + DAY_MS))
    wait_status(client, "di-profile")
    job = ctl.jobs()[0]
    request = datetime.fromtimestamp(job["requestTimeMs"] / 1000, tz=UTC).strftime("%Y%m%dT%H%M%S")
    assert parse_export_key(job["files"][0]).request_timestamp == request
