"""Lambda sandboxes (worker processes) without moto: errors, warm reuse, concurrency, Timeout, crashes, logs."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from local.harness.lambda_runtime import (
    CrashAfterSideEffect,
    DeployedConfig,
    FileSink,
    InvocationResult,
    LambdaRuntime,
    LocalFunction,
)

HANDLERS = """
import os, sys, time, json
CALLS = []
print("init of", os.environ["AWS_LAMBDA_FUNCTION_NAME"])  # stdout during init: a log line

def handler(event, context):
    CALLS.append(1)
    action = event.get("action")
    if action == "rendezvous":  # wait until `count` invocations are inside the handler at once
        folder = event["folder"]
        open(os.path.join(folder, str(os.getpid())), "w").close()
        deadline = time.time() + 20
        while len(os.listdir(folder)) < event["count"] and time.time() < deadline:
            time.sleep(0.02)
        action = "env"
    if action == "env":
        return {"function": os.environ["AWS_LAMBDA_FUNCTION_NAME"], "marker": os.environ.get("MARKER"),
                "key": os.environ.get("AWS_ACCESS_KEY_ID"), "calls": len(CALLS), "pid": os.getpid()}
    if action == "print":
        print("not the result")          # handler output must not corrupt the protocol
        print("to stderr", file=sys.stderr)
        return {"printed": True}
    if action == "sleep":
        time.sleep(event["seconds"])
        return {"slept": True}
    if action == "exit":
        os._exit(3)
    if action == "write":
        with open(event["path"], "a") as f:
            f.write("side effect\\n")
        return {"wrote": True}
    if action == "object":
        return object()
    if action == "big":
        return "x" * (6 * 1024 * 1024 + 10)
    raise ValueError("unknown action " + str(action))
"""


def _config(name: str, timeout: int = 3, marker: str = "", handler: str = "app.handler") -> DeployedConfig:
    arn = f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
    return DeployedConfig(name, arn, handler, timeout, 128, {"MARKER": marker}, "us-east-1", "")


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[LambdaRuntime]:
    code = tmp_path / "fn"
    code.mkdir()
    (code / "app.py").write_text(HANDLERS)
    sink = FileSink(tmp_path / "lambda.log")
    runtime = LambdaRuntime(
        sandbox_environment=lambda config: {"AWS_ACCESS_KEY_ID": f"key-of-{config.function_name}"},
        log_sink=sink,
        max_workers_per_function=4,
    )
    for name in ("first", "second"):
        runtime.register(name, LocalFunction(name.title(), code))
    yield runtime
    runtime.stop()
    sink.close()


def _payload(result: InvocationResult) -> dict[str, object]:
    value = json.loads(result.payload)
    assert isinstance(value, dict)
    return value


@pytest.mark.parametrize(
    ("source", "handler", "error_type"),
    [
        ("import not_a_module_anywhere\n", "app.handler", "Runtime.ImportModuleError"),
        ("x = 1\n", "app.handler", "Runtime.HandlerNotFound"),
        ("raise KeyError('at import')\n", "app.handler", "KeyError"),
        ("def handler(e, c):\n    return e\n", "nope.handler", "Runtime.ImportModuleError"),
        ("def handler(e, c):\n    return e\n", "apphandler", "Runtime.MalformedHandlerName"),
    ],
)
def test_init_failures_are_reported_as_lambda_does(tmp_path: Path, source: str, handler: str, error_type: str) -> None:
    (tmp_path / "app.py").write_text(source)
    runtime = LambdaRuntime()
    runtime.register("fn", LocalFunction("Fn", tmp_path))
    try:
        result = runtime.invoke(_config("fn", handler=handler), b"{}")
    finally:
        runtime.stop()

    assert result.function_error == "Unhandled"
    assert _payload(result)["errorType"] == error_type


def test_handler_errors_carry_the_exception_class_and_unserializable_results_fail(runtime: LambdaRuntime) -> None:
    raised = runtime.invoke(_config("first"), json.dumps({"action": "nope"}))
    marshal = runtime.invoke(_config("first"), json.dumps({"action": "object"}))

    assert (raised.function_error, _payload(raised)["errorType"]) == ("Unhandled", "ValueError")
    assert _payload(raised)["errorMessage"] == "unknown action nope"
    assert any("app.py" in line for line in _payload(raised)["stackTrace"])  # type: ignore[attr-defined]
    assert _payload(marshal)["errorType"] == "Runtime.MarshalError"


def test_a_warm_sandbox_is_reused_and_make_cold_starts_a_new_one(runtime: LambdaRuntime) -> None:
    first = _payload(runtime.invoke(_config("first"), b'{"action": "env"}'))
    second = _payload(runtime.invoke(_config("first"), b'{"action": "env"}'))
    runtime.make_cold()
    cold = _payload(runtime.invoke(_config("first"), b'{"action": "env"}'))

    assert (first["calls"], second["calls"], cold["calls"]) == (1, 2, 1)
    assert first["pid"] == second["pid"] != cold["pid"]
    records = [r for r in runtime.invocations if r.function_name == "first"]
    assert [r.cold_start for r in records] == [True, False, True]
    # each record has a duration and the sandbox's own peak memory (a Python with a handler: < 200 MB)
    assert all(r.duration_ms >= 0 and 5_000 < r.max_rss_kb < 200_000 for r in records)


def test_overlapping_invocations_each_get_their_own_sandbox_and_environment(
    runtime: LambdaRuntime, tmp_path: Path
) -> None:
    # Given invocations of two functions, three of each inside their handlers at once (a Map state)
    results: list[dict[str, object]] = []
    lock = threading.Lock()
    for name in ("first", "second"):
        (tmp_path / name).mkdir()

    def call(name: str) -> None:
        event = {"action": "rendezvous", "folder": str(tmp_path / name), "count": 3}
        result = _payload(runtime.invoke(_config(name, marker=name, timeout=30), json.dumps(event)))
        with lock:
            results.append(result)

    threads = [threading.Thread(target=call, args=(name,)) for name in ("first", "second") * 3]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then every one saw its own function's environment and credentials, never another's
    assert len(results) == 6
    assert all(r["function"] == r["marker"] and r["key"] == f"key-of-{r['function']}" for r in results)
    # and overlapping invocations ran in separate sandboxes (3 per function at most here)
    assert len({r["pid"] for r in results if r["function"] == "first"}) == 3
    assert runtime.workers("First") == 3


def test_handler_output_goes_to_the_log_sink_not_into_the_result(runtime: LambdaRuntime, tmp_path: Path) -> None:
    result = runtime.invoke(_config("first"), b'{"action": "print"}')
    runtime.stop()

    assert _payload(result) == {"printed": True}
    log = (tmp_path / "lambda.log").read_text()
    assert "init of first" in log and "not the result" in log and "to stderr" in log


def test_a_handler_past_its_timeout_is_killed_and_fails_with_sandbox_timedout(runtime: LambdaRuntime) -> None:
    before = _payload(runtime.invoke(_config("first", timeout=1), b'{"action": "env"}'))

    result = runtime.invoke(_config("first", timeout=1), b'{"action": "sleep", "seconds": 5}')
    after = _payload(runtime.invoke(_config("first", timeout=1), b'{"action": "env"}'))

    assert result.function_error == "Unhandled"
    assert _payload(result)["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in str(_payload(result)["errorMessage"])
    # the sandbox was killed: the next invocation is a cold start in a new process
    assert after["calls"] == 1 and after["pid"] != before["pid"]


def test_a_sandbox_that_exits_mid_invocation_reports_runtime_exit_error(runtime: LambdaRuntime) -> None:
    result = runtime.invoke(_config("first"), b'{"action": "exit"}')

    assert result.function_error == "Unhandled"
    assert _payload(result)["errorType"] == "Runtime.ExitError"
    assert "exit status 3" in str(_payload(result)["errorMessage"])
    assert _payload(runtime.invoke(_config("first"), b'{"action": "env"}'))["calls"] == 1


def test_a_response_over_6_mb_fails(runtime: LambdaRuntime) -> None:
    result = runtime.invoke(_config("first"), b'{"action": "big"}')

    assert _payload(result)["errorType"] == "Function.ResponseSizeTooLarge"


def test_crash_after_side_effect_by_count_does_the_work_then_reports_exit_error(
    runtime: LambdaRuntime, tmp_path: Path
) -> None:
    # Given the fault on one function for the next invocation
    runtime.crash_after_side_effect("First", CrashAfterSideEffect(count=1))
    event = json.dumps({"action": "write", "path": str(tmp_path / "effects.txt")})

    crashed = runtime.invoke(_config("first"), event)
    fine = runtime.invoke(_config("first"), event)

    # Then the side effect happened, yet the caller saw Runtime.ExitError; the next call is normal
    assert _payload(crashed)["errorType"] == "Runtime.ExitError"
    assert _payload(fine) == {"wrote": True}
    assert (tmp_path / "effects.txt").read_text().count("side effect") == 2
    # other functions are untouched
    assert runtime.invoke(_config("second"), b'{"action": "env"}').function_error is None


def test_crash_after_side_effect_by_probability_is_reproducible_with_a_seed(runtime: LambdaRuntime) -> None:
    def outcomes(seed: int) -> list[bool]:
        runtime.crash_after_side_effect("first", CrashAfterSideEffect(probability=0.5, seed=seed))
        return [runtime.invoke(_config("first"), b'{"action": "env"}').function_error is None for _ in range(8)]

    first, again = outcomes(7), outcomes(7)

    assert first == again
    assert 0 < first.count(True) < 8
    with pytest.raises(ValueError, match="probability"):
        CrashAfterSideEffect(probability=1.5)
