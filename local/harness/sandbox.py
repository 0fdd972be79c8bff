"""One Lambda sandbox: a worker process that runs one function's handler, one invocation at a time.

Started by `local.harness.lambda_runtime` as `python -m local.harness.sandbox --requests R --responses W`
with the function's whole environment (its deployed variables, the Lambda runtime's variables and the
role's temporary credentials) and its code folder as the working directory. Only the standard library
is imported here, so the handler's own imports are the sandbox's cold start.

Protocol: JSON lines on two dedicated pipes (fds R and W), never on stdout/stderr, which belong to the
handler's logs. The first request is the init (handler, code and layer folders); the worker imports
the handler and answers `{"ready": true}` or the init error. Every later line is an invocation
`{"id", "payload", "deadline_ms", "request_id"}`, answered with `{"id", "payload"}` or
`{"id", "error": {errorMessage, errorType, stackTrace}}`, plus `duration_ms` and `max_rss_kb`.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

# Set by the runtime so the worker module is importable; not part of a Lambda sandbox's environment.
_BOOTSTRAP_VARIABLE = "PYTHONPATH"


class LambdaContext:
    """The attributes and method of the Lambda runtime's context object that handlers use."""

    def __init__(self, init: dict[str, Any], request: dict[str, Any]) -> None:
        self.function_name = str(init["function_name"])
        self.function_version = "$LATEST"
        self.invoked_function_arn = str(init["function_arn"])
        self.memory_limit_in_mb = int(init["memory_size"])
        self.aws_request_id = str(request["request_id"])
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = str(init.get("log_stream_name", ""))
        self.identity = None
        self.client_context = None
        self._deadline_ms = int(request["deadline_ms"])

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the function's Timeout, as on AWS."""
        return max(0, self._deadline_ms - int(time.time() * 1000))


def error_body(error_type: str, message: str, stack: list[str]) -> dict[str, Any]:
    """The body Lambda returns for a failed invocation."""
    return {"errorMessage": message, "errorType": error_type, "stackTrace": stack}


def _exception_body(error: BaseException, error_type: str | None = None, skip_frames: int = 0) -> dict[str, Any]:
    tb = error.__traceback__
    for _ in range(skip_frames):  # drop the runtime's own frames: AWS shows only the handler's
        tb = tb.tb_next if tb is not None else None
    stack = [line.rstrip("\n") for line in traceback.format_tb(tb)]
    return error_body(error_type or type(error).__name__, str(error), stack)


class InitError(Exception):
    """A failure while loading the handler, with the error type Lambda reports."""

    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__(body["errorMessage"])
        self.body = body


def _put_layers_on_path(layer_dirs: list[str]) -> None:
    # Lambda mounts layers under /opt; Python layers are found in /opt/python (and /opt).
    position = 1
    for layer in layer_dirs:
        for folder in (Path(layer) / "python", Path(layer)):
            if folder.is_dir() and str(folder) not in sys.path:
                sys.path.insert(position, str(folder))
                position += 1


def load_handler(code_dir: str, handler: str) -> Callable[..., Any]:
    """Import `module.function` from the code folder as the Lambda Python runtime does."""
    module_path, _, attribute = handler.rpartition(".")
    if not module_path or not attribute:
        raise InitError(error_body("Runtime.MalformedHandlerName", f"Bad handler {handler!r}", []))
    relative = module_path.replace(".", "/")
    candidates = [Path(code_dir) / f"{relative}.py", Path(code_dir) / relative / "__init__.py"]
    source = next((path for path in candidates if path.is_file()), None)
    if source is None:
        message = f"Unable to import module '{module_path}': No module named '{module_path}'"
        raise InitError(error_body("Runtime.ImportModuleError", message, []))
    spec = importlib.util.spec_from_file_location(module_path, source)
    if spec is None or spec.loader is None:
        raise InitError(error_body("Runtime.ImportModuleError", f"Cannot load {source}", []))
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_path] = module
    try:
        spec.loader.exec_module(module)
    except ImportError as error:
        message = f"Unable to import module '{module_path}': {error}"
        raise InitError(_exception_body(error, "Runtime.ImportModuleError") | {"errorMessage": message}) from error
    except Exception as error:
        raise InitError(_exception_body(error)) from error
    function = getattr(module, attribute, None)
    if not callable(function):
        message = f"Handler '{attribute}' missing on module '{module_path}'"
        raise InitError(error_body("Runtime.HandlerNotFound", message, []))
    return function  # type: ignore[no-any-return]


def _peak_rss_kb() -> int:
    """The sandbox's peak resident memory in KB.

    VmHWM belongs to this address space only; getrusage's ru_maxrss also counts the harness
    process the worker was forked from (Linux keeps it across execve), so it is the fallback.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _send(stream: BinaryIO, message: dict[str, Any]) -> None:
    stream.write(json.dumps(message).encode() + b"\n")
    stream.flush()


def _invoke(handler: Callable[..., Any], init: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    text = request.get("payload") or ""
    started = time.perf_counter()
    answer: dict[str, Any] = {"id": request["id"]}
    try:
        event = json.loads(text) if text.strip() else {}
        result = handler(event, LambdaContext(init, request))
    except Exception as error:
        answer["error"] = _exception_body(error, skip_frames=1)
    else:
        try:
            answer["payload"] = json.dumps(result)
        except (TypeError, ValueError) as error:
            message = f"Unable to marshal response: {error}"
            answer["error"] = error_body("Runtime.MarshalError", message, [])
    answer["duration_ms"] = (time.perf_counter() - started) * 1000
    answer["max_rss_kb"] = _peak_rss_kb()
    return answer


def serve(requests: BinaryIO, responses: BinaryIO) -> int:
    """Init, then answer invocations until the runtime closes the request pipe."""
    line = requests.readline()
    if not line:
        return 0
    init = json.loads(line)
    _put_layers_on_path(list(init.get("layer_dirs", [])))
    try:
        handler = load_handler(str(init["code_dir"]), str(init["handler"]))
    except InitError as failure:
        _send(responses, {"ready": False, "error": failure.body})
        return 1
    _send(responses, {"ready": True, "max_rss_kb": _peak_rss_kb()})
    while line := requests.readline():
        request = json.loads(line)
        os.environ["AWS_LAMBDA_REQUEST_ID"] = str(request["request_id"])
        _send(responses, _invoke(handler, init, request))
        sys.stdout.flush()
        sys.stderr.flush()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the worker process."""
    parser = argparse.ArgumentParser(prog="python -m local.harness.sandbox")
    parser.add_argument("--requests", type=int, required=True)
    parser.add_argument("--responses", type=int, required=True)
    parser.add_argument("--bootstrap-path", default="")
    args = parser.parse_args(argv)
    # The task root (the working directory) stays first; the harness's own folder goes away.
    os.environ.pop(_BOOTSTRAP_VARIABLE, None)
    if args.bootstrap_path:
        sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or ".") != args.bootstrap_path]
    sys.path.insert(0, os.getcwd())
    with os.fdopen(args.requests, "rb") as requests, os.fdopen(args.responses, "wb") as responses:
        return serve(requests, responses)


if __name__ == "__main__":
    sys.exit(main())
