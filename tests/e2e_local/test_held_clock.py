"""The benchmark's held clock on the real state machine: a busy machine cannot make a poll late.

Every Wait's thread is made to wake a whole second late (100 s of pipeline time at the tests' scale),
as on a machine with more work than CPUs. On the held clock the job still lasts its length, is polled
at the schedule's times and is seen within the schedule's lag; `test_emulator_clock` shows the wall
clock would let the same late poll see a job that ended after it was due.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from cpexport.polling import allowance, schedule

from local.harness.wait_clock import PollHolds
from tests.e2e_local.conftest import DAY0, TIME_SCALE, Seeder, deploy, tick

pytestmark = pytest.mark.e2e

JOB_SECONDS = 200.0
LATE_WALL_SECONDS = 1.0


@pytest.fixture(scope="module")
def deployed():
    yield from deploy({"DomainNames": "held", "ObjectTypes": "_profile"}, held_clock=True)


def test_polls_that_wake_late_still_see_the_job_on_the_schedule(stack, monkeypatch: pytest.MonkeyPatch) -> None:
    stack, _ = stack
    Seeder(stack, "held").add("_profile", 10, DAY0, DAY0 + timedelta(hours=20), seed=4)
    stack.emulator_control.configure(job_duration_seconds=JOB_SECONDS)
    woken = PollHolds.wait

    def wakes_late(holds: PollHolds, seconds: float, stopped: Any) -> None:
        woken(holds, seconds, stopped)
        time.sleep(LATE_WALL_SECONDS)

    monkeypatch.setattr(PollHolds, "wait", wakes_late)

    result = tick(stack, day=1, timeout=300)

    assert result["status"] == "SUCCEEDED"
    (job,) = stack.emulator_control.jobs()
    clock = job["clock"]
    lasted = (clock["finished"] - clock["started"]) / TIME_SCALE
    lag = (clock["finishSeen"] - clock["finished"]) / TIME_SCALE
    assert lasted == pytest.approx(JOB_SECONDS, abs=1)
    # Seen with exactly the schedule's lag, though each poll's thread woke 100 s late: the clock never
    # runs between the Task that started the job, the polls and the Waits after them.
    planned = schedule(JOB_SECONDS, None)
    assert lag == pytest.approx(planned[-1] - JOB_SECONDS, abs=0.01)
    assert lag <= allowance(JOB_SECONDS)
    history = stack.execution_history(result["executionArn"])
    checks = [e for e in history if e.get("stateEnteredEventDetails", {}).get("name") == "CheckExport"]
    assert len(checks) == len(planned)
