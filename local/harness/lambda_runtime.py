"""Run deployed Lambda functions' real handlers in this process, as the Lambda runtime would.

moto stores functions but, without Docker, only echoes payloads. `moto_patches` routes every
invocation to `LocalLambdaRuntime.invoke`, which finds the function's source folder (from the
template), imports its handler module under a name unique to that function, and calls it with the
function's deployed environment and a Lambda-like context.

os.environ is process-global, so handler calls are serialized by one lock: two Lambdas never run
at the same time (a Map state's parallel iterations take turns; time spent waiting for the lock
does not count against the function's Timeout). A handler that synchronously invokes another
Lambda through the API would wait for that lock forever; after `lock_timeout_seconds` the inner
call gives up and reports `Sandbox.Timedout` instead of hanging the test.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

LOG = logging.getLogger("local.harness.lambda")

# Module names the handlers are imported under start with this, so stop() can drop them.
MODULE_PREFIX = "_offline_lambda_"


@dataclass(frozen=True)
class LocalFunction:
    """Where a deployed function's code lives on disk."""

    logical_id: str
    code_dir: Path
    layer_dirs: tuple[Path, ...] = ()


@dataclass(frozen=True)
class DeployedConfig:
    """The parts of moto's function configuration a handler call needs (intrinsics resolved)."""

    function_name: str
    function_arn: str
    handler: str
    timeout: int
    memory_size: int
    environment: dict[str, str]
    region: str


@dataclass
class InvocationResult:
    """What the Lambda service returns: the payload and, on an error, the function error kind."""

    payload: bytes
    function_error: str | None = None


class LambdaContext:
    """The attributes and method of the Lambda runtime's context object that handlers use."""

    def __init__(self, config: DeployedConfig, request_id: str | None = None) -> None:
        self.function_name = config.function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = config.function_arn
        self.memory_limit_in_mb = config.memory_size
        self.aws_request_id = request_id or str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{config.function_name}"
        self.log_stream_name = f"offline/[$LATEST]{self.aws_request_id.replace('-', '')}"
        self.identity = None
        self.client_context = None
        # Real (unscaled) time: handlers run at full speed, only ASL waits are scaled.
        self._deadline = time.monotonic() + config.timeout

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the function's Timeout, as on AWS."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _error_payload(error_type: str, message: str, stack: list[str]) -> bytes:
    return json.dumps({"errorMessage": message, "errorType": error_type, "stackTrace": stack}).encode()


def _exception_payload(error: BaseException, error_type: str | None = None, skip_frames: int = 0) -> bytes:
    tb = error.__traceback__
    for _ in range(skip_frames):  # drop the runtime's own frames, as AWS shows only the handler's
        tb = tb.tb_next if tb is not None else None
    stack = [line.rstrip("\n") for line in traceback.format_tb(tb)]
    return _error_payload(error_type or type(error).__name__, str(error), stack)


@dataclass
class LocalLambdaRuntime:
    """Registry of local functions and the in-process invoker moto's Lambda backend calls."""

    functions: dict[str, LocalFunction] = field(default_factory=dict)
    # Extra variables every function sees (the Lambda runtime's own, e.g. AWS_REGION).
    base_environment: dict[str, str] = field(default_factory=dict)
    lock_timeout_seconds: float = 120.0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _modules: dict[str, ModuleType] = field(default_factory=dict)
    _set_aside: dict[str, ModuleType] = field(default_factory=dict)
    _added_paths: list[str] = field(default_factory=list)

    def register(self, function_name: str, function: LocalFunction) -> None:
        """Make invocations of the deployed `function_name` run the code in `function.code_dir`."""
        self.functions[function_name] = function

    def knows(self, function_name: str) -> bool:
        """Whether `function_name` (as deployed) has local code registered."""
        return function_name in self.functions

    def isolate_modules(self) -> None:
        """Set aside modules already imported from the functions' code and layer folders.

        Handlers then import their own copies, as a fresh Lambda sandbox would: a module-level
        cache (an lru_cache'd settings object, a boto3 client) never carries one stack's table
        names or endpoint into the next. `restore_modules` puts the set-aside modules back, so
        code that imported them first (e.g. unit tests) keeps the module objects it knows.
        """
        with self._lock:
            for name in self._modules_under_roots():
                self._set_aside.setdefault(name, sys.modules.pop(name))

    def drop_modules(self) -> None:
        """Forget modules imported from the functions' folders: the next invocation is a cold start."""
        with self._lock:
            self._modules.clear()
            for name in self._modules_under_roots():
                del sys.modules[name]

    def restore_modules(self) -> None:
        """Drop this runtime's imports, undo its sys.path additions and `isolate_modules`."""
        self.drop_modules()
        with self._lock:
            sys.modules.update(self._set_aside)
            self._set_aside.clear()
            for folder in self._added_paths:
                if folder in sys.path:
                    sys.path.remove(folder)
            self._added_paths.clear()

    def _modules_under_roots(self) -> list[str]:
        roots = {str(f.code_dir) for f in self.functions.values()}
        roots |= {str(layer) for f in self.functions.values() for layer in f.layer_dirs}
        found = []
        for name, module in list(sys.modules.items()):
            if name.startswith(MODULE_PREFIX):
                found.append(name)
                continue
            locations = [getattr(module, "__file__", None) or "", *list(getattr(module, "__path__", []) or [])]
            if any(loc.startswith(root + os.sep) for loc in locations if loc for root in roots):
                found.append(name)
        return found

    def invoke(self, config: DeployedConfig, payload: bytes | str | None) -> InvocationResult:
        """Run the handler of a registered function on `payload`; errors come back as Lambda does."""
        function = self.functions[config.function_name]
        if not self._lock.acquire(timeout=self.lock_timeout_seconds):
            message = f"{config.function_name} waited {self.lock_timeout_seconds}s for another in-process Lambda"
            return InvocationResult(_error_payload("Sandbox.Timedout", message, []), "Unhandled")
        try:
            with self._function_environment(config):
                return self._call(function, config, payload)
        finally:
            self._lock.release()

    def _call(self, function: LocalFunction, config: DeployedConfig, payload: bytes | str | None) -> InvocationResult:
        try:
            handler = self._load_handler(function, config)
        except _InitError as error:
            LOG.warning("%s: init failed: %s", config.function_name, error.cause)
            return InvocationResult(_exception_payload(error.cause, error.error_type), "Unhandled")
        text = payload.decode() if isinstance(payload, bytes) else (payload or "")
        event = json.loads(text) if text.strip() else {}
        context = LambdaContext(config)
        try:
            result = handler(event, context)
        except Exception as error:
            LOG.info("%s raised %s: %s", config.function_name, type(error).__name__, error)
            LOG.debug("%s traceback", config.function_name, exc_info=True)
            return InvocationResult(_exception_payload(error, skip_frames=1), "Unhandled")
        try:
            return InvocationResult(json.dumps(result).encode())
        except (TypeError, ValueError) as error:
            return InvocationResult(_exception_payload(error, "Runtime.MarshalError"), "Unhandled")

    @contextmanager
    def _function_environment(self, config: DeployedConfig) -> Iterator[None]:
        """Apply the function's environment for the import and the call, then restore os.environ."""
        before = dict(os.environ)
        runtime_env = {
            "AWS_REGION": config.region,
            "AWS_DEFAULT_REGION": config.region,
            "AWS_LAMBDA_FUNCTION_NAME": config.function_name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.memory_size),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{config.function_name}",
            "_HANDLER": config.handler,
            # There is no X-Ray daemon offline; a template may still turn tracing back on.
            "POWERTOOLS_TRACE_DISABLED": "true",
            **self.base_environment,
            **{key: str(value) for key, value in config.environment.items()},
        }
        os.environ.update(runtime_env)
        try:
            yield
        finally:
            # Restore key by key (never clear()): other threads read os.environ meanwhile.
            for key in [key for key in os.environ if key not in before]:
                del os.environ[key]
            for key, value in before.items():
                if os.environ.get(key) != value:
                    os.environ[key] = value

    def _load_handler(self, function: LocalFunction, config: DeployedConfig) -> Callable[..., Any]:
        module_path, _, attribute = config.handler.rpartition(".")
        if not module_path or not attribute:
            raise _InitError(ValueError(f"Bad handler {config.handler!r}"), "Runtime.MalformedHandlerName")
        cache_key = f"{config.function_name}:{config.handler}"
        module = self._modules.get(cache_key)
        if module is None:
            module = self._import(function, module_path)
            self._modules[cache_key] = module
        handler = getattr(module, attribute, None)
        if not callable(handler):
            error = AttributeError(f"Handler {attribute!r} missing on module {module_path!r}")
            raise _InitError(error, "Runtime.HandlerNotFound")
        return handler  # type: ignore[no-any-return]

    def _import(self, function: LocalFunction, module_path: str) -> ModuleType:
        relative = module_path.replace(".", "/")
        candidates = [function.code_dir / f"{relative}.py", function.code_dir / relative / "__init__.py"]
        source = next((path for path in candidates if path.is_file()), None)
        if source is None:
            error = ModuleNotFoundError(f"No module {module_path!r} in {function.code_dir}")
            raise _InitError(error, "Runtime.ImportModuleError")
        # Layers go where the runtime mounts them (/opt/python, /opt): the layer root and python/.
        for layer in function.layer_dirs:
            for folder in (layer / "python", layer):
                if folder.is_dir() and str(folder) not in sys.path:
                    sys.path.append(str(folder))
                    self._added_paths.append(str(folder))
        # Every function's module is app.py: a unique name keeps them apart in sys.modules.
        name = MODULE_PREFIX + re.sub(r"\W", "_", f"{function.logical_id}_{module_path}")
        spec = importlib.util.spec_from_file_location(name, source)
        if spec is None or spec.loader is None:
            raise _InitError(ImportError(f"Cannot load {source}"), "Runtime.ImportModuleError")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        # The task root comes first on sys.path during import, as /var/task does on AWS.
        sys.path.insert(0, str(function.code_dir))
        try:
            spec.loader.exec_module(module)
        except ImportError as error:
            del sys.modules[name]
            raise _InitError(error, "Runtime.ImportModuleError") from error
        except Exception as error:
            del sys.modules[name]
            raise _InitError(error, type(error).__name__) from error
        finally:
            sys.path.remove(str(function.code_dir))
        return module


class _InitError(Exception):
    """A failure while loading a handler, with the error type Lambda would report."""

    def __init__(self, cause: BaseException, error_type: str) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.error_type = error_type
