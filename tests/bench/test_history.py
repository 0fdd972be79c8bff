"""The benchmark's reading of an execution history: events per export, polls, detection lag, cost.

Histories here are built in the shape moto's interpreter (and AWS) writes them: ids, previousEventId
chains, state entered/exited details with JSON input and output.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bench.cost import PRICES_USD, export_cost
from bench.history import detection_lag, polling_of, split_by_iteration
from bench.meter import RequestMeter
from bench.sizes import DURATIONS, sweep_lengths
from local.iam.operations import ApiCall

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


class HistoryWriter:
    """Appends events the way the interpreter does: each names the event it follows."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.clock = T0

    def add(self, kind: str, after: int, seconds: float = 0.0, **details: Any) -> int:
        self.clock += timedelta(seconds=seconds)
        event = {"id": len(self.events) + 1, "previousEventId": after, "type": kind, "timestamp": self.clock}
        event.update(details)
        self.events.append(event)
        return len(self.events)

    def state(self, kind: str, name: str, after: int, output: dict[str, Any], seconds: float = 0.0) -> int:
        entered = self.add(
            f"{kind}StateEntered", after, stateEnteredEventDetails={"name": name, "input": json.dumps(output)}
        )
        return self.add(
            f"{kind}StateExited",
            entered,
            seconds,
            stateExitedEventDetails={"name": name, "output": json.dumps(output)},
        )

    def task(self, name: str, after: int, output: dict[str, Any], seconds: float = 0.05) -> int:
        entered = self.add(
            "TaskStateEntered", after, stateEnteredEventDetails={"name": name, "input": json.dumps(output)}
        )
        scheduled = self.add(
            "LambdaFunctionScheduled",
            entered,
            lambdaFunctionScheduledEventDetails={"resource": f"arn:aws:lambda:us-east-1:1:function:s-{name}Function"},
        )
        started = self.add("LambdaFunctionStarted", scheduled)
        done = self.add("LambdaFunctionSucceeded", started, seconds)
        return self.add("TaskStateExited", done, stateExitedEventDetails={"name": name, "output": json.dumps(output)})


def export_output(object_type: str, status: str, waited: int, expected: list[int] | None = None) -> dict[str, Any]:
    return {
        "objectType": object_type,
        "dataIntegrationName": f"s-d-{object_type}",
        "window": {"start": "2024-01-01T00:00:00Z", "end": "2024-01-02T00:00:00Z"},
        "status": status,
        "poll": {"waitSeconds": 60, "waitedSeconds": waited, "expectedSeconds": expected},
    }


def two_exports() -> tuple[HistoryWriter, dict[str, int]]:
    """A Map of two exports: `_order` polled three times (seen on the third) and counted by a Distributed
    Map, `_profile` polled once."""
    h = HistoryWriter()
    last = h.add("ExecutionStarted", 0)
    entered = h.add("MapStateEntered", last, stateEnteredEventDetails={"name": "ExportEach", "input": "{}"})
    map_started = h.add("MapStateStarted", entered)
    ends = {}
    for index, (object_type, polls) in enumerate((("_order", 3), ("_profile", 1))):
        iteration = {"name": "ExportEach", "index": index}
        after = h.add("MapIterationStarted", map_started, mapIterationStartedEventDetails=iteration)
        after = h.task("StartExport", after, export_output(object_type, "STARTED", 0))
        for poll in range(1, polls + 1):
            after = h.state("Wait", "WaitForExport", after, {}, seconds=0.6)
            status = "COMPLETED" if poll == polls else "IN_PROGRESS"
            after = h.task("CheckExport", after, export_output(object_type, status, 60 * poll, [100, 300]))
            after = h.state("Choice", "ExportFinished?", after, {})
        if object_type == "_order":  # the Distributed Map's events, as the parent's history shows them
            counting = h.add("MapStateEntered", after, stateEnteredEventDetails={"name": "CountRecords", "input": "{}"})
            run = h.add("MapRunStarted", h.add("MapStateStarted", counting))
            done = h.add("MapRunSucceeded", run, 5.0)
            h.add("MapStateSucceeded", done)
            after = h.add("MapStateExited", done, stateExitedEventDetails={"name": "CountRecords", "output": "{}"})
        after = h.task("IndexExport", after, {"objectType": object_type, "status": "SUCCEEDED"})
        ends[object_type] = h.add("MapIterationSucceeded", after, mapIterationSucceededEventDetails=iteration)
    h.add("MapStateSucceeded", ends["_profile"])
    last = h.add("MapStateExited", ends["_profile"], stateExitedEventDetails={"name": "ExportEach", "output": "{}"})
    h.task("Notify", last, {"status": "SUCCEEDED"})
    return h, ends


def test_each_event_of_a_map_iteration_is_counted_for_its_object_type_and_the_rest_is_shared() -> None:
    h, _ = two_exports()

    iterations, shared = split_by_iteration(h.events)

    assert [(it.index, it.object_type) for it in iterations] == [(0, "_order"), (1, "_profile")]
    # Start (5), polls of 9 (Wait 2, Task 5, Choice 2), the Distributed Map (6), Index (5), iteration start, end.
    assert len(iterations[0].events) == 5 + 3 * 9 + 6 + 5 + 2
    assert len(iterations[1].events) == 5 + 1 * 9 + 5 + 2
    assert [e["type"] for e in shared[:3]] == ["ExecutionStarted", "MapStateEntered", "MapStateStarted"]
    assert {e["type"] for e in shared} >= {"MapStateSucceeded", "MapStateExited"}
    assert "MapRunStarted" in {e["type"] for e in iterations[0].events}
    # The Notify task after the Map chains back through the Map's own events: shared, not _profile's.
    assert "LambdaFunctionSucceeded" in {e["type"] for e in shared}
    assert len(shared) + sum(len(it.events) for it in iterations) == len(h.events)


def test_polling_reads_the_checks_the_check_that_saw_the_end_and_the_prediction() -> None:
    h, _ = two_exports()
    iterations, _ = split_by_iteration(h.events)

    order = polling_of(iterations[0])

    assert order.checks == 3
    assert len(order.waits) == 3
    assert order.seen_status == "COMPLETED"
    assert order.waited_at_seen == 180
    assert order.expected_seconds == (100, 300)
    assert order.final_status == "SUCCEEDED"
    assert order.data_integration_name == "s-d-_order"
    # Start, 3 x (Wait, Check, Choice), Index: every state entered is a billed transition.
    assert order.transitions == 1 + 3 * 3 + 1 + 1  # and the Distributed Map
    assert [arn.rsplit("-", 1)[-1] for arn, _ in order.lambda_calls].count("CheckExportFunction") == 3


def test_a_lag_counts_its_waits_at_their_unscaled_length_and_lambda_time_as_it_is() -> None:
    scale = 0.01
    wait = (T0, T0 + timedelta(seconds=0.6))  # a 60 s wait, offline
    job_end = T0 + timedelta(seconds=0.2)  # 20 s into the wait
    seen = wait[1] + timedelta(seconds=0.05)  # the check that saw it took 50 ms

    lag = detection_lag(job_end, seen, [wait], scale)

    assert lag.seconds == pytest.approx(40 + 0.05)
    assert lag.raw_seconds == pytest.approx(45.0)  # 50 ms of Lambda read as 5 s
    assert lag.in_waits_seconds == pytest.approx(40.0)


def test_a_job_that_ends_during_a_check_is_seen_after_the_rest_of_that_check() -> None:
    wait = (T0, T0 + timedelta(seconds=0.6))
    lag = detection_lag(wait[1] + timedelta(seconds=0.01), wait[1] + timedelta(seconds=0.03), [wait], 0.01)
    assert lag.seconds == pytest.approx(0.02)


def test_the_sweep_covers_1_s_to_24_h_with_the_issues_durations() -> None:
    lengths = sweep_lengths(50)
    assert len(lengths) >= 50
    assert min(lengths) == 1.0 and max(lengths) == 86_400.0
    assert {float(s) for s in DURATIONS.values()} <= set(lengths)
    assert len(set(lengths)) == len(lengths)


def call(service: str, operation: str, path: str = "/", body: bytes = b"", **params: str) -> ApiCall:
    headers = {"Authorization": "AWS4-HMAC-SHA256 Credential=AKIAROLE/20261128/us-east-1/s3/aws4_request"}
    return ApiCall(service, operation, params, path, headers, "123456789012", "us-east-1", body=body)


def test_requests_are_counted_for_the_object_type_they_name_and_the_rest_is_the_stacks() -> None:
    meter = RequestMeter(resolve_role=lambda key: "bench-IndexRole" if key == "AKIAROLE" else None)
    meter.stacks_by_role["bench-IndexRole"] = "bench"
    meter.object_types["bench"] = ("learn_2h", "learn_24h")

    meter(call("s3", "GetObject", "/bucket/exports/1/bench/20261128T120000/a-b/learn_24h/uuid"))
    meter(call("s3", "ListObjectsV2", "/bucket", prefix="exports/1/bench/20261128T120000/a-b/learn_2h/"))
    meter(call("s3", "PutObject", "/bucket/exports/1/bench/20261128T120000/a-b/learn_2h.manifest.json"))
    meter(call("s3", "ListObjectsV2", "/bucket", prefix="exports/1/bench/", delimiter="/"))
    meter(call("dynamodb", "UpdateItem", body=b'{"Key": {"pk": {"S": "EXPORT#bench#learn_2h"}}}'))

    assert meter.of("bench", "learn_2h") == {"s3_put": 2, "s3_get": 0, "dynamodb_write": 1, "dynamodb_read": 0}
    assert meter.of("bench", "learn_24h") == {"s3_put": 0, "s3_get": 1, "dynamodb_write": 0, "dynamodb_read": 0}
    assert meter.of("bench", "")["s3_put"] == 1  # the domain's listing names no object type


def test_the_cost_of_an_export_adds_transitions_lambda_and_requests_at_list_prices() -> None:
    export = {
        "state_transitions": 1000,
        "lambda_invocations": {"CheckExportFunction": 100},
        "requests": {"s3_put": 1000, "s3_get": 1000, "dynamodb_write": 0, "dynamodb_read": 0},
    }
    functions = {"CheckExportFunction": {"memory_mb": 256, "median_warm_ms": 19.2}}

    cost = export_cost(export, functions)

    gb_seconds = 100 * 0.020 * 0.25  # 20 ms billed (whole ms, rounded up) at a quarter GB
    assert cost["lambda_gb_seconds_used"] == pytest.approx(gb_seconds)
    expected = (
        1000 * PRICES_USD["step_functions_standard_per_state_transition"]
        + 100 * PRICES_USD["lambda_per_request"]
        + gb_seconds * PRICES_USD["lambda_arm64_per_gb_second"]
        + 1000 * PRICES_USD["s3_standard_per_put_copy_post_list_request"]
        + 1000 * PRICES_USD["s3_standard_per_get_and_other_request"]
    )
    assert cost["usd"] == pytest.approx(expected, rel=1e-6)
    assert cost["usd"] == pytest.approx(0.025 + 0.00002 + 0.5 * 0.0000133334 + 0.005 + 0.0004, rel=1e-6)


def test_the_crossover_is_where_the_distributed_map_starts_to_win() -> None:
    from bench.indexing import crossover

    # inline faster at 100 and 1,000 files, the Distributed Map faster at 10,000: between the two
    found = crossover({100: (1.0, 3.0), 1000: (2.0, 3.0), 10_000: (20.0, 5.0)})
    assert found is not None and 1000 < found < 10_000
    assert crossover({100: (1.0, 3.0), 1000: (2.0, 3.0)}) is None  # inline wins everywhere
    assert crossover({100: (3.0, 1.0), 1000: (30.0, 3.0)}) is None  # the Distributed Map wins everywhere
