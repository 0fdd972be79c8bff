"""The few moto 5.2.5 internals the harness replaces, in one place, each undone by `MotoPatches.remove`.

- `moto.awslambda_simple.models.LambdaSimpleBackend.invoke`: runs the real handler in-process
  (moto's Docker-less backend only echoes the payload). moto's Step Functions interpreter reads
  `x-amz-function-error` and takes the `errorType` of the body as the ASL error name
  (`StateTaskLambda._from_error` and `StateTaskServiceLambda._from_error`), so a Python exception
  class name is what `Retry`/`Catch` match, as on AWS.
- `moto.stepfunctions.parser.asl.component.state.wait.wait_function.WaitFunction._wait_interval`:
  Wait states sleep `seconds * time_scale`. The original works in whole seconds (`int()` of the
  time waited, then re-waits the remainder), so a float scale cannot be passed through it.
- `moto.stepfunctions.parser.asl.component.common.retry.retrier_decl.time`: the module's `time`
  is swapped for a proxy whose `sleep` is scaled, which scales every Retry interval
  (`RetrierDecl._eval_body` calls `time.sleep(interval_seconds)`).

- `moto.events.models.Rule.send_to_targets`: moto raises NotImplementedError for a state machine
  target, and matches events against DISABLED rules and pattern-less (scheduled) rules. The
  replacement skips those rules as AWS does and hands state machine targets to a callback (the
  OfflineStack starts the execution); other targets (SQS, logs ...) still go to moto's code. So
  PutEvents from anywhere (tests, handlers, an ASL `events:putEvents` task) reaches the state machine.
- `physical_resource_id` added to `moto.events.models.EventBus` (the bus name) and
  `moto.awslambda.models.LayerVersion` (the layer version ARN), which lack it: moto's `Ref` then
  returned the model object itself, so a Rule with `EventBusName: !Ref Bus` crashed create_stack
  and a layer's physical id was empty. These are what `Ref` returns on AWS. (moto's CloudFormation
  still ignores a function's `Layers`; the in-process runtime takes layers from the template.)

`tests/harness/test_harness_moto_internals.py` asserts these still exist with these signatures
(the replacements carry `__wrapped__`, so the originals can be checked while patched).
"""

from __future__ import annotations

import copy
import functools
import logging
import time
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from moto.awslambda import models as lambda_models
from moto.awslambda_simple import models as lambda_simple_models
from moto.events import models as events_models
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.wait.wait_function import wait_function

from local.harness.lambda_runtime import DeployedConfig, LocalLambdaRuntime

LOG = logging.getLogger("local.harness")

_MISSING = object()

# Loggers that are loud for failures the state machine handles (Catch), or for every request.
_NOISY_LOGGERS = ("moto.stepfunctions.parser", "werkzeug")


class _ScaledTime(types.SimpleNamespace):
    """Stands in for the `time` module inside moto's retrier: sleeps are scaled, the rest is real."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self._scale = scale

    def sleep(self, seconds: float) -> None:
        """Sleep `seconds * scale`."""
        time.sleep(max(0.0, seconds * self._scale))

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    @property
    def __wrapped__(self) -> types.ModuleType:
        """The real module (what `inspect.unwrap` and the moto-internals test look for)."""
        return time


def _scaled_wait(scale: float) -> Any:
    @functools.wraps(wait_function.WaitFunction._wait_interval)
    def _wait_interval(self: Any, env: Any, wait_seconds: float) -> None:
        # program_state_event pulses when the execution stops: leave early then, as moto does.
        deadline = time.monotonic() + max(0.0, float(wait_seconds)) * scale
        while env.is_running():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            env.program_state_event.wait(remaining)

    return _wait_interval


StateMachineTarget = Callable[[Any, dict[str, Any], dict[str, Any]], None]
"""Called with (moto Rule, target dict, moto's event dict) for each state machine target hit."""


def _is_state_machine(target: dict[str, Any]) -> bool:
    return str(target.get("Arn", "")).split(":")[2:3] == ["states"]


def _send_to_targets(deliver: StateMachineTarget) -> Any:
    original = events_models.Rule.send_to_targets

    @functools.wraps(original)
    def send_to_targets(rule: Any, original_event: Any, transform_input: bool = True) -> None:
        # On AWS only an ENABLED rule with an event pattern matches put events.
        if rule.state != "ENABLED" or not rule.event_pattern.get_pattern():
            return None
        if not rule.event_pattern.matches_event(original_event):
            return None
        others = [target for target in rule.targets if not _is_state_machine(target)]
        for target in rule.targets:
            if _is_state_machine(target):
                try:
                    deliver(rule, target, original_event)
                except Exception:
                    # A failed target does not fail PutEvents on AWS either.
                    LOG.exception("Starting %s for rule %s failed", target.get("Arn"), rule.name)
        if others:
            # A copy with only the targets moto knows, so concurrent requests see the rule intact.
            rest = copy.copy(rule)
            rest.targets = others
            original(rest, original_event, transform_input)
        return None

    return send_to_targets


@dataclass
class MotoPatches:
    """Installs the harness's replacements into moto's classes (process-wide) and removes them."""

    runtime: LocalLambdaRuntime
    time_scale: float = 1.0
    verbose: bool = False
    on_state_machine_target: StateMachineTarget | None = None
    _saved: list[tuple[Any, str, Any]] = field(default_factory=list)
    _log_levels: dict[str, int] = field(default_factory=dict)

    def apply(self) -> None:
        """Patch moto; call `remove` to restore it."""
        if self._saved:
            raise RuntimeError("moto patches are already applied")
        self._replace(lambda_simple_models.LambdaSimpleBackend, "invoke", self._invoke_method())
        if self.on_state_machine_target is not None:
            self._replace(events_models.Rule, "send_to_targets", _send_to_targets(self.on_state_machine_target))
        self._add_missing(events_models.EventBus, "physical_resource_id", property(lambda bus: bus.name))
        self._add_missing(lambda_models.LayerVersion, "physical_resource_id", property(lambda layer: layer.arn))
        if self.time_scale != 1.0:
            self._replace(wait_function.WaitFunction, "_wait_interval", _scaled_wait(self.time_scale))
            self._replace(retrier_decl, "time", _ScaledTime(self.time_scale))
        if not self.verbose:
            for name in _NOISY_LOGGERS:
                logger = logging.getLogger(name)
                self._log_levels[name] = logger.level
                # The interpreter logs handled task failures at ERROR with full stacks.
                logger.setLevel(logging.CRITICAL if name.startswith("moto") else logging.WARNING)

    def remove(self) -> None:
        """Undo every patch, last first."""
        while self._saved:
            owner, name, original = self._saved.pop()
            if original is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, original)
        for name, level in self._log_levels.items():
            logging.getLogger(name).setLevel(level)
        self._log_levels.clear()

    def _replace(self, owner: Any, name: str, replacement: Any) -> None:
        self._saved.append((owner, name, owner.__dict__[name]))
        setattr(owner, name, replacement)

    def _add_missing(self, owner: type, name: str, addition: Any) -> None:
        # Only where moto has nothing: if a later moto defines it, moto's own wins.
        if not hasattr(owner, name):
            self._saved.append((owner, name, _MISSING))
            setattr(owner, name, addition)

    def _invoke_method(self) -> Any:
        runtime = self.runtime
        original = lambda_simple_models.LambdaSimpleBackend.invoke

        @functools.wraps(original)
        def invoke(
            backend: Any,
            function_name: str,
            qualifier: str | None,
            body: Any,
            headers: Any,
            response_headers: Any,
        ) -> str | bytes | None:
            function = backend.get_function(function_name, qualifier)
            if not runtime.knows(function.function_name):
                # Not from the deployed template: keep moto's echo behaviour.
                return original(backend, function_name, qualifier, body, headers, response_headers)
            config = DeployedConfig(
                function_name=function.function_name,
                function_arn=function.function_arn,
                handler=function.handler,
                timeout=int(function.timeout),
                memory_size=int(function.memory_size),
                environment=dict(function.environment_vars or {}),
                region=function.region,
            )
            result = runtime.invoke(config, body)
            if result.function_error:
                response_headers["x-amz-function-error"] = result.function_error
            return result.payload

        return invoke
