"""Wait states on the account's clock (`local.clock`), and which states hold that clock.

moto's `WaitFunction._wait_interval` is replaced by `clocked_wait`: a Wait of w seconds sets an alarm
w x time_scale ahead on the account's clock and sleeps until it (leaving early when the execution
stops). With a `HeldClock` the alarm is not released when the Wait ends: the thread keeps the clock
standing while it runs the poll the Wait woke it for.

`PollHolds.entering` is called before each state a thread evaluates (`CommonStateField._eval_body`,
wrapped by `state_hook`). Task, Choice and Pass states take no pipeline time: a thread holds the
clock from the end of its Wait, or from the start of a Task, through every Task, Choice and Pass
state after that, and lets go when it enters any other state (a Map, Succeed, Fail) or its program
ends (`program_hook`). A Wait sets its own alarm first and only then lets go of the previous hold,
so the clock never runs between a poll and the next Wait, nor between the Task that started a job
and the first Wait. So a poll due at t is answered at t on the clock, however late the machine let
its thread wake, and a job's detection lag is the schedule's, to the millisecond, at any time scale.
Lambda code runs at wall speed, which the time scale would otherwise turn into minutes of pipeline
time (on AWS it takes a fraction of a second).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from moto.stepfunctions.parser.asl.component.program.program import Program
from moto.stepfunctions.parser.asl.component.state.choice.state_choice import StateChoice
from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task import StateTask
from moto.stepfunctions.parser.asl.component.state.state import CommonStateField
from moto.stepfunctions.parser.asl.component.state.state_pass.state_pass import StatePass
from moto.stepfunctions.parser.asl.component.state.wait.state_wait import StateWait
from moto.stepfunctions.parser.asl.component.state.wait.wait_function import wait_function

from local.clock import Clock

# States that take no pipeline time: the thread keeps (or, for a Task, takes) the clock through them.
_INSTANT_STATES = (StateTask, StateChoice, StatePass)


class PollHolds:
    """Which thread holds the clock, from when until when (see the module docstring)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._holds: dict[int, int] = {}  # thread -> its alarm
        self._lock = threading.Lock()

    @property
    def holding(self) -> bool:
        """Whether the clock keeps woken polls (a `HeldClock`); a `RealClock` holds nothing."""
        return self.clock.holds

    def wait(self, seconds: float, stopped: Callable[[], bool]) -> None:
        """A Wait state of `seconds` (already scaled) on this thread; returns early when `stopped()`."""
        # The alarm is set while this thread still holds the clock (from its last poll, or the Task
        # that started the job), then the hold goes: no free run in between.
        alarm = self.clock.alarm(self.clock.monotonic() + max(0.0, seconds))
        self.release()
        if self.clock.sleep_until(alarm, stopped) and self.holding:
            with self._lock:
                self._holds[threading.get_ident()] = alarm
            return
        self.clock.release(alarm)

    def entering(self, state: Any) -> None:
        """Before this thread evaluates `state`: hold the clock through a Task, keep it through a Choice
        or Pass, let it go at any other state (a Wait lets go once its alarm is set)."""
        if isinstance(state, StateTask):
            self.hold()
        elif not isinstance(state, (*_INSTANT_STATES, StateWait)):
            self.release()

    def hold(self) -> None:
        """Hold the clock where it stands, unless this thread already does."""
        if not self.holding:
            return
        thread = threading.get_ident()
        with self._lock:
            if thread in self._holds:
                return
        alarm = self.clock.alarm(self.clock.monotonic())
        with self._lock:
            self._holds[thread] = alarm

    def release(self) -> None:
        """This thread lets the clock go (if it held it)."""
        with self._lock:
            alarm = self._holds.pop(threading.get_ident(), None)
        if alarm is not None:
            self.clock.release(alarm)


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
        holds.entering(state)
        original(state, env)

    return _eval_body


def program_hook(holds: PollHolds) -> Any:
    """The replacement of `Program._eval_body` (a program's states run on its own thread): when the
    program ends, after a Task with `End` or by a failure, its thread lets the clock go."""
    original = Program._eval_body

    @functools.wraps(original)
    def _eval_body(program: Any, env: Any) -> None:
        try:
            original(program, env)
        finally:
            holds.release()

    return _eval_body
