"""`OfflineStack`: a SAM application deployed into moto, its state machines executed for real.

The façade tests and the demo use. The work is done by the rooms behind it: `account.OfflineAccount`
(moto and the emulator on 127.0.0.1, IAM, the Lambda sandboxes, the moto patches),
`deployment.deploy` (template -> stack), `executions` (start, wait, history) and `firing`
(schedules and rules, with roles, retries and dead-letter queues). A second stack can be deployed
into the same account with `add_stack` (both `samconfig.toml` environments side by side).

moto's backends are process-global, so only one OfflineStack may run in a process at a time.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from local.durations import scaled_wall_clock_rules
from local.harness import executions
from local.harness.account import DEFAULT_ACCOUNT_ID, OfflineAccount
from local.harness.deployment import Deployment, StackResource, TemplateCustomizer, deploy, remove
from local.harness.firing import Delivery, DeliveryFailed, FunctionTick, execution_name
from local.harness.lambda_runtime import CrashAfterSideEffect, InvocationRecord
from local.harness.lifecycle import LifecycleRun, apply_lifecycle
from local.harness.service_faults import ServiceFaults
from local.harness.triggers import scheduled_event, target_input
from local.iam.principals import Credentials

LOG = logging.getLogger("local.harness")
HOST = "127.0.0.1"
# The schedule `fire_schedule()` fires when none is named: the template's export tick (SAM: state machine + event name).
DEFAULT_SCHEDULE = "ExportStateMachineSchedule"
# The state machine `start_execution()` starts when none is named: the template's export workflow
# (its maintenance state machine is named when meant).
DEFAULT_STATE_MACHINE = "ExportStateMachine"

__all__ = [
    "DeliveryFailed",
    "DeployedStack",
    "FunctionTickFailed",
    "LifecycleRun",
    "OfflineStack",
    "PutEventsResult",
    "StackResource",
]


@dataclass
class PutEventsResult:
    """What `put_events` did: the executions its rules started, and PutEvents' reply."""

    execution_arns: list[str] = field(default_factory=list)
    response: dict[str, Any] = field(default_factory=dict)


class DeployedStack:
    """One stack of the offline account: its outputs, executions and triggers."""

    def __init__(self, account: OfflineAccount, deployment: Deployment) -> None:
        self.account = account
        self.deployment = deployment

    # ----------------------------------------------------------------- stack facts
    @property
    def stack_name(self) -> str:
        """The CloudFormation stack name."""
        return self.deployment.stack_name

    @property
    def outputs(self) -> dict[str, str]:
        """The template's Outputs, name -> value, as `describe_stacks` returns them."""
        return dict(self.deployment.outputs)

    @property
    def resources(self) -> dict[str, StackResource]:
        """Every deployed resource, by logical id (moto's and the provisioned ones)."""
        return self.deployment.resources

    def physical_id(self, logical_id: str) -> str:
        """The physical id (name or ARN) of a logical resource of the deployed template."""
        return self.deployment.physical_id(logical_id)

    def state_machine_arn(self, logical_id: str | None = None) -> str:
        """The ARN of a state machine of the stack (the only one, or the export's, when `logical_id` is None)."""
        if logical_id is not None:
            return self.physical_id(logical_id)
        machines = self.deployment.of_type("AWS::StepFunctions::StateMachine")
        defaults = [m for m in machines if m.logical_id == DEFAULT_STATE_MACHINE]
        if len(machines) > 1 and defaults:
            machines = defaults
        if len(machines) != 1:
            raise ValueError(f"Name the state machine: {[m.logical_id for m in machines]}")
        return machines[0].physical_id

    def client(self, service: str, credentials: Credentials | None = None) -> Any:
        """A boto3 client for `service` on the offline endpoints (the administrator's, by default)."""
        return self.account.client(service, credentials)

    # ----------------------------------------------------------------- executions
    def start_execution(
        self, input: dict[str, Any] | str | None = None, name: str | None = None, state_machine: str | None = None
    ) -> str:
        """Start an execution (of `state_machine`: logical id or ARN; default the export's); return its ARN."""
        arn = (
            state_machine
            if state_machine and state_machine.startswith("arn:")
            else self.state_machine_arn(state_machine)
        )
        return executions.start_execution(self.client("stepfunctions"), arn, input, name)

    def wait_execution(self, execution_arn: str, timeout: float = 60) -> dict[str, Any]:
        """Poll until the execution leaves RUNNING; return `describe_execution`'s answer."""
        return executions.wait_execution(self.client("stepfunctions"), execution_arn, timeout)

    def run_execution(
        self, input: dict[str, Any] | str | None = None, timeout: float = 60, **kwargs: Any
    ) -> dict[str, Any]:
        """Start an execution and wait for it: `wait_execution(start_execution(...))`."""
        return self.wait_execution(self.start_execution(input, **kwargs), timeout)

    def execution_history(self, execution_arn: str) -> list[dict[str, Any]]:
        """Every history event of an execution, oldest first."""
        return executions.execution_history(self.client("stepfunctions"), execution_arn)

    # ----------------------------------------------------------------- triggers
    def _schedules(self, target_prefix: str = "arn:aws:states:") -> dict[str, dict[str, Any]]:
        """The stack's Scheduler schedules (as `get_schedule` describes them) whose target ARN starts so."""
        scheduler = self.client("scheduler")
        found = {}
        for resource in self.deployment.of_type("AWS::Scheduler::Schedule"):
            group = self._schedule_group(resource.logical_id)
            described = scheduler.get_schedule(Name=resource.physical_id, GroupName=group)
            if described["Target"]["Arn"].startswith(target_prefix):
                found[resource.logical_id] = described
        return found

    def run_function_schedule(self, logical_id: str, scheduled_time: datetime, *, force: bool = False) -> Any:
        """Fire a schedule whose target is a Lambda function (e.g. the raw partition job) at `scheduled_time`.

        The function runs as the schedule would run it (the schedule's role, Scheduler's Input with
        `<aws.scheduler.scheduled-time>` filled in); returns the function's result. A function error
        raises `FunctionTickFailed` with the error body.
        """
        schedules = self._schedules("arn:aws:lambda:")
        if logical_id not in schedules:
            raise KeyError(f"No function schedule {logical_id!r}; function schedules: {sorted(schedules)}")
        schedule = schedules[logical_id]
        _refuse_disabled(logical_id, str(schedule.get("State", "ENABLED")), force)
        tick = self.account.triggers.invoke_schedule(schedule, scheduled_time)
        if tick.function_error:
            raise FunctionTickFailed(f"{logical_id} at {scheduled_time}: {tick.function_error}: {tick.result}", tick)
        return tick.result

    def apply_lifecycle(self, now: datetime, bucket: str | None = None) -> LifecycleRun:
        """Do what S3 lifecycle would have done by `now` to the export bucket (or `bucket`).

        The rules are the bucket's own (GetBucketLifecycleConfiguration), filters included; expiry is
        creation + days rounded up to 00:00 UTC, and happens at the first moment allowed (see `lifecycle`).
        Object creation times are moto's LastModified: the wall clock at PutObject.
        """
        return apply_lifecycle(self.client("s3"), bucket or self.outputs["ExportBucketName"], now)

    def _schedule_group(self, logical_id: str) -> str:
        planned = next(r for r in self.deployment.plan.skipped if r.logical_id == logical_id)
        return str(planned.resolve(self.deployment.hidden).get("GroupName") or "default")

    def _scheduled_rules(self) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
        events = self.client("events")
        found: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        for resource in self.deployment.of_type("AWS::Events::Rule"):
            for bus in events.list_event_buses()["EventBuses"]:
                rules = events.list_rules(EventBusName=bus["Name"])["Rules"]
                for rule in rules:
                    if resource.physical_id not in (rule["Name"], rule["Arn"]) or not rule.get("ScheduleExpression"):
                        continue
                    targets = events.list_targets_by_rule(Rule=rule["Name"], EventBusName=bus["Name"])["Targets"]
                    for target in targets:
                        if target["Arn"].startswith("arn:aws:states:"):
                            found[resource.logical_id] = (rule, target)
        return found

    def schedules(self) -> dict[str, str]:
        """Schedules that target a state machine: logical id -> state machine ARN."""
        found = {logical_id: s["Target"]["Arn"] for logical_id, s in self._schedules().items()}
        for logical_id, (_, target) in self._scheduled_rules().items():
            found[logical_id] = target["Arn"]
        return found

    def fire_schedule(
        self, logical_id: str | None = None, scheduled_time: datetime | None = None, *, force: bool = False
    ) -> str:
        """Do what a schedule does when it fires at `scheduled_time` (default now); return the execution ARN.

        An `AWS::Scheduler::Schedule` (SAM `ScheduleV2`) starts its target with the schedule's role
        and Scheduler's Input keywords; an `AWS::Events::Rule` with a ScheduleExpression sends the
        scheduled event. A DISABLED schedule never fires on AWS: firing one raises unless `force`.
        A tick that cannot start its target after retries raises `DeliveryFailed` (its `outcome`
        says whether the dead-letter queue got it).
        """
        moment = scheduled_time or datetime.now(UTC)
        schedules = self._schedules()
        rules = self._scheduled_rules()
        if logical_id is None:
            candidates = sorted([*schedules, *rules])
            # The template's export tick is the default; its reconcile schedule is named when meant.
            if DEFAULT_SCHEDULE in candidates:
                candidates = [DEFAULT_SCHEDULE]
            if len(candidates) != 1:
                raise ValueError(f"Name the schedule to fire: {candidates}")
            logical_id = candidates[0]
        if logical_id in schedules:
            schedule = schedules[logical_id]
            _refuse_disabled(logical_id, str(schedule.get("State", "ENABLED")), force)
            return _started(self.account.triggers.fire_schedule(schedule, moment))
        if logical_id in rules:
            rule, target = rules[logical_id]
            _refuse_disabled(logical_id, rule.get("State", "ENABLED"), force)
            event = scheduled_event(rule["Arn"], moment, self.account.account_id, self.account.region)
            payload = target_input(target, event, rule["Arn"], rule["Name"])
            return self.start_execution(payload, name=execution_name(rule["Name"][:50]), state_machine=target["Arn"])
        raise KeyError(f"No schedule {logical_id!r}; schedules: {sorted([*schedules, *rules])}")

    def put_events(self, entries: list[dict[str, Any]]) -> PutEventsResult:
        """PutEvents through moto; return it with the executions the matching rules started.

        Rules are matched by moto on the entry's bus; a state machine target is started by the
        harness with the target's role (Input / InputPath / InputTransformer applied); other
        targets (SQS ...) are moto's. Executions a concurrent PutEvents starts meanwhile count too.
        """
        triggers = self.account.triggers
        mine = {m.physical_id for m in self.deployment.of_type("AWS::StepFunctions::StateMachine")}
        with _put_events_lock:
            first = len(triggers.rule_executions)
            response: dict[str, Any] = self.client("events").put_events(Entries=entries)
            started = [arn for arn in triggers.rule_executions[first:] if _machine_of(arn) in mine]
            return PutEventsResult(started, response)

    # ----------------------------------------------------------------- Lambda sandboxes
    def crash_after_side_effect(self, function: str, fault: CrashAfterSideEffect | None) -> None:
        """Make a function's invocations finish their work, then crash (Runtime.ExitError); None removes it."""
        self.account.runtime.crash_after_side_effect(self._function_name(function), fault)

    def _function_name(self, function: str) -> str:
        if function in self.deployment.resources:
            return self.physical_id(function)
        return function


_put_events_lock = threading.Lock()


def _machine_of(execution_arn: str) -> str:
    # arn:aws:states:REGION:ACCOUNT:execution:MACHINE:NAME -> the state machine's ARN
    parts = execution_arn.split(":")
    return ":".join([*parts[:5], "stateMachine", parts[6]])


class FunctionTickFailed(RuntimeError):
    """A schedule's Lambda target answered a function error; `tick` holds its payload and error body."""

    def __init__(self, message: str, tick: FunctionTick) -> None:
        super().__init__(message)
        self.tick = tick


def _at_time_scale(
    time_scale: float, parameters: dict[str, str], customize: TemplateCustomizer | None
) -> TemplateCustomizer:
    """The functions' wall-clock rules scaled as `local.durations` declares, then the caller's `customize`."""
    scaled = scaled_wall_clock_rules(time_scale, parameters)
    if customize is None:
        return scaled
    return lambda template: customize(scaled(template))


def _refuse_disabled(logical_id: str, state: str, force: bool) -> None:
    if state != "ENABLED" and not force:
        raise RuntimeError(f"{logical_id} is {state}: AWS would not fire it (pass force=True to fire anyway)")


def _started(delivery: Delivery) -> str:
    if delivery.execution_arn is None:
        where = (
            f"dead-lettered to {delivery.dead_letter_arn}"
            if delivery.dead_lettered
            else f"lost ({delivery.dropped_reason})"
        )
        raise DeliveryFailed(
            f"{delivery.source_arn} could not start {delivery.target_arn}: {delivery.error_code}: "
            f"{delivery.error_message}; the event was {where}",
            delivery,
        )
    return delivery.execution_arn


class OfflineStack(DeployedStack):
    """Deploy `template_path` into an in-process moto server and run it offline.

    Use as a context manager (or call `start()` / `stop()`):

        with OfflineStack("template.yaml", {"Stage": "test"}, time_scale=0.01) as stack:
            arn = stack.start_execution({"objectType": "_profile"})
            result = stack.wait_execution(arn)
    """

    def __init__(
        self,
        template_path: str | Path,
        parameters: dict[str, str] | None = None,
        *,
        time_scale: float = 1.0,
        emulator: bool | None = None,
        stack_name: str = "offline",
        port: int = 0,
        emulator_port: int = 0,
        region: str = "us-east-1",
        account_id: str = DEFAULT_ACCOUNT_ID,
        verbose: bool = False,
        emulator_options: dict[str, Any] | None = None,
        enforce_iam: bool = True,
        lambda_log: Path | None = None,
        customize: TemplateCustomizer | None = None,
        trigger_retry_attempts: int = 2,
        held_clock: bool = False,
    ) -> None:
        """Configure the stack; nothing starts before `start()`.

        `time_scale` runs the stack that much faster than AWS, as `local.durations` declares: every Wait
        state and Retry interval (0.01: a 60 s Wait takes 0.6 s), the emulated jobs, and the functions'
        wall-clock rules (deployed scaled, with floors); Lambda code runs at wall speed.
        `emulator`: True requires the AppIntegrations emulator, False skips it, None uses it when
        `local.emulator` can be imported. `emulator_options` are further `EmulatorConfig` knobs.
        `enforce_iam=False` turns IAM enforcement off (for debugging a policy problem).
        `lambda_log` sends the handlers' stdout/stderr to a file instead of this process's stderr.
        `customize` changes the transformed CloudFormation template before deployment.
        `held_clock` runs Waits and emulated jobs on a `local.clock.HeldClock`: a poll that is due sees
        exactly the jobs that ended by then, however busy the machine (the benchmark's detection lag).
        """
        self.template_path = Path(template_path).resolve()
        self.parameters = dict(parameters or {})
        self.time_scale = time_scale
        self.region = region
        self.account_id = account_id
        self.verbose = verbose
        self.enforce_iam = enforce_iam
        self._stack_name = stack_name
        self._customize = customize
        self._account_options: dict[str, Any] = {
            "region": region,
            "account_id": account_id,
            "time_scale": time_scale,
            "enforce_iam": enforce_iam,
            "verbose": verbose,
            "port": port,
            "emulator_port": emulator_port,
            "emulator": emulator,
            "emulator_options": emulator_options,
            "lambda_log": lambda_log,
            "trigger_retry_attempts": trigger_retry_attempts,
            "held_clock": held_clock,
        }
        self._account: OfflineAccount | None = None
        self._deployment: Deployment | None = None
        self.others: list[DeployedStack] = []

    @property
    def account(self) -> OfflineAccount:
        """The running offline account (after `start()`)."""
        if self._account is None:
            raise RuntimeError("The offline stack is not started")
        return self._account

    @account.setter
    def account(self, value: OfflineAccount) -> None:
        self._account = value

    @property
    def deployment(self) -> Deployment:
        """The deployment of the primary stack."""
        if self._deployment is None:
            raise RuntimeError("The offline stack is not deployed")
        return self._deployment

    @deployment.setter
    def deployment(self, value: Deployment) -> None:
        self._deployment = value

    @property
    def stack_name(self) -> str:
        """The primary stack's name."""
        return self._stack_name

    @property
    def endpoint_url(self) -> str:
        """moto's endpoint (http://127.0.0.1:PORT)."""
        return self._account.endpoint_url if self._account else ""

    @property
    def appintegrations_endpoint_url(self) -> str | None:
        """The AppIntegrations emulator's endpoint, when it runs."""
        return self._account.appintegrations_endpoint_url if self._account else None

    @property
    def admin_credentials(self) -> Credentials:
        """The administrator's access key (what `python -m local serve` prints)."""
        credentials = self.account.admin_credentials
        assert credentials is not None
        return credentials

    # ----------------------------------------------------------------- lifecycle
    def __enter__(self) -> OfflineStack:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> OfflineStack:
        """Start moto (and the emulator), point the process at them, deploy the template."""
        self._account = OfflineAccount(**self._account_options)
        try:
            self._account.start()
            self._deployment = deploy(
                self._account,
                self.template_path,
                self.parameters,
                self._stack_name,
                _at_time_scale(self.time_scale, self.parameters, self._customize),
            )
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the servers and sandboxes, wipe moto's state, undo the patches, restore the environment."""
        if self._account is not None:
            self._account.stop()
        self._account = None

    def reset(self, cold: bool = False) -> None:
        """Between tests: reset the emulator and clear trigger faults; `cold=True` also makes every Lambda cold.

        Warm sandboxes are kept by default: they hold nothing a test changes (the stack, its
        environment and endpoints stay), and a cold start of every function for every test was most
        of the suite's CPU time. moto itself is not reset: that would delete the deployed stack, so
        tests should use their own keys.
        """
        account = self.account
        if account.emulator is not None:
            account.emulator.reset()
        if cold:
            account.make_cold()
        account.triggers.start_faults.count = 0

    def add_stack(
        self,
        stack_name: str,
        parameters: dict[str, str] | None = None,
        template_path: str | Path | None = None,
        customize: TemplateCustomizer | None = None,
    ) -> DeployedStack:
        """Deploy another stack (default: the same template) into the same account and Region."""
        deployment = deploy(
            self.account,
            Path(template_path).resolve() if template_path else self.template_path,
            dict(parameters or {}),
            stack_name,
            _at_time_scale(self.time_scale, dict(parameters or {}), customize),
        )
        other = DeployedStack(self.account, deployment)
        self.others.append(other)
        return other

    def remove_stack(self, other: DeployedStack) -> None:
        """Delete a stack added with `add_stack` (its resources and sandboxes)."""
        remove(self.account, other.deployment)
        self.others.remove(other)

    # ----------------------------------------------------------------- account-wide facts
    @property
    def emulator_control(self) -> Any:
        """An `EmulatorControl` for the running AppIntegrations emulator."""
        if self.appintegrations_endpoint_url is None:
            raise RuntimeError("The AppIntegrations emulator is not running in this stack")
        from local.emulator import EmulatorControl

        return EmulatorControl(self.appintegrations_endpoint_url)

    @property
    def invocations(self) -> list[InvocationRecord]:
        """Every finished Lambda invocation (duration, peak RSS of the sandbox, error type)."""
        return list(self.account.runtime.invocations)

    @property
    def deliveries(self) -> list[Delivery]:
        """Every schedule tick and rule target delivered (started, dead-lettered or dropped)."""
        return list(self.account.triggers.deliveries)

    @property
    def service_faults(self) -> ServiceFaults:
        """Throttling and internal errors of moto's services for the pipeline's callers (see `service_faults`)."""
        return self.account.service_faults

    def fail_next_trigger_starts(self, count: int, error_code: str = "ThrottlingException") -> None:
        """Make the next `count` StartExecution attempts of schedules and rules fail (e.g. throttled)."""
        faults = self.account.triggers.start_faults
        faults.error_code = error_code
        faults.count = count
