"""Jobs on the account's clock: with a held clock a late poll sees what was true when it was due."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from local.clock import Clock, HeldClock, RealClock
from local.emulator import EmulatorConfig, EmulatorControl, EmulatorServer
from local.emulator.synthetic import generate
from tests.emulator.emulator_helpers import (
    ACCOUNT,
    DOMAIN,
    NO_RETRY,
    REGION,
    create_export,
    last_status,
    now_ms,
    on_demand,
    wait_status,
)

DAY_MS = 86_400_000
JOB_SECONDS = 1.5  # long enough that a busy machine's slow requests fit well within half of it


@contextmanager
def _running_job(clock: Clock, moto_url: str, boto_session: Any, bucket: str, kms_key_arn: str) -> Iterator[Any]:
    """An emulator on `clock` with one export job of JOB_SECONDS started: (its client, its control, the job)."""
    emu = EmulatorServer(
        s3_endpoint_url=moto_url,
        region=REGION,
        account_id=ACCOUNT,
        config=EmulatorConfig(job_duration_seconds=JOB_SECONDS, time_scale=1.0, records_per_file=1),
        clock=clock,
    ).start()
    try:
        client = boto_session.client("appintegrations", endpoint_url=emu.url, config=NO_RETRY)
        control = EmulatorControl(emu.url)
        start = now_ms() - 2 * DAY_MS
        control.seed(DOMAIN, "_profile", generate("_profile", 2, start, start + DAY_MS, seed=3))
        create_export(client, kms_key_arn, f"s3://{bucket}", execution=on_demand(start, start + DAY_MS))
        (running,) = control.jobs()
        yield client, control, running
    finally:
        emu.stop()


def _late_poll(clock: Clock, moto_url: str, boto_session: Any, bucket: str, kms_key_arn: str) -> tuple[str, Any]:
    """A job of JOB_SECONDS; a poll due half-way whose thread wakes a whole job length late; what it sees."""
    with _running_job(clock, moto_url, boto_session, bucket, kms_key_arn) as (client, control, running):
        due = clock.alarm(running["clock"]["started"] + JOB_SECONDS / 2)
        assert clock.sleep_until(due)
        time.sleep(2 * JOB_SECONDS)  # a busy machine: the poll's thread runs late
        seen = last_status(client, "di-profile")["LastExecutionStatus"]["ExecutionStatus"]
        clock.release(due)
        assert wait_status(client, "di-profile")["LastExecutionStatus"]["ExecutionStatus"] == "COMPLETED"
        (job,) = control.jobs()
        return str(seen), job


def test_a_poll_due_before_the_job_ends_sees_it_running_however_late_it_runs(
    moto_url: str, boto_session: Any, bucket: str, kms_key_arn: str
) -> None:
    seen, job = _late_poll(HeldClock(), moto_url, boto_session, bucket, kms_key_arn)
    assert seen == "IN_PROGRESS"
    # the job lasted its length on the clock, and the poll that first showed its end came after it
    clock = job["clock"]
    assert clock["finished"] - clock["started"] == pytest.approx(JOB_SECONDS, abs=0.05)
    assert clock["finishSeen"] >= clock["finished"]


def test_on_the_wall_clock_the_same_late_poll_sees_the_job_ended(
    moto_url: str, boto_session: Any, bucket: str, kms_key_arn: str
) -> None:
    seen, _ = _late_poll(RealClock(), moto_url, boto_session, bucket, kms_key_arn)
    assert seen == "COMPLETED"


def test_a_poll_due_at_the_very_moment_the_job_ends_sees_it_ended(
    moto_url: str, boto_session: Any, bucket: str, kms_key_arn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The schedule counts a job that ends at t as seen by the poll at t. On the held clock both are
    due at the same moment; the job's thread is slow to end it (0.5 s of wall time), and the poll's
    read still waits for it rather than answering IN_PROGRESS."""
    from local.emulator.jobs import JobRunner

    ending = JobRunner.finish

    def slow_finish(runner: JobRunner, job: Any, status: str, message: str | None = None) -> bool:
        time.sleep(0.5)
        return ending(runner, job, status, message)

    monkeypatch.setattr(JobRunner, "finish", slow_finish)
    clock = HeldClock()
    with _running_job(clock, moto_url, boto_session, bucket, kms_key_arn) as (client, control, running):
        due = clock.alarm(running["clock"]["started"] + JOB_SECONDS)
        assert clock.sleep_until(due)
        seen = last_status(client, "di-profile")["LastExecutionStatus"]["ExecutionStatus"]
        clock.release(due)
        (job,) = control.jobs()
    assert seen == "COMPLETED"
    assert job["clock"]["finishSeen"] == job["clock"]["finished"]
