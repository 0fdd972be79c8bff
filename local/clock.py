"""The offline stack's clock, shared by the state machine's Wait states and the emulated export jobs.

`RealClock` is the wall clock: a Wait of w seconds sleeps w x time_scale, a job ends d x time_scale
after it started, each on its own thread. On a busy machine a thread wakes late, and at a small time
scale a late wake-up is a large error: 0.1 s late at scale 0.01 is 10 s of pipeline time, so a poll
looks late that the schedule put on time.

`HeldClock` removes that error without changing what runs. It is a monotonic clock that runs with the
wall clock but never passes a moment someone is due at until that someone has acted:

- an alarm (`alarm`/`sleep_until`) caps the clock at its moment; the clock stands at that moment
  until the alarm is released (an emulated job writes its file or ends, then releases);
- a Wait state's alarm is released only after the poll it wakes has been answered, and a Task
  state holds the clock from its start: the hooks of `local.harness.wait_clock` keep the clock
  through the Task, Choice and Pass states that follow, until the next Wait has set its alarm (or
  another kind of state begins). Lambda code runs at wall speed, which the time scale would turn
  into minutes of pipeline time;
- the emulator answers a status read only after every job event due at that moment has happened
  (`JobRunner.settle_due`): a job that ends at t is seen by a poll at t, as the schedule counts it.

So a poll that is due at t sees every job that ended by t and none that ends later, however late its
thread woke: the lag between a job's end and the poll that sees it is the schedule's, exactly, at any
time scale. What a busy machine still changes is how long the run takes on the wall clock.
An alarm held longer than `hold_limit_seconds` of wall time (900 s, a Lambda's longest run: a thread
that died holding) is dropped and counted in `expired_holds`, so a run cannot stand still for ever.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

_WAKE_STEP_SECONDS = 0.05  # how often a sleeper looks at a cancel event or a moved cap
ALARM_RESOLUTION_SECONDS = 1e-6  # of the clock: 1 ms of pipeline time at time scale 0.001


class Clock(Protocol):
    """What the emulator and the Wait states need of a clock (seconds, monotonic)."""

    holds: bool  # whether the clock stands at due alarms until they are released

    def monotonic(self) -> float:
        """Now."""
        ...

    def alarm(self, at: float) -> int:
        """Register a moment someone is due at; the clock does not pass it until `release`."""
        ...

    def sleep_until(self, alarm: int, stop: Callable[[], bool] | None = None) -> bool:
        """Block until the alarm's moment (True), or until `stop()` is true (False)."""
        ...

    def release(self, alarm: int) -> None:
        """The one due at the alarm has acted: the clock may move on."""
        ...

    def due(self, alarm: int) -> bool:
        """Whether the clock has reached the alarm's moment and the alarm is not released yet."""
        ...


class RealClock:
    """The wall clock (`time.monotonic`); alarms are plain sleeps and hold nothing."""

    holds = False  # whether the clock stands at due alarms

    def __init__(self) -> None:
        self._moments: dict[int, float] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        """`time.monotonic()`."""
        return time.monotonic()

    def alarm(self, at: float) -> int:
        """Remember the moment (nothing waits for it)."""
        with self._lock:
            alarm = next(self._ids)
            self._moments[alarm] = at
            return alarm

    def sleep_until(self, alarm: int, stop: Callable[[], bool] | None = None) -> bool:
        """Sleep until the moment, looking at `stop` every 50 ms."""
        with self._lock:
            at = self._moments.get(alarm, 0.0)
        while True:
            remaining = at - time.monotonic()
            if remaining <= 0:
                return True
            if stop is not None and stop():
                return False
            time.sleep(min(remaining, _WAKE_STEP_SECONDS) if stop is not None else remaining)

    def release(self, alarm: int) -> None:
        """Forget the moment."""
        with self._lock:
            self._moments.pop(alarm, None)

    def due(self, alarm: int) -> bool:
        """Whether the moment has come (and the alarm is not released)."""
        with self._lock:
            at = self._moments.get(alarm)
        return at is not None and at <= time.monotonic()


@dataclass
class _Alarm:
    at: float
    due_since: float | None = None  # wall time at which the clock reached it (then it holds)


class HeldClock:
    """A clock that stands at every alarm until the alarm is released (see the module docstring)."""

    holds = True  # whether the clock stands at due alarms

    def __init__(self, hold_limit_seconds: float = 900.0) -> None:
        self.hold_limit_seconds = hold_limit_seconds
        self.expired_holds = 0
        self._condition = threading.Condition()
        self._base_wall = time.monotonic()
        self._base = self._base_wall
        self._alarms: dict[int, _Alarm] = {}
        self._ids = itertools.count(1)

    def monotonic(self) -> float:
        """Now: wall time since the start, less every moment the clock stood at an alarm."""
        with self._condition:
            return self._now(time.monotonic())

    def alarm(self, at: float) -> int:
        """Register `at` (no earlier than now); the clock stops there until the alarm is released.

        Moments are kept on a grid of `ALARM_RESOLUTION_SECONDS`: two moments equal in pipeline
        time (a job's end and the poll the schedule puts at it, reached by different sums) are the
        same float, not 1e-11 apart on either side.
        """
        with self._condition:
            self._rebase()
            alarm = next(self._ids)
            self._alarms[alarm] = _Alarm(
                at=max(round(at / ALARM_RESOLUTION_SECONDS) * ALARM_RESOLUTION_SECONDS, self._base)
            )
            return alarm

    def sleep_until(self, alarm: int, stop: Callable[[], bool] | None = None) -> bool:
        """Block until the clock stands at the alarm's moment (True) or `stop()` is true (False)."""
        with self._condition:
            while True:
                now = self._now(time.monotonic())
                found = self._alarms.get(alarm)
                if found is None or now >= found.at:
                    return True  # (gone: it expired while its thread slept, and the clock moved on)
                if stop is not None and stop():
                    return False
                self._condition.wait(min(found.at - now, _WAKE_STEP_SECONDS))

    def release(self, alarm: int) -> None:
        """Let the clock pass the alarm's moment."""
        with self._condition:
            self._rebase()
            self._alarms.pop(alarm, None)
            self._condition.notify_all()

    def due(self, alarm: int) -> bool:
        """Whether the clock stands at (or past) the alarm's moment, the alarm not released yet."""
        with self._condition:
            found = self._alarms.get(alarm)
            return found is not None and self._now(time.monotonic()) >= found.at

    def _now(self, wall: float) -> float:
        free = self._base + (wall - self._base_wall)
        cap = math.inf
        expired = []
        for alarm_id, alarm in self._alarms.items():
            if alarm.at <= free and alarm.due_since is None:
                # The clock reached it (when its free run crossed it): from then on it holds.
                alarm.due_since = self._base_wall + max(0.0, alarm.at - self._base)
            if alarm.due_since is not None and wall - alarm.due_since > self.hold_limit_seconds:
                expired.append(alarm_id)
            cap = min(cap, alarm.at)
        now = min(free, cap)
        if expired:
            # Held too long (its thread died holding it): the clock goes on from where it stands.
            for alarm_id in expired:
                del self._alarms[alarm_id]
            self.expired_holds += len(expired)
            self._base, self._base_wall = now, wall
            return self._now(wall)
        return now

    def _rebase(self) -> None:
        # Whenever the alarms change, restart the free run from where the clock stands: the time it
        # stood at a cap is not made up when the cap goes.
        wall = time.monotonic()
        self._base, self._base_wall = self._now(wall), wall


def held_or_real(held: bool) -> Clock:
    """The clock an offline account runs on."""
    return HeldClock() if held else RealClock()
