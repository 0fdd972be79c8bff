"""Run deployed Lambda functions in worker processes, one sandbox per concurrent invocation.

moto stores functions but, without Docker, only echoes payloads. `moto_patches` routes every
invocation to `LambdaRuntime.invoke`, which hands it to a warm worker of that function (or starts
one: `local.harness.sandbox`). Each worker is a Lambda sandbox of its own: the function's deployed
environment plus the Lambda runtime's variables and its role's temporary credentials (from the
`sandbox_environment` callback), its code folder as the task root, its layers on sys.path, one
invocation at a time, reused while warm. Overlapping invocations start more workers, up to
`max_workers_per_function`; beyond that an invocation waits for a free one.

What AWS does that is modelled here: the function's `Timeout` (the worker is killed and the
invocation fails with `Sandbox.Timedout`), a process that exits mid-invocation
(`Runtime.ExitError`), errors as `x-amz-function-error: Unhandled` with `{errorMessage, errorType,
stackTrace}` where errorType is the Python exception's class name (what ASL Retry/Catch match), and
a response over 6 MB. The init (imports) is not counted against the Timeout, as on AWS.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import selectors
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

LOG = logging.getLogger("local.harness.lambda")

# The folder that holds the `local` package: the worker module is imported from there.
_PROJECT_ROOT = str(Path(__file__).resolve().parents[2])
SYNC_RESPONSE_LIMIT_BYTES = 6 * 1024 * 1024
DEFAULT_INIT_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class LocalFunction:
    """Where a deployed function's code lives on disk."""

    logical_id: str
    code_dir: Path
    layer_dirs: tuple[Path, ...] = ()


@dataclass(frozen=True)
class DeployedConfig:
    """The parts of moto's function configuration a sandbox needs (intrinsics resolved)."""

    function_name: str
    function_arn: str
    handler: str
    timeout: int
    memory_size: int
    environment: Mapping[str, str]
    region: str
    role_arn: str = ""

    def key(self) -> str:
        """Identity of the configuration: a worker started for another one is not reused."""
        return json.dumps([self.function_arn, self.handler, self.timeout, self.memory_size, dict(self.environment)])


@dataclass
class InvocationResult:
    """What the Lambda service returns: the payload and, on an error, the function error kind."""

    payload: bytes
    function_error: str | None = None


@dataclass(frozen=True)
class InvocationRecord:
    """One finished invocation, for tests and benchmarks."""

    function_name: str
    logical_id: str
    request_id: str
    cold_start: bool
    duration_ms: float
    max_rss_kb: int
    error_type: str | None


class LogSink(Protocol):
    """Where the handlers' stdout and stderr lines go."""

    def write_line(self, function_name: str, line: bytes) -> None:
        """Write one line (with its newline) a handler printed."""


class StderrSink:
    """Handler output to this process's stderr (whatever `sys.stderr` is at the time: pytest captures it)."""

    def write_line(self, function_name: str, line: bytes) -> None:
        """Write the line to sys.stderr."""
        sys.stderr.write(line.decode("utf-8", "replace"))


class FileSink:
    """Handler output appended to a file (the demo's `.local-state/demo-lambdas.log`)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._file: IO[bytes] = path.open("ab")

    def write_line(self, function_name: str, line: bytes) -> None:
        """Append the line and flush, so the file is readable while the stack runs."""
        with self._lock:
            self._file.write(line)
            self._file.flush()

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._file.close()


@dataclass
class CrashAfterSideEffect:
    """Fault: the handler runs to completion, then the sandbox dies and Lambda reports Runtime.ExitError.

    `count` crashes the next `count` invocations; `probability` crashes each invocation with that
    chance, drawn from a RNG seeded with `seed` (so a run is reproducible).
    """

    probability: float = 0.0
    count: int = 0
    seed: int = 0
    _random: random.Random = field(init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError("probability must be within [0, 1]")
        if self.count < 0:
            raise ValueError("count must not be negative")
        self._random = random.Random(self.seed)

    def strikes(self) -> bool:
        """Whether this invocation crashes (consumes one count, or one draw)."""
        with self._lock:
            if self.count > 0:
                self.count -= 1
                return True
            return self.probability > 0 and self._random.random() < self.probability


def error_payload(error_type: str, message: str, stack: list[str] | None = None) -> bytes:
    """The body Lambda returns for a failed invocation."""
    return json.dumps({"errorMessage": message, "errorType": error_type, "stackTrace": stack or []}).encode()


class _WorkerGone(Exception):
    """The worker process ended (or closed its pipe) before answering."""


class _WorkerTimedOut(Exception):
    """The worker did not answer before the deadline."""


class _Worker:
    """One sandbox process and its two protocol pipes."""

    def __init__(self, config: DeployedConfig, function: LocalFunction, env: dict[str, str], sink: LogSink) -> None:
        self.config = config
        self.config_key = config.key()
        self.generation = 0
        self.used = False
        self.init_error: dict[str, Any] | None = None
        request_read, request_write = os.pipe()
        response_read, response_write = os.pipe()
        try:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "local.harness.sandbox",
                    "--requests",
                    str(request_read),
                    "--responses",
                    str(response_write),
                    "--bootstrap-path",
                    _PROJECT_ROOT,
                ],
                pass_fds=(request_read, response_write),
                env=env,
                cwd=function.code_dir,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
        finally:
            os.close(request_read)
            os.close(response_write)
        self._requests = os.fdopen(request_write, "wb")
        self._responses = os.fdopen(response_read, "rb")
        self._log_thread = threading.Thread(
            target=self._copy_logs, args=(sink,), name=f"lambda-log-{config.function_name}", daemon=True
        )
        self._log_thread.start()

    def _copy_logs(self, sink: LogSink) -> None:
        assert self.process.stdout is not None
        for line in iter(self.process.stdout.readline, b""):
            try:
                sink.write_line(self.config.function_name, line)
            except Exception:  # a closed sink must not kill the copier while the worker still prints
                LOG.debug("log sink refused a line", exc_info=True)

    def send(self, message: dict[str, Any]) -> None:
        try:
            self._requests.write(json.dumps(message).encode() + b"\n")
            self._requests.flush()
        except (BrokenPipeError, ValueError, OSError) as error:
            raise _WorkerGone(str(error)) from error

    def receive(self, timeout: float) -> dict[str, Any]:
        with selectors.DefaultSelector() as selector:
            selector.register(self._responses, selectors.EVENT_READ)
            if not selector.select(max(0.0, timeout)):
                raise _WorkerTimedOut()
        line = self._responses.readline()
        if not line.endswith(b"\n"):
            raise _WorkerGone("the worker closed its response pipe")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def exit_status(self, wait: float = 5.0) -> str:
        try:
            code = self.process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            self.kill()
            return "signal: killed"
        if code < 0:
            return f"signal: {signal.Signals(-code).name.removeprefix('SIG').lower()}"
        return f"exit status {code}"

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self._requests, self._responses):
            with contextlib.suppress(OSError):
                stream.close()
        self._log_thread.join(timeout=5)


class _FunctionPool:
    """The warm workers of one function and how many exist."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.idle: list[_Worker] = []
        self.alive = 0
        self.warming = 0  # sandboxes being started ahead of invocations (prewarm)
        self.generation = 0
        self.condition = threading.Condition()

    def take_idle_or_slot(self, config_key: str) -> _Worker | None:
        """A warm worker of this configuration, or None once a slot for a new one is reserved."""
        stale: list[_Worker] = []
        try:
            with self.condition:
                while True:
                    while self.idle:
                        worker = self.idle.pop()
                        if worker.config_key == config_key and worker.process.poll() is None:
                            return worker
                        stale.append(worker)  # another configuration (or dead): never reused
                        self.alive -= 1
                    if self.warming == 0 and self.alive < self.cap:
                        self.alive += 1
                        return None
                    self.condition.wait()  # a warming sandbox or a busy one will be free
        finally:
            _kill_later(stale)

    def give_back(self, worker: _Worker, reusable: bool) -> None:
        with self.condition:
            if reusable and worker.generation == self.generation and worker.process.poll() is None:
                self.idle.append(worker)
            else:
                self.alive -= 1
                _kill_later([worker])
            self.condition.notify()

    def reserve_warming(self) -> int | None:
        """Reserve a slot for a prewarmed sandbox when none is idle or warming; its generation, or None."""
        with self.condition:
            if self.idle or self.warming or self.alive >= self.cap:
                return None
            self.alive += 1
            self.warming += 1
            return self.generation

    def warmed(self, worker: _Worker | None) -> None:
        with self.condition:
            self.warming -= 1
            if worker is not None and worker.generation == self.generation and worker.process.poll() is None:
                self.idle.append(worker)
            else:
                self.alive -= 1
                if worker is not None:
                    _kill_later([worker])
            self.condition.notify_all()

    def release_slot(self) -> None:
        with self.condition:
            self.alive -= 1
            self.condition.notify()

    def make_cold(self) -> list[_Worker]:
        with self.condition:
            self.generation += 1
            idle, self.idle = self.idle, []
            self.alive -= len(idle)
            self.condition.notify_all()
            return idle


def _kill_later(workers: list[_Worker]) -> None:
    for worker in workers:
        worker.kill()


def _lambda_runtime_environment(config: DeployedConfig, log_stream: str) -> dict[str, str]:
    """The variables the Lambda Python runtime sets in every sandbox."""
    return {
        "AWS_REGION": config.region,
        "AWS_DEFAULT_REGION": config.region,
        "AWS_LAMBDA_FUNCTION_NAME": config.function_name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.memory_size),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{config.function_name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
        "AWS_EXECUTION_ENV": "AWS_Lambda_python",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "_HANDLER": config.handler,
        "TZ": ":UTC",
        "LANG": "en_US.UTF-8",
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        # There is no X-Ray daemon offline.
        "POWERTOOLS_TRACE_DISABLED": "true",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
    }


@dataclass
class LambdaRuntime:
    """Registry of local functions and the worker pools moto's Lambda backend invokes."""

    sandbox_environment: Callable[[DeployedConfig], Mapping[str, str]] = lambda config: {}
    log_sink: LogSink = field(default_factory=StderrSink)
    max_workers_per_function: int = 10
    init_timeout_seconds: float = DEFAULT_INIT_TIMEOUT_SECONDS
    functions: dict[str, LocalFunction] = field(default_factory=dict)
    invocations: list[InvocationRecord] = field(default_factory=list)
    _pools: dict[str, _FunctionPool] = field(default_factory=dict)
    _configs: dict[str, DeployedConfig] = field(default_factory=dict)
    _faults: dict[str, CrashAfterSideEffect] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def register(self, function_name: str, function: LocalFunction) -> None:
        """Make invocations of the deployed `function_name` run the code in `function.code_dir`."""
        with self._lock:
            self.functions[function_name] = function
            self._pools.setdefault(function_name, _FunctionPool(self.max_workers_per_function))

    def unregister(self, function_name: str) -> None:
        """Forget a function (its stack was rolled back or deleted) and stop its sandboxes."""
        with self._lock:
            self.functions.pop(function_name, None)
            self._configs.pop(function_name, None)
            pool = self._pools.pop(function_name, None)
        if pool is not None:
            _kill_later(pool.make_cold())

    def knows(self, function_name: str) -> bool:
        """Whether `function_name` (as deployed) has local code registered."""
        return function_name in self.functions

    def crash_after_side_effect(self, function: str, fault: CrashAfterSideEffect | None) -> None:
        """Install (or with None remove) the crash fault on a function (deployed name or logical id)."""
        name = self._resolve(function)
        with self._lock:
            if fault is None:
                self._faults.pop(name, None)
            else:
                self._faults[name] = fault

    def _resolve(self, function: str) -> str:
        if function in self.functions:
            return function
        for name, local in self.functions.items():
            if local.logical_id == function:
                return name
        raise KeyError(f"No function {function!r}; known: {sorted(f.logical_id for f in self.functions.values())}")

    def make_cold(self, prewarm: bool = False) -> None:
        """Kill every idle worker; busy ones are killed when they finish: the next invocations start cold.

        With `prewarm`, a fresh sandbox of each function already invoked or prewarmed is started in
        the background: it runs its init (the imports) before the next invocation needs it, as a
        cold start would, but off the invocation's clock.
        """
        for pool in list(self._pools.values()):
            _kill_later(pool.make_cold())
        if prewarm:
            for config in list(self._configs.values()):
                self.prewarm(config)

    def prewarm(self, config: DeployedConfig) -> None:
        """Start one sandbox of the function in the background unless one is idle or starting."""
        if config.function_name not in self.functions:
            return
        self._configs[config.function_name] = config
        pool = self._pools[config.function_name]
        generation = pool.reserve_warming()
        if generation is None:
            return
        function = self.functions[config.function_name]

        def warm() -> None:
            worker: _Worker | None = None
            try:
                worker, init_error = self._start_worker(config, function, generation)
                worker.init_error = init_error
            except Exception:
                LOG.warning("prewarming %s failed", config.function_name, exc_info=True)
            pool.warmed(worker)

        threading.Thread(target=warm, name=f"prewarm-{config.function_name}", daemon=True).start()

    def stop(self) -> None:
        """Kill every worker."""
        self.make_cold()

    def workers(self, function: str) -> int:
        """How many sandboxes of a function exist now (warm or busy)."""
        return self._pools[self._resolve(function)].alive

    def invoke(self, config: DeployedConfig, payload: bytes | str | None) -> InvocationResult:
        """Run one invocation in a sandbox of the function; errors come back as Lambda reports them."""
        function = self.functions[config.function_name]
        pool = self._pools[config.function_name]
        self._configs[config.function_name] = config
        request_id = str(uuid.uuid4())
        worker = pool.take_idle_or_slot(config.key())
        cold = worker is None or not worker.used
        if worker is not None and worker.init_error is not None:
            # A prewarmed sandbox whose init failed: report it like Lambda, and start afresh next time.
            failed_init: dict[str, Any] = worker.init_error
            pool.give_back(worker, reusable=False)
            self._record(config, function, request_id, True, 0.0, 0, failed_init["errorType"])
            return InvocationResult(json.dumps(failed_init).encode(), "Unhandled")
        if worker is None:
            try:
                worker, init_error = self._start_worker(config, function, pool.generation)
            except Exception:
                pool.release_slot()
                raise
            if init_error is not None:
                pool.give_back(worker, reusable=False)
                self._record(config, function, request_id, cold, 0.0, 0, init_error["errorType"])
                return InvocationResult(json.dumps(init_error).encode(), "Unhandled")
        worker.used = True
        text = payload.decode() if isinstance(payload, bytes) else (payload or "")
        deadline_ms = int(time.time() * 1000) + config.timeout * 1000
        started = time.monotonic()
        try:
            worker.send({"id": request_id, "payload": text, "deadline_ms": deadline_ms, "request_id": request_id})
            answer = worker.receive(config.timeout)
        except _WorkerTimedOut:
            worker.kill()
            pool.give_back(worker, reusable=False)
            message = f"RequestId: {request_id} Error: Task timed out after {config.timeout:.2f} seconds"
            LOG.info("%s: %s", config.function_name, message)
            self._record(config, function, request_id, cold, config.timeout * 1000.0, 0, "Sandbox.Timedout")
            return InvocationResult(error_payload("Sandbox.Timedout", message), "Unhandled")
        except _WorkerGone:
            status = worker.exit_status()
            pool.give_back(worker, reusable=False)
            message = f"RequestId: {request_id} Error: Runtime exited with error: {status}"
            self._record(
                config, function, request_id, cold, (time.monotonic() - started) * 1000, 0, "Runtime.ExitError"
            )
            return InvocationResult(error_payload("Runtime.ExitError", message), "Unhandled")
        fault = self._faults.get(config.function_name)
        if fault is not None and fault.strikes():
            # The handler finished (its side effects happened); the sandbox dies before replying.
            worker.kill()
            pool.give_back(worker, reusable=False)
            message = f"RequestId: {request_id} Error: Runtime exited with error: signal: killed"
            LOG.info("%s: injected crash after the side effect", config.function_name)
            duration = float(answer.get("duration_ms", 0))
            self._record(config, function, request_id, cold, duration, 0, "Runtime.ExitError")
            return InvocationResult(error_payload("Runtime.ExitError", message), "Unhandled")
        pool.give_back(worker, reusable=True)
        error = answer.get("error")
        duration, rss = float(answer["duration_ms"]), int(answer["max_rss_kb"])
        self._record(config, function, request_id, cold, duration, rss, error["errorType"] if error else None)
        if error is not None:
            LOG.info("%s raised %s: %s", config.function_name, error["errorType"], error["errorMessage"])
            return InvocationResult(json.dumps(error).encode(), "Unhandled")
        body = str(answer["payload"]).encode()
        if len(body) > SYNC_RESPONSE_LIMIT_BYTES:
            message = (
                f"Response payload size ({len(body)} bytes) exceeded maximum allowed payload size "
                f"({SYNC_RESPONSE_LIMIT_BYTES} bytes)."
            )
            return InvocationResult(error_payload("Function.ResponseSizeTooLarge", message), "Unhandled")
        return InvocationResult(body)

    def _start_worker(
        self, config: DeployedConfig, function: LocalFunction, generation: int
    ) -> tuple[_Worker, dict[str, Any] | None]:
        log_stream = f"offline/[$LATEST]{uuid.uuid4().hex}"
        env = {
            **_lambda_runtime_environment(config, log_stream),
            **dict(self.sandbox_environment(config)),
            **{key: str(value) for key, value in config.environment.items()},
            # Only for `python -m local.harness.sandbox` to be found; the worker removes it.
            "PYTHONPATH": _PROJECT_ROOT,
        }
        worker = _Worker(config, function, env, self.log_sink)
        worker.generation = generation
        init = {
            "code_dir": str(function.code_dir),
            "layer_dirs": [str(layer) for layer in function.layer_dirs],
            "handler": config.handler,
            "function_name": config.function_name,
            "function_arn": config.function_arn,
            "memory_size": config.memory_size,
            "log_stream_name": log_stream,
        }
        try:
            worker.send(init)
            ready = worker.receive(self.init_timeout_seconds)
        except _WorkerTimedOut:
            worker.kill()
            message = f"Init of {config.function_name} took longer than {self.init_timeout_seconds:.0f} seconds"
            return worker, {"errorMessage": message, "errorType": "Sandbox.Timedout", "stackTrace": []}
        except _WorkerGone:
            status = worker.exit_status()
            message = f"RequestId: init Error: Runtime exited with error: {status}"
            return worker, {"errorMessage": message, "errorType": "Runtime.ExitError", "stackTrace": []}
        if not ready.get("ready"):
            error: dict[str, Any] = ready["error"]
            LOG.warning("%s: init failed: %s: %s", config.function_name, error["errorType"], error["errorMessage"])
            return worker, error
        return worker, None

    def _record(
        self,
        config: DeployedConfig,
        function: LocalFunction,
        request_id: str,
        cold: bool,
        duration_ms: float,
        max_rss_kb: int,
        error_type: str | None,
    ) -> None:
        record = InvocationRecord(
            function_name=config.function_name,
            logical_id=function.logical_id,
            request_id=request_id,
            cold_start=cold,
            duration_ms=duration_ms,
            max_rss_kb=max_rss_kb,
            error_type=error_type,
        )
        with self._lock:
            self.invocations.append(record)
