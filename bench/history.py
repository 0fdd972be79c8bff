"""Reading an execution's history: which events belong to which export, and what its polling looked like.

Pure functions over `get_execution_history` events (as boto3 returns them: `timestamp` a datetime).
Every event of a Map iteration chains back through `previousEventId` to its `MapIterationStarted`;
the Map's own events (`MapStateSucceeded`, ...) and everything outside the Map are shared by the
execution's exports.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise
from typing import Any

Event = dict[str, Any]

# The export Map of the definition: its iterations are the exports; its own events are shared.
EXPORT_MAP = "ExportEach"
_MAP_ENDS = frozenset({"MapStateSucceeded", "MapStateFailed", "MapStateAborted"})
_ITERATION_ENDS = frozenset({"MapIterationSucceeded", "MapIterationFailed", "MapIterationAborted"})
WAIT_STATE = "WaitForExport"
CHECK_STATE = "CheckExport"


@dataclass
class Iteration:
    """The events of one Map iteration (one export of one object type), oldest first."""

    index: int
    events: list[Event] = field(default_factory=list)

    @property
    def object_type(self) -> str:
        """The object type this iteration exported (from the first state's input)."""
        for event in self.events:
            details = event.get("stateEnteredEventDetails")
            if details and "input" in details:
                return str(json.loads(details["input"])["objectType"])
        raise ValueError(f"iteration {self.index} has no state input")


def _name(event: Event) -> str | None:
    for key, value in event.items():
        if key.endswith("EventDetails") and isinstance(value, dict) and "name" in value:
            return str(value["name"])
    return None


def split_by_iteration(history: list[Event], map_name: str = EXPORT_MAP) -> tuple[list[Iteration], list[Event]]:
    """The history's iterations of the export Map (by index), and the events they share.

    Shared are the events outside the Map and the Map's own (entered, started, succeeded, exited).
    A Map inside an iteration (the Distributed Map that counts a large job) belongs to the iteration.
    """
    by_id = {int(event["id"]): event for event in history}

    def previous(event: Event) -> Event | None:
        return by_id.get(int(event.get("previousEventId") or 0))

    def own_event_of_the_map(event: Event) -> bool:
        kind = event["type"]
        if kind in {"MapStateEntered", "MapStateExited"}:
            return _name(event) == map_name
        before = previous(event)
        if kind == "MapStateStarted":
            return before is not None and own_event_of_the_map(before)
        if kind in _MAP_ENDS and before is not None:
            # The export Map ends after its last iteration (or at once when it had none).
            if before["type"] in _ITERATION_ENDS:
                return _name(before) == map_name
            return before["type"] in {"MapStateEntered", "MapStateStarted"} and own_event_of_the_map(before)
        return False

    owner: dict[int, int | None] = {}

    def iteration_of(event_id: int) -> int | None:
        # Walk back iteratively: a 24-hour export chains thousands of events.
        trail: list[int] = []
        found: int | None = None
        current = event_id
        while current and current not in owner:
            event = by_id.get(current)
            if event is None or own_event_of_the_map(event):
                break
            trail.append(current)
            if event["type"] == "MapIterationStarted" and _name(event) == map_name:
                found = int(event["mapIterationStartedEventDetails"]["index"])
                break
            current = int(event.get("previousEventId") or 0)
        else:
            found = owner.get(current)
        for visited in trail:
            owner[visited] = found
        return found

    iterations: dict[int, Iteration] = {}
    shared: list[Event] = []
    for event in history:
        index = iteration_of(int(event["id"]))
        if index is None:
            shared.append(event)
        else:
            iterations.setdefault(index, Iteration(index)).events.append(event)
    return [iterations[index] for index in sorted(iterations)], shared


@dataclass(frozen=True)
class Polling:
    """How one export was polled: its checks, waits, and the check that saw the job end."""

    object_type: str
    data_integration_name: str
    window_start: str
    window_end: str
    events: int
    transitions: int
    checks: int
    waits: list[tuple[datetime, datetime]]
    lambda_calls: list[tuple[str, float]]  # (function ARN, seconds from scheduled to finished)
    seen_at: datetime | None  # when the check that reported the job's end returned
    seen_status: str | None
    waited_at_seen: int | None  # the state machine's clock (sum of waits) at that check
    expected_seconds: tuple[int, int] | None  # what the history predicted (None: no history)
    final_status: str | None  # the export's result: SUCCEEDED, FAILED, ...


def polling_of(iteration: Iteration) -> Polling:
    """What the iteration's history says about its poll loop."""
    events = iteration.events
    checks, transitions = 0, 0
    waits: list[tuple[datetime, datetime]] = []
    lambda_calls: list[tuple[str, float]] = []
    scheduled: dict[int, tuple[str, datetime]] = {}
    started: dict[int, int] = {}
    wait_entered: datetime | None = None
    seen_at: datetime | None = None
    seen_status: str | None = None
    waited: int | None = None
    expected: tuple[int, int] | None = None
    first_output: dict[str, Any] | None = None
    last_output: dict[str, Any] = {}
    for event in events:
        kind = event["type"]
        if kind.endswith("StateEntered"):
            transitions += 1
            name = event["stateEnteredEventDetails"]["name"]
            if name == CHECK_STATE:
                checks += 1
            if name == WAIT_STATE:
                wait_entered = event["timestamp"]
        elif kind == "WaitStateExited" and wait_entered is not None:
            waits.append((wait_entered, event["timestamp"]))
            wait_entered = None
        elif kind == "LambdaFunctionScheduled":
            scheduled[int(event["id"])] = (event["lambdaFunctionScheduledEventDetails"]["resource"], event["timestamp"])
        elif kind == "LambdaFunctionStarted":
            started[int(event["id"])] = int(event["previousEventId"])
        elif kind in {"LambdaFunctionSucceeded", "LambdaFunctionFailed", "LambdaFunctionTimedOut"}:
            origin = scheduled.get(started.get(int(event["previousEventId"]), -1))
            if origin is not None:
                lambda_calls.append((origin[0], (event["timestamp"] - origin[1]).total_seconds()))
        elif kind == "TaskStateExited":
            details = event["stateExitedEventDetails"]
            output = json.loads(details.get("output") or "{}")
            if isinstance(output, dict):
                first_output = first_output or output
                last_output = output
                if details["name"] == CHECK_STATE and seen_at is None and output.get("status") != "IN_PROGRESS":
                    seen_at, seen_status = event["timestamp"], str(output.get("status"))
                    waited = int(output["poll"]["waitedSeconds"])
                if details["name"] == CHECK_STATE and output.get("poll", {}).get("expectedSeconds"):
                    low, high = output["poll"]["expectedSeconds"]
                    expected = (int(low), int(high))
    start = first_output or {}
    window = start.get("window") or {}
    return Polling(
        object_type=iteration.object_type,
        data_integration_name=str(start.get("dataIntegrationName", "")),
        window_start=str(window.get("start", "")),
        window_end=str(window.get("end", "")),
        events=len(events),
        transitions=transitions,
        checks=checks,
        waits=waits,
        lambda_calls=lambda_calls,
        seen_at=seen_at,
        seen_status=seen_status,
        waited_at_seen=waited,
        expected_seconds=expected,
        final_status=str(last_output["status"]) if "status" in last_output else None,
    )


@dataclass(frozen=True)
class DetectionLag:
    """From a job's end to the check that saw it, in the pipeline's time (seconds)."""

    seconds: float  # waits counted at their scaled length, everything else at real speed (as on AWS)
    raw_seconds: float  # the whole real interval divided by the scale (Lambda round trips inflated)
    in_waits_seconds: float  # only the part spent in Wait states (the schedule's own share of the lag)


def detection_lag(
    job_end: datetime, seen_at: datetime, waits: list[tuple[datetime, datetime]], time_scale: float
) -> DetectionLag:
    """The lag between a job's end and the check that saw it, converted back from scaled time.

    Offline, a Wait lasts `time_scale` of its seconds but a Lambda runs at real speed. Within the
    interval, time spent in Waits is divided by the scale and the rest (Lambda round trips, state
    transitions) counted as it is, which is what the same interval would last on AWS.
    """
    span = (seen_at - job_end).total_seconds()
    in_waits = sum(
        max(0.0, (min(end, seen_at) - max(begin, job_end)).total_seconds()) for begin, end in waits if end > job_end
    )
    return DetectionLag(
        seconds=in_waits / time_scale + (span - in_waits),
        raw_seconds=span / time_scale,
        in_waits_seconds=in_waits / time_scale,
    )


def poll_overhead_seconds(waits: list[tuple[datetime, datetime]]) -> list[float]:
    """Real seconds between one wait's end and the next wait's start: the unscaled part of each poll."""
    return [(nxt[0] - cur[1]).total_seconds() for cur, nxt in pairwise(waits)]
