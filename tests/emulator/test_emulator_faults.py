"""Faults AWS can produce, observed through boto3, S3 and the control API: after-effect errors, per-operation
rules, bursts and windows, late and delayed files, empty and regressing statuses, jobs that never end.

No test asserts an elapsed-time upper bound: a knob that must still be in force is set far longer than the
test needs (and switched off at run time to see the other side), and timing claims are lower bounds read
from the job's own records.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError

from local.emulator import EmulatorControl, EmulatorControlError, random_faults
from local.emulator.synthetic import generate
from tests.emulator.emulator_helpers import (
    DAY_MS,
    DOMAIN,
    Export,
    create_data_integration,
    create_export,
    last_status,
    list_keys,
    now_ms,
    on_demand,
    wait_status,
)

LONG = 60.0  # seconds: "still in force" for any test, however loaded the machine
NOW = now_ms()  # windows are whole days before this, so the same call gives the same window


def window(days_ago: int = 2) -> dict[str, Any]:
    start = NOW - days_ago * DAY_MS
    return on_demand(start, start + DAY_MS)


def update(client: Any, export: Export, execution: dict[str, Any]) -> Any:
    return client.update_data_integration_association(
        DataIntegrationIdentifier=export.name,
        DataIntegrationAssociationIdentifier=export.association_id,
        ExecutionConfiguration=execution,
    )


def code_of(call: Callable[[], Any]) -> str:
    with pytest.raises(ClientError) as err:
        call()
    return str(err.value.response["Error"]["Code"])


def seed_profiles(ctl: EmulatorControl, count: int, days_ago: int = 2) -> dict[str, Any]:
    start = NOW - days_ago * DAY_MS
    ctl.seed(DOMAIN, "_profile", generate("_profile", count, start, start + DAY_MS, seed=count))
    return on_demand(start, start + DAY_MS)


# ----------------------------------------------------------------- errors after the call took effect


@pytest.mark.parametrize("fault", ["InternalServiceError", "ThrottlingException"])
def test_create_association_fails_after_it_took_effect(setup: Any, bucket: str, kms_key_arn: str, fault: str) -> None:
    # Given the next CreateDataIntegrationAssociation answers a fault after it took effect
    rule = {"operation": "CreateDataIntegrationAssociation", "fault": fault, "phase": "after", "count": 1}
    _, ctl, client = setup(fault_rules=[rule])
    create_data_integration(client, kms_key_arn)

    def create() -> Any:
        return client.create_data_integration_association(
            DataIntegrationIdentifier="di-profile",
            DestinationURI=f"s3://{bucket}",
            ExecutionConfiguration=window(),
            ClientToken="create-1",
        )

    # When the caller creates the association, Then it gets the fault
    assert code_of(create) == fault

    # And yet the association exists and its job started
    summary = last_status(client, "di-profile")
    assert summary["ExecutionConfiguration"] == window()
    assert len(ctl.jobs()) == 1

    # And a retry with the same ClientToken returns that association instead of starting another job
    again = create()
    assert again["DataIntegrationAssociationId"] == summary["DataIntegrationAssociationArn"].rsplit("/", 1)[1]
    assert len(ctl.jobs()) == 1


def test_update_fails_after_it_took_effect_and_a_blind_retry_meets_the_running_job(
    setup: Any, bucket: str, kms_key_arn: str
) -> None:
    # Given a finished first job, jobs that then run long, and the next Update answering ThrottlingException
    _, ctl, client = setup()
    export = create_export(client, kms_key_arn, f"s3://{bucket}", execution=window(3))
    wait_status(client, export.name)
    ctl.configure(
        job_duration_seconds=LONG,
        time_scale=1.0,
        fault_rules=[
            {"operation": "UpdateDataIntegrationAssociation", "fault": "ThrottlingException", "phase": "after"}
        ],
    )

    # When the caller updates, it is throttled
    assert code_of(lambda: update(client, export, window(2))) == "ThrottlingException"

    # Then the update happened: the new job runs and List shows it
    assert last_status(client, export.name)["ExecutionConfiguration"] == window(2)
    assert [j["status"] for j in ctl.jobs()] == ["COMPLETED", "IN_PROGRESS"]

    # And retrying the same update is refused because that job is IN_PROGRESS (default policy "reject")
    ctl.configure(fault_rules=[])
    assert code_of(lambda: update(client, export, window(2))) == "InvalidRequestException"


def test_connection_dropped_after_update_leaves_the_job_started(setup: Any, bucket: str, kms_key_arn: str) -> None:
    # Given a finished first job and the next Update dropping the connection after taking effect
    _, ctl, client = setup()
    export = create_export(client, kms_key_arn, f"s3://{bucket}", execution=window(3))
    wait_status(client, export.name)
    ctl.configure(
        fault_rules=[
            {
                "operation": "UpdateDataIntegrationAssociation",
                "fault": "connection_dropped",
                "phase": "after",
                "count": 1,
            }
        ]
    )

    # When the caller updates, Then no response arrives (the connection closes)
    with pytest.raises(ConnectionClosedError):
        update(client, export, window(2))

    # And the second job was started anyway
    assert [(j["startTimeMs"], j["endTimeMs"]) for j in ctl.jobs()][1] == (
        int(window(2)["OnDemandConfiguration"]["StartTime"]),
        int(window(2)["OnDemandConfiguration"]["EndTime"]),
    )
    assert ctl.faults()[0]["fired"] == 1


def test_connection_dropped_before_the_call_changes_nothing(setup: Any, kms_key_arn: str) -> None:
    _, _, client = setup(fault_rules=[{"operation": "CreateDataIntegration", "fault": "connection_dropped"}])
    with pytest.raises(ConnectionClosedError):
        create_data_integration(client, kms_key_arn)
    assert client.list_data_integrations()["DataIntegrations"] == []


# ----------------------------------------------------------------- rates per operation, bursts, windows


def test_a_burst_fails_the_next_calls_of_one_operation_only(setup: Any, kms_key_arn: str) -> None:
    # Given a burst of two InternalServiceErrors on ListDataIntegrations
    _, ctl, client = setup(
        fault_rules=[{"operation": "ListDataIntegrations", "fault": "InternalServiceError", "count": 2}]
    )
    create_data_integration(client, kms_key_arn)

    # Then the next two List calls fail, Get is untouched, and the third List succeeds
    assert code_of(client.list_data_integrations) == "InternalServiceError"
    assert client.get_data_integration(Identifier="di-profile")["Name"] == "di-profile"
    assert code_of(client.list_data_integrations) == "InternalServiceError"
    assert len(client.list_data_integrations()["DataIntegrations"]) == 1
    assert ctl.faults() == [
        {
            "rule": {
                "operation": "ListDataIntegrations",
                "fault": "InternalServiceError",
                "phase": "before",
                "rate": 1.0,
                "count": 2,
                "start_seconds": 0.0,
                "duration_seconds": None,
            },
            "fired": 2,
            "remaining": 0,
        }
    ]

    # And setting the rules again at run time re-arms them
    ctl.configure(fault_rules=[{"operation": "ListDataIntegrations", "count": 1}])
    assert code_of(client.list_data_integrations) == "ThrottlingException"
    assert len(client.list_data_integrations()["DataIntegrations"]) == 1


def test_a_rate_per_operation_is_seeded_and_leaves_other_operations_alone(setup: Any, kms_key_arn: str) -> None:
    # Given half of GetDataIntegration calls throttled, from a fixed seed
    _, ctl, client = setup(
        random_seed=7, fault_rules=[{"operation": "GetDataIntegration", "fault": "ThrottlingException", "rate": 0.5}]
    )
    create_data_integration(client, kms_key_arn)

    def outcomes() -> list[bool]:
        result = []
        for _ in range(16):
            try:
                client.get_data_integration(Identifier="di-profile")
                result.append(True)
            except client.exceptions.ThrottlingException:
                result.append(False)
            client.list_data_integrations()  # never throttled: not the rule's operation
        return result

    # When the same calls are made twice from the same seed, Then the same ones fail, some but not all
    first = outcomes()
    ctl.configure(random_seed=7)
    assert outcomes() == first
    assert 0 < first.count(False) < 16


def test_a_time_window_applies_a_rate_only_inside_it(setup: Any, kms_key_arn: str) -> None:
    # Given a throttling window opening a minute after it is armed
    _, ctl, client = setup(
        time_scale=1.0, fault_rules=[{"fault": "ThrottlingException", "start_seconds": LONG, "duration_seconds": 10}]
    )

    # Then calls before the window succeed
    assert client.list_data_integrations()["DataIntegrations"] == []

    # When a window open now is armed, Then calls inside it fail
    ctl.configure(fault_rules=[{"fault": "ThrottlingException", "duration_seconds": LONG}])
    assert code_of(client.list_data_integrations) == "ThrottlingException"

    # And once a short window has passed, calls succeed again
    ctl.configure(fault_rules=[{"fault": "ThrottlingException", "duration_seconds": 0.05}])
    time.sleep(0.1)
    assert client.list_data_integrations()["DataIntegrations"] == []


@pytest.mark.parametrize(
    ("rule", "needle"),
    [
        ({"operation": "DeleteEverything"}, "DeleteEverything"),
        ({"fault": "Teapot"}, "fault"),
        ({"phase": "during"}, "phase"),
        ({"rate": 1.5}, "rate"),
        ({"count": 0}, "count"),
        ({"surprise": True}, "surprise"),
    ],
)
def test_bad_fault_rules_are_refused(setup: Any, rule: dict[str, Any], needle: str) -> None:
    _, ctl, _ = setup()
    with pytest.raises(EmulatorControlError) as err:
        ctl.configure(fault_rules=[rule])
    assert err.value.status == 400 and needle in err.value.message
    assert ctl.config()["fault_rules"] == []


# ----------------------------------------------------------------- files late or delayed


def test_files_still_appear_after_completed(setup: Any, s3: Any, bucket: str, kms_key_arn: str) -> None:
    # Given one record per file and the last file coming a minute after COMPLETED
    _, ctl, client = setup(records_per_file=1, job_duration_seconds=0.2, time_scale=1.0, late_files_seconds=LONG)
    execution = seed_profiles(ctl, 3)

    # When the job reports COMPLETED
    create_export(client, kms_key_arn, f"s3://{bucket}", execution=execution)
    assert wait_status(client, "di-profile")["LastExecutionStatus"]["ExecutionStatus"] == "COMPLETED"

    # Then one of its three files is not in S3 yet
    (job,) = ctl.jobs()
    assert (job["filesPlanned"], len(job["files"]), job["filesPending"]) == (3, 2, 1)
    assert len(list_keys(s3, bucket)) == 2


def test_a_late_file_is_written_after_completed(setup: Any, s3: Any, bucket: str, kms_key_arn: str) -> None:
    # Given the last file half a second after COMPLETED
    _, ctl, client = setup(records_per_file=1, job_duration_seconds=0.1, time_scale=1.0, late_files_seconds=0.5)
    create_export(client, kms_key_arn, f"s3://{bucket}", execution=seed_profiles(ctl, 2))

    # When the late file has been written
    deadline = time.monotonic() + 20
    while (ctl.jobs()[0]["filesPending"] or ctl.jobs()[0]["status"] == "IN_PROGRESS") and time.monotonic() < deadline:
        time.sleep(0.05)

    # Then the first file came before COMPLETED and the last one after it, no sooner than duration + lateness
    (job,) = ctl.jobs()
    assert job["status"] == "COMPLETED" and len(list_keys(s3, bucket)) == 2
    first, last = job["fileWrittenTimesMs"]
    assert first <= job["finishedTimeMs"] < last
    assert last - job["requestTimeMs"] >= 600


def test_file_delay_holds_every_file_back(setup: Any, s3: Any, bucket: str, kms_key_arn: str) -> None:
    # Given files delayed by a minute
    _, ctl, client = setup(records_per_file=1, file_delay_seconds=LONG, time_scale=1.0, job_duration_seconds=0.1)
    create_export(client, kms_key_arn, f"s3://{bucket}", execution=seed_profiles(ctl, 2))

    # When the job COMPLETES, Then no file has appeared yet
    assert wait_status(client, "di-profile")["LastExecutionStatus"]["ExecutionStatus"] == "COMPLETED"
    assert list_keys(s3, bucket) == []
    assert ctl.jobs()[0]["filesPending"] == 2


def test_file_delay_shifts_each_write(setup: Any, bucket: str, kms_key_arn: str) -> None:
    # Given files delayed by 0.3 s in a 0.2 s job
    _, ctl, client = setup(records_per_file=1, file_delay_seconds=0.3, time_scale=1.0, job_duration_seconds=0.2)
    create_export(client, kms_key_arn, f"s3://{bucket}", execution=seed_profiles(ctl, 2))
    deadline = time.monotonic() + 20
    while (ctl.jobs()[0]["filesPending"] or ctl.jobs()[0]["status"] == "IN_PROGRESS") and time.monotonic() < deadline:
        time.sleep(0.05)

    # Then every file was written at least its due time plus the delay after the request, so after COMPLETED
    (job,) = ctl.jobs()
    assert job["fileDelaySeconds"] == 0.3
    assert all(written - job["requestTimeMs"] >= 300 for written in job["fileWrittenTimesMs"])
    assert all(written >= job["finishedTimeMs"] for written in job["fileWrittenTimesMs"])


# ----------------------------------------------------------------- statuses: empty, backwards


@pytest.mark.parametrize(
    ("fields", "shows_status", "shows_configuration"),
    [("both", False, False), ("LastExecutionStatus", False, True), ("ExecutionConfiguration", True, False)],
)
def test_status_is_empty_right_after_create(
    setup: Any, bucket: str, kms_key_arn: str, fields: str, shows_status: bool, shows_configuration: bool
) -> None:
    # Given List lags a minute behind a Create
    _, ctl, client = setup(empty_status_seconds=LONG, time_scale=1.0, empty_status_fields=fields)

    # When an association is created with a job
    create_export(client, kms_key_arn, f"s3://{bucket}", execution=window())

    # Then List leaves the configured fields out, though the job exists
    summary = last_status(client, "di-profile")
    assert ("LastExecutionStatus" in summary) is shows_status
    assert ("ExecutionConfiguration" in summary) is shows_configuration
    assert len(ctl.jobs()) == 1

    # And once the lag is over (knob off at run time), both fields are there
    ctl.configure(empty_status_seconds=0)
    summary = last_status(client, "di-profile")
    assert summary["ExecutionConfiguration"] == window()
    assert summary["LastExecutionStatus"]["ExecutionStatus"] in ("IN_PROGRESS", "COMPLETED")


@pytest.mark.parametrize("final", ["COMPLETED", "FAILED"])
def test_status_goes_backwards_after_the_final_one_was_shown(
    setup: Any, bucket: str, kms_key_arn: str, final: str
) -> None:
    # Given statuses that go back to IN_PROGRESS for a minute once a final one was shown
    fail = ["_profile"] if final == "FAILED" else []
    _, ctl, client = setup(
        status_regression_seconds=LONG, time_scale=1.0, job_duration_seconds=0.1, fail_object_types=fail
    )
    create_export(client, kms_key_arn, f"s3://{bucket}", execution=window())

    # When List has shown the final status
    shown = wait_status(client, "di-profile")["LastExecutionStatus"]
    assert shown["ExecutionStatus"] == final

    # Then the next List shows IN_PROGRESS again (no StatusMessage), while the job itself stays ended
    assert last_status(client, "di-profile")["LastExecutionStatus"] == {"ExecutionStatus": "IN_PROGRESS"}
    assert ctl.jobs()[0]["status"] == final

    # And after the regression (knob off at run time) the final status is back
    ctl.configure(status_regression_seconds=0)
    assert last_status(client, "di-profile")["LastExecutionStatus"] == shown


def test_status_regression_rate_zero_never_goes_backwards(setup: Any, bucket: str, kms_key_arn: str) -> None:
    _, _, client = setup(
        status_regression_seconds=LONG, status_regression_rate=0.0, time_scale=1.0, job_duration_seconds=0.05
    )
    create_export(client, kms_key_arn, f"s3://{bucket}", execution=window())
    wait_status(client, "di-profile")
    assert last_status(client, "di-profile")["LastExecutionStatus"]["ExecutionStatus"] == "COMPLETED"


# ----------------------------------------------------------------- jobs that never end


def test_a_never_ending_job_holds_the_quota_until_finished_by_control(
    setup: Any, s3: Any, bucket: str, kms_key_arn: str
) -> None:
    # Given profile jobs never end, and a quota of one job
    _, ctl, client = setup(never_ending_object_types=["_profile"], max_concurrent_jobs=1, records_per_file=1)
    create_export(client, kms_key_arn, f"s3://{bucket}", execution=seed_profiles(ctl, 2))

    # When its files are written, Then it is still IN_PROGRESS and holds the quota
    deadline = time.monotonic() + 20
    while len(ctl.jobs()[0]["files"]) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(list_keys(s3, bucket)) == 2
    assert last_status(client, "di-profile")["LastExecutionStatus"] == {"ExecutionStatus": "IN_PROGRESS"}
    create_data_integration(client, kms_key_arn, name="di-asset", object_type="_asset")
    assert (
        code_of(
            lambda: client.create_data_integration_association(
                DataIntegrationIdentifier="di-asset", DestinationURI=f"s3://{bucket}", ExecutionConfiguration=window()
            )
        )
        == "ResourceQuotaExceededException"
    )
    with pytest.raises(TimeoutError, match="IN_PROGRESS"):
        ctl.wait_idle(timeout=0.2)

    # When the control API finishes it
    (job,) = ctl.jobs()
    assert job["neverEnds"] is True
    ended = ctl.finish_job(job["id"], "COMPLETED")

    # Then List shows COMPLETED, the emulator is idle and the quota is free again
    assert ended["status"] == "COMPLETED"
    assert last_status(client, "di-profile")["LastExecutionStatus"] == {"ExecutionStatus": "COMPLETED"}
    assert [j["status"] for j in ctl.wait_idle(timeout=5)] == ["COMPLETED"]
    client.create_data_integration_association(
        DataIntegrationIdentifier="di-asset", DestinationURI=f"s3://{bucket}", ExecutionConfiguration=window()
    )


def test_finishing_a_job_as_failed_shows_the_message(setup: Any, bucket: str, kms_key_arn: str) -> None:
    _, ctl, client = setup(never_ending_rate=1.0)
    create_export(client, kms_key_arn, f"s3://{bucket}", execution=window())
    (job,) = ctl.jobs()
    ctl.finish_job(job["id"], "FAILED", "Export failed: the domain was deleted")
    assert last_status(client, "di-profile")["LastExecutionStatus"] == {
        "ExecutionStatus": "FAILED",
        "StatusMessage": "Export failed: the domain was deleted",
    }

    # And an ended or unknown job cannot be finished again
    with pytest.raises(EmulatorControlError) as err:
        ctl.finish_job(job["id"], "COMPLETED")
    assert err.value.status == 400 and "already ended FAILED" in err.value.message
    with pytest.raises(EmulatorControlError) as err:
        ctl.finish_job("no-such-job")
    assert err.value.status == 404
    with pytest.raises(EmulatorControlError) as err:
        ctl.finish_job(job["id"], "CANCELLED")
    assert err.value.status == 400


def test_reset_ends_never_ending_jobs(setup: Any, bucket: str, kms_key_arn: str) -> None:
    _, ctl, client = setup(never_ending_rate=1.0)
    create_export(client, kms_key_arn, f"s3://{bucket}", execution=window())
    ctl.reset()
    assert ctl.wait_idle(timeout=1) == []


# ----------------------------------------------------------------- a randomized day is a valid config


def test_random_faults_configure_a_running_emulator(setup: Any) -> None:
    # Given a running emulator, When a random day's faults are posted, Then each is accepted as drawn
    _, ctl, _ = setup()
    for seed in range(25):
        drawn = random_faults(random.Random(seed))
        config = ctl.configure(**drawn)
        assert {name: config[name] for name in drawn} == drawn
