"""The offline stack's held clock: it stands at a due alarm until released, and never goes back."""

from __future__ import annotations

import threading
import time

import pytest

from local.clock import ALARM_RESOLUTION_SECONDS, HeldClock, RealClock


def test_the_clock_stands_at_a_due_alarm_until_it_is_released_then_runs_on_from_there() -> None:
    clock = HeldClock()
    start = clock.monotonic()
    alarm = clock.alarm(start + 0.05)
    assert clock.sleep_until(alarm)
    time.sleep(0.3)  # the one due at the alarm is slow to act
    stood = clock.monotonic()
    assert stood == pytest.approx(start + 0.05, abs=ALARM_RESOLUTION_SECONDS)
    released = time.monotonic()
    clock.release(alarm)
    time.sleep(0.05)
    after = clock.monotonic()
    # it ran on from the alarm, no faster than the wall clock since the release: the 0.3 s it stood is not made up
    assert stood < after <= stood + (time.monotonic() - released)


def test_moments_equal_in_pipeline_time_are_the_same_alarm_moment_however_they_were_summed() -> None:
    """A job's end (start + its length) and the poll a fixed schedule puts at it (start + 180 waits of
    60 s, each added to the last) are one moment: a tie the emulator resolves as the schedule does."""
    clock = HeldClock()
    start = clock.monotonic() + 1000.123456789  # any float, off the grid
    scale = 0.001
    poll = clock.alarm(start + 60 * scale)
    moment = clock._alarms[poll].at
    for _ in range(179):
        moment = clock._alarms[clock.alarm(moment + 60 * scale)].at
    end = clock._alarms[clock.alarm(start + 10_800 * scale)].at
    assert moment == end


def test_a_sleeper_due_later_is_not_woken_while_an_earlier_alarm_holds_the_clock() -> None:
    clock = HeldClock()
    start = clock.monotonic()
    first = clock.alarm(start + 0.02)
    second = clock.alarm(start + 0.05)
    woken = threading.Event()

    def sleeper() -> None:
        clock.sleep_until(second)
        woken.set()

    assert clock.sleep_until(first)
    thread = threading.Thread(target=sleeper)
    thread.start()
    assert not woken.wait(0.3)  # 0.3 s of wall time, but the clock stands at the first alarm
    clock.release(first)
    assert woken.wait(5)
    thread.join()
    assert clock.due(second)  # the sleeper woke once the clock had reached its alarm's moment


def test_the_clock_never_goes_back_for_an_alarm_in_the_past() -> None:
    clock = HeldClock()
    time.sleep(0.02)
    before = clock.monotonic()
    alarm = clock.alarm(before - 10)
    assert clock.sleep_until(alarm)
    assert clock.monotonic() >= before


def test_a_hold_kept_past_its_limit_is_dropped_and_counted() -> None:
    clock = HeldClock(hold_limit_seconds=0.1)
    start = clock.monotonic()
    stuck = clock.alarm(start + 0.01)  # its thread never releases it
    moment = clock._alarms[stuck].at
    time.sleep(0.3)
    now = clock.monotonic()  # held past the limit: dropped, the clock goes on
    assert clock.expired_holds == 1
    assert not clock.due(stuck)  # dropped
    # orderings on the held clock, not durations: it went on from the stuck moment, and never back
    assert clock.monotonic() >= now >= moment


def test_a_sleep_stops_when_asked() -> None:
    for clock in (HeldClock(), RealClock()):
        alarm = clock.alarm(clock.monotonic() + 60)
        assert clock.sleep_until(alarm, stop=lambda: True) is False
        clock.release(alarm)
