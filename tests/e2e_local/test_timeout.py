"""An export job that outlasts ExportTimeoutHours: alert, keep the watermark, and never start a
second job while the first (which cannot be cancelled) still runs."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import pytest

from tests.e2e_local.conftest import DAY0, Seeder, deploy, tick

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def deployed():
    # 0.05 h = 180 s of poll waits (1.8 s at the tests' time scale)
    yield from deploy({"DomainNames": "slow", "ObjectTypes": "_profile", "ExportTimeoutHours": "0.05"})


def test_a_job_past_the_timeout_alerts_keeps_the_watermark_and_blocks_a_second_job(stack):
    stack, observer = stack
    objects = Seeder(stack, "slow").add("_profile", 20, DAY0, DAY0 + timedelta(hours=20), seed=21)
    # The job writes its files at once and then runs until the test ends it: longer than the timeout
    # and than the first run however slow the machine. And the service would accept an update while the
    # job runs (the unknown behaviour made permissive), so only the pipeline itself can hold a second
    # job back.
    control = stack.emulator_control
    control.configure(job_duration_seconds=1, never_ending_object_types=["_profile"], update_while_in_progress="accept")

    timed_out = tick(stack, day=1)

    assert timed_out["status"] == "FAILED"
    (message,) = observer.notifications()
    assert message["MessageAttributes"]["status"]["Value"] == "FAILED"
    assert "TIMED_OUT" in message["Message"] and "cannot be cancelled" in message["Message"]
    assert observer.watermark("slow", "_profile") is None
    assert [r["status"] for r in observer.runs("slow", "_profile")] == ["TIMED_OUT"]

    # The next day's run finds the first job still running: it waits instead of starting another
    (first,) = control.jobs()
    assert first["status"] == "IN_PROGRESS"
    control.configure(job_duration_seconds=100, never_ending_object_types=[])
    arn = stack.fire_schedule(scheduled_time=DAY0 + timedelta(days=2))
    _until_in_history(stack, arn, "ExportBusy")
    assert [job["status"] for job in control.jobs()] == ["IN_PROGRESS"]
    # and once the first job ends, it exports
    control.finish_job(first["id"], "COMPLETED")
    recovered = stack.wait_execution(arn, timeout=240)
    assert recovered["status"] == "SUCCEEDED", recovered
    jobs = control.jobs()
    assert len(jobs) == 2
    assert jobs[1]["requestTimeMs"] >= jobs[0]["finishedTimeMs"]  # never two at once
    runs = observer.runs("slow", "_profile")
    assert (runs[-1]["status"], runs[-1]["windowStart"], runs[-1]["records"]) == (
        "SUCCEEDED",
        "2026-11-01T00:00:00Z",
        len(objects),
    )
    assert observer.watermark("slow", "_profile") == "2026-11-02T23:30:00Z"


def _until_in_history(stack: Any, arn: str, text: str, timeout: float = 120) -> None:
    """Wait until the execution's history mentions `text` (an error it retries on, say)."""
    deadline = time.monotonic() + timeout
    while text not in json.dumps(stack.execution_history(arn), default=str):
        if time.monotonic() > deadline:
            raise AssertionError(f"{text} never appeared in the history of {arn}")
        time.sleep(0.5)
