"""Each run-time knob, observed through boto3 and S3 only (set at construction or through the control API)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from local.emulator.layout import format_timestamp, parse_export_key
from local.emulator.synthetic import generate
from tests.emulator.emulator_helpers import (
    DAY_MS,
    DOMAIN,
    HOUR_MS,
    Export,
    create_data_integration,
    create_export,
    last_status,
    list_keys,
    now_ms,
    on_demand,
    wait_status,
)

MINUTE_MS = 60_000


NOW = now_ms()  # windows are whole days before this, so the same call gives the same window


def window(days_ago: int = 2) -> dict[str, Any]:
    start = NOW - days_ago * DAY_MS
    return on_demand(start, start + DAY_MS)


def update(client: Any, export: Export, execution: dict[str, Any]) -> None:
    client.update_data_integration_association(
        DataIntegrationIdentifier=export.name,
        DataIntegrationAssociationIdentifier=export.association_id,
        ExecutionConfiguration=execution,
    )


def test_job_duration_seconds_sets_how_long_a_job_runs(setup: Any, bucket: str, kms_key_arn: str) -> None:
    # Given 0.3 s jobs, except assets which take a minute (no time scaling)
    _, ctl, client = setup(job_duration_seconds=0.3, time_scale=1.0, job_duration_by_object_type={"_asset": 60.0})

    # When a profile job and an asset job start
    create_export(client, kms_key_arn, f"s3://{bucket}", execution=window())
    create_export(client, kms_key_arn, f"s3://{bucket}", name="di-asset", object_type="_asset", execution=window())

    # Then the minute-long job is IN_PROGRESS right after it started, and still is once the short one COMPLETED
    assert last_status(client, "di-asset")["LastExecutionStatus"]["ExecutionStatus"] == "IN_PROGRESS"
    assert wait_status(client, "di-profile")["LastExecutionStatus"]["ExecutionStatus"] == "COMPLETED"
    assert last_status(client, "di-asset")["LastExecutionStatus"]["ExecutionStatus"] == "IN_PROGRESS"

    # And the short job lasted at least its duration, as recorded
    profile, asset = ctl.jobs()
    assert (profile["durationSeconds"], asset["durationSeconds"]) == (0.3, 60.0)
    assert profile["finishedTimeMs"] - profile["requestTimeMs"] >= 300


def test_job_duration_by_object_type_overrides_the_default(setup: Any, bucket: str, kms_key_arn: str) -> None:
    # Given assets take 0.05 s and profiles a minute
    _, ctl, client = setup(job_duration_seconds=60.0, time_scale=1.0, job_duration_by_object_type={"_asset": 0.05})

    # When both export
    create_export(client, kms_key_arn, f"s3://{bucket}", execution=window())
    create_export(client, kms_key_arn, f"s3://{bucket}", name="di-asset", object_type="_asset", execution=window())

    # Then the asset job completes while the profile job still runs
    assert wait_status(client, "di-asset")["LastExecutionStatus"]["ExecutionStatus"] == "COMPLETED"
    assert last_status(client, "di-profile")["LastExecutionStatus"]["ExecutionStatus"] == "IN_PROGRESS"
    assert {j["objectType"]: j["durationSeconds"] for j in ctl.jobs()} == {"_profile": 60.0, "_asset": 0.05}


def test_update_while_in_progress_reject(setup: Any, bucket: str, kms_key_arn: str) -> None:
    # Given a running job (it never ends by itself) and the default policy "reject"
    _, ctl, client = setup(never_ending_rate=1.0)
    export = create_export(client, kms_key_arn, f"s3://{bucket}", execution=window(3))

    # When updating, Then InvalidRequestException, and no second job
    with pytest.raises(client.exceptions.InvalidRequestException, match="IN_PROGRESS"):
        update(client, export, window(2))
    assert len(ctl.jobs()) == 1


def test_update_while_in_progress_accept(setup: Any, bucket: str, kms_key_arn: str) -> None:
    # Given a running job and the policy "accept", with a quota of two jobs
    _, ctl, client = setup(never_ending_rate=1.0, update_while_in_progress="accept", max_concurrent_jobs=2)
    export = create_export(client, kms_key_arn, f"s3://{bucket}", execution=window(3))

    # When updating
    second = window(2)
    update(client, export, second)

    # Then List shows the new job, the old one keeps running and both count toward the quota
    assert last_status(client, export.name)["ExecutionConfiguration"] == second
    assert [j["status"] for j in ctl.jobs()] == ["IN_PROGRESS", "IN_PROGRESS"]
    with pytest.raises(client.exceptions.ResourceQuotaExceededException):
        update(client, export, window(1))


def test_stale_status_seconds_keeps_showing_the_previous_job(setup: Any, bucket: str, kms_key_arn: str) -> None:
    # Given a completed first job and a minute of staleness
    _, ctl, client = setup(stale_status_seconds=60.0, time_scale=1.0, job_duration_seconds=0.05)
    first, second = window(3), window(2)
    export = create_export(client, kms_key_arn, f"s3://{bucket}", execution=first)
    wait_status(client, export.name)

    # When the association is updated
    update(client, export, second)

    # Then List still shows the previous job's status and ExecutionConfiguration
    stale = last_status(client, export.name)
    assert stale["ExecutionConfiguration"] == first
    assert stale["LastExecutionStatus"]["ExecutionStatus"] == "COMPLETED"

    # And once the staleness is over (knob lowered at run time), the new job
    ctl.configure(stale_status_seconds=0)
    assert last_status(client, export.name)["ExecutionConfiguration"] == second


def test_stale_status_ends_by_itself(setup: Any, bucket: str, kms_key_arn: str) -> None:
    # Given 0.2 s of staleness after an Update
    _, _, client = setup(stale_status_seconds=0.2, time_scale=1.0, job_duration_seconds=0.05)
    export = create_export(client, kms_key_arn, f"s3://{bucket}", execution=window(3))
    wait_status(client, export.name)
    update(client, export, window(2))

    # When that long has passed, Then List shows the new job
    time.sleep(0.3)
    assert last_status(client, export.name)["ExecutionConfiguration"] == window(2)


def test_throttle_rate_raises_throttling_deterministically(setup: Any) -> None:
    # Given half of the calls throttled with a fixed seed
    _emu, ctl, client = setup(throttle_rate=0.5, random_seed=42)

    def outcomes() -> list[bool]:
        result = []
        for _ in range(20):
            try:
                client.list_data_integrations()
                result.append(True)
            except client.exceptions.ThrottlingException:
                result.append(False)
        return result

    # When the same calls are made twice from the same seed
    first = outcomes()
    ctl.configure(random_seed=42)
    second = outcomes()

    # Then some are throttled, some not, identically
    assert first == second
    assert 0 < first.count(False) < 20
    ctl.configure(throttle_rate=1.0)
    with pytest.raises(client.exceptions.ThrottlingException) as err:
        client.list_data_integrations()
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429


def test_internal_error_rate_raises_internal_service_error(setup: Any, kms_key_arn: str) -> None:
    _, ctl, client = setup(internal_error_rate=1.0)
    with pytest.raises(client.exceptions.InternalServiceError) as err:
        create_data_integration(client, kms_key_arn)
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    ctl.configure(internal_error_rate=0.0)
    assert client.list_data_integrations()["DataIntegrations"] == []  # the failed create changed nothing


def test_fail_object_types_fails_the_job_with_a_message(setup: Any, bucket: str, kms_key_arn: str) -> None:
    # Given assets forced to fail
    _, ctl, client = setup(fail_object_types=["_asset"])
    start = now_ms() - 2 * DAY_MS
    ctl.seed(DOMAIN, "_asset", generate("_asset", 3, start, start + DAY_MS, seed=1))
    ctl.seed(DOMAIN, "_profile", generate("_profile", 3, start, start + DAY_MS, seed=1))

    # When assets and profiles export
    create_export(
        client, kms_key_arn, f"s3://{bucket}", name="di-asset", object_type="_asset", execution=on_demand(start)
    )
    create_export(client, kms_key_arn, f"s3://{bucket}", execution=on_demand(start))

    # Then the asset job is FAILED with a message naming the type, profiles COMPLETED
    failed = wait_status(client, "di-asset")["LastExecutionStatus"]
    assert failed["ExecutionStatus"] == "FAILED" and "_asset" in failed["StatusMessage"]
    assert wait_status(client, "di-profile")["LastExecutionStatus"] == {"ExecutionStatus": "COMPLETED"}


def test_lag_minutes_changes_what_is_too_recent(setup: Any, s3: Any, bucket: str, kms_key_arn: str) -> None:
    # Given a 5-minute lag and objects updated 10 and 2 minutes ago
    _, ctl, client = setup(lag_minutes=5)
    now = now_ms()
    ctl.seed(
        DOMAIN,
        "_profile",
        [{"id": "ten", "lastUpdated": now - 10 * MINUTE_MS}, {"id": "two", "lastUpdated": now - 2 * MINUTE_MS}],
    )

    # When exporting the last hour
    create_export(client, kms_key_arn, f"s3://{bucket}", execution=on_demand(now - HOUR_MS))
    wait_status(client, "di-profile")

    # Then only the object older than 5 minutes is exported
    assert ctl.jobs()[0]["records"] == 1
    (key,) = list_keys(s3, bucket)
    assert b'"ten"' in s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def test_records_per_file_chunks_the_output(setup: Any, s3: Any, bucket: str, kms_key_arn: str) -> None:
    _, ctl, client = setup(records_per_file=3)
    start = now_ms() - 2 * DAY_MS
    ctl.seed(DOMAIN, "_order", generate("_order", 7, start, start + DAY_MS, seed=4))
    create_export(client, kms_key_arn, f"s3://{bucket}", object_type="_order", execution=on_demand(start))
    wait_status(client, "di-profile")
    files = ctl.jobs()[0]["files"]
    sizes = [len(s3.get_object(Bucket=bucket, Key=k)["Body"].read().splitlines()) for k in files]
    assert sizes == [3, 3, 1]


def test_time_scale_shrinks_every_duration(setup: Any, bucket: str, kms_key_arn: str) -> None:
    # Given 100 s jobs, 50 s late files and 25 s file delays at time_scale 0.002
    _, ctl, client = setup(job_duration_seconds=100.0, late_files_seconds=50, file_delay_seconds=25, time_scale=0.002)

    # When a job runs
    create_export(client, kms_key_arn, f"s3://{bucket}", execution=window())
    assert wait_status(client, "di-profile")["LastExecutionStatus"]["ExecutionStatus"] == "COMPLETED"

    # Then its durations were scaled (0.2 s, 0.1 s, 0.05 s) and it lasted at least the scaled duration
    (job,) = ctl.jobs()
    assert (job["durationSeconds"], job["lateFilesSeconds"], job["fileDelaySeconds"]) == pytest.approx((0.2, 0.1, 0.05))
    assert job["finishedTimeMs"] - job["requestTimeMs"] >= 200


def test_now_ms_moves_the_emulator_clock(setup: Any, s3: Any, bucket: str, kms_key_arn: str) -> None:
    # Given the emulator clock set to 2024-06-07T17:50:23Z and an object updated on 2024-06-06
    _, ctl, client = setup()
    fake_now = 1_717_782_623_000
    before = now_ms()
    config = ctl.configure(now_ms=fake_now)
    after = now_ms()
    assert fake_now - after <= config["clock_offset_ms"] <= fake_now - before
    ctl.seed(DOMAIN, "_profile", [{"id": "p1", "lastUpdated": fake_now - DAY_MS}])

    # When exporting "until now" from 2024-06-01
    create_export(client, kms_key_arn, f"s3://{bucket}", execution=on_demand(1_717_200_000_000))
    wait_status(client, "di-profile")

    # Then the request timestamp and the end of the range are the emulator's now, in 2024
    (key,) = list_keys(s3, bucket)
    parsed = parse_export_key(key)
    assert parsed.request_timestamp.startswith("20240607T1750")
    assert parsed.end_timestamp == parsed.request_timestamp
    assert parsed.start_timestamp == format_timestamp(1_717_200_000_000)


def test_clock_offset_ms_at_construction(setup: Any, kms_key_arn: str, bucket: str) -> None:
    # Given a clock one day in the past
    _, ctl, client = setup(clock_offset_ms=-DAY_MS)
    before = now_ms()

    # Then a window ending in the real "now" minus one hour cannot start "until now" later than the emulator's now
    with pytest.raises(client.exceptions.InvalidRequestException, match="current time"):
        create_export(client, kms_key_arn, f"s3://{bucket}", execution=on_demand(now_ms() - HOUR_MS))
    create_data_integration(client, kms_key_arn, name="other")
    client.create_data_integration_association(
        DataIntegrationIdentifier="other", DestinationURI=f"s3://{bucket}", ExecutionConfiguration=window(3)
    )
    assert before - DAY_MS <= ctl.jobs()[0]["requestTimeMs"] <= now_ms() - DAY_MS


def test_max_concurrent_jobs(setup: Any, bucket: str, kms_key_arn: str) -> None:
    # Given a quota of one job and a running job (it runs until the control API ends it)
    _, ctl, client = setup(max_concurrent_jobs=1, never_ending_rate=1.0)
    create_export(client, kms_key_arn, f"s3://{bucket}", execution=window())
    create_data_integration(client, kms_key_arn, name="di-asset", object_type="_asset")

    # When another job is requested, Then ResourceQuotaExceededException
    with pytest.raises(client.exceptions.ResourceQuotaExceededException, match="quota"):
        client.create_data_integration_association(
            DataIntegrationIdentifier="di-asset", DestinationURI=f"s3://{bucket}", ExecutionConfiguration=window()
        )

    # And once the running job has finished, the same request succeeds
    ctl.finish_job(ctl.jobs()[0]["id"])
    client.create_data_integration_association(
        DataIntegrationIdentifier="di-asset", DestinationURI=f"s3://{bucket}", ExecutionConfiguration=window()
    )
    assert [j["objectType"] for j in ctl.jobs()] == ["_profile", "_asset"]


def test_access_denied_operations(setup: Any) -> None:
    _, _ctl, client = setup(access_denied_operations=["ListDataIntegrations"])
    with pytest.raises(client.exceptions.AccessDeniedException, match="ListDataIntegrations") as err:
        client.list_data_integrations()
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_max_data_integrations(setup: Any, kms_key_arn: str) -> None:
    _, _, client = setup(max_data_integrations=1)
    create_data_integration(client, kms_key_arn)
    with pytest.raises(client.exceptions.ResourceQuotaExceededException):
        create_data_integration(client, kms_key_arn, name="second", object_type="_asset")
