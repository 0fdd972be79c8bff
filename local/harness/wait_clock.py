"""Wait states on the account's clock (`local.clock`), and how long a woken poll holds that clock.

moto's `WaitFunction._wait_interval` is replaced by `clocked_wait`: a Wait of w seconds sets an alarm
w x time_scale ahead on the account's clock and sleeps until it (leaving early when the execution
stops). With a `HeldClock` the alarm is not released when the Wait ends: the thread keeps the clock
standing while it runs the poll the Wait woke it for, and lets go when that poll is answered.

`PollHolds.entering` is called before each state a thread evaluates (`CommonStateField._eval_body`,
wrapped by `state_hook`). A thread holding the clock keeps it through the first Task state after its
Wait (the Check) and any Choice states after that Task; any other state (another Wait, a second Task,
a Map, Pass, Succeed, Fail) releases it first. So a poll due at t is answered at t on the clock,
however late the machine let its thread wake. And every Task state holds the clock while it runs:
Lambda code takes no pipeline time (on AWS it takes a fraction of a second; here, divided by the
time scale, it would take minutes).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from moto.stepfunctions.parser.asl.component.state.choice.state_choice import StateChoice
from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task import StateTask
from moto.stepfunctions.parser.asl.component.state.state import CommonStateField
from moto.stepfunctions.parser.asl.component.state.wait.state_wait import StateWait
from moto.stepfunctions.parser.asl.component.state.wait.wait_function import wait_function

from local.clock import Clock, HeldClock


@dataclass
class _Hold:
    alarm: int
    task_done: bool = False


class PollHolds:
    """Which thread holds the clock after its Wait, and until when (see the module docstring)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._holds: dict[int, _Hold] = {}
        self._lock = threading.Lock()

    @property
    def holding(self) -> bool:
        """Whether the clock keeps woken polls (a `HeldClock`); a `RealClock` holds nothing."""
        return isinstance(self.clock, HeldClock)

    def wait(self, seconds: float, stopped: Callable[[], bool]) -> None:
        """A Wait state of `seconds` (already scaled) on this thread; returns early when `stopped()`."""
        self.release()
        alarm = self.clock.alarm(self.clock.monotonic() + max(0.0, seconds))
        if self.clock.sleep_until(alarm, stopped) and self.holding:
            with self._lock:
                self._holds[threading.get_ident()] = _Hold(alarm)
            return
        self.clock.release(alarm)

    def entering(self, state: Any) -> None:
        """Before this thread evaluates `state`: let the clock go unless `state` is part of the woken poll."""
        with self._lock:
            hold = self._holds.get(threading.get_ident())
        if hold is None:
            return
        if isinstance(state, StateChoice) or (isinstance(state, StateTask) and not hold.task_done):
            return
        self.release()

    def left(self, state: Any) -> None:
        """After this thread evaluated `state`: a Task was the poll; the next one is not."""
        if isinstance(state, StateTask):
            with self._lock:
                hold = self._holds.get(threading.get_ident())
                if hold is not None:
                    hold.task_done = True

    def release(self) -> None:
        """This thread's poll is answered (or it was never holding)."""
        with self._lock:
            hold = self._holds.pop(threading.get_ident(), None)
        if hold is not None:
            self.clock.release(hold.alarm)


def clocked_wait(scale: float, holds: PollHolds) -> Any:
    """The replacement of `WaitFunction._wait_interval`: `seconds * scale` on the account's clock."""

    @functools.wraps(wait_function.WaitFunction._wait_interval)
    def _wait_interval(self: Any, env: Any, wait_seconds: float) -> None:
        holds.wait(max(0.0, float(wait_seconds)) * scale, lambda: not env.is_running())

    return _wait_interval


def state_hook(holds: PollHolds) -> Any:
    """The replacement of `CommonStateField._eval_body`: tells `holds` which state each thread evaluates."""
    original = CommonStateField._eval_body

    @functools.wraps(original)
    def _eval_body(state: Any, env: Any) -> None:
        if not isinstance(state, StateWait):
            holds.entering(state)
        # A Task takes no time on the held clock: its Lambda runs at wall speed, which time_scale
        # would turn into minutes of pipeline time (1 s of a busy Start function = 100 s at 0.01).
        task = holds.clock.alarm(holds.clock.monotonic()) if isinstance(state, StateTask) else None
        try:
            original(state, env)
        finally:
            if task is not None:
                holds.clock.release(task)
            holds.left(state)

    return _eval_body
