"""`OfflineStack`: a SAM application deployed into moto, its state machines executed for real.

Everything listens on 127.0.0.1 only and every boto3 client of the process (tests and the
in-process handlers) is pointed at it through environment variables, so nothing reaches AWS.

moto's backends are process-global, so only one OfflineStack may run in a process at a time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import time
import urllib.request
import uuid
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import boto3
from moto.core.config import default_user_config
from moto.server import ThreadedMotoServer

from local.harness.lambda_runtime import LocalFunction, LocalLambdaRuntime
from local.harness.moto_patches import MotoPatches
from local.harness.sam import (
    HIDDEN_OUTPUT_PREFIX,
    DeploymentPlan,
    load_template,
    package_template,
    plan_deployment,
    substitute_definition,
    transform_template,
)
from local.harness.triggers import (
    normalize_event,
    render_scheduler_input,
    scheduled_event,
    target_input,
)

LOG = logging.getLogger("local.harness")

HOST = "127.0.0.1"
ARTIFACTS_BUCKET = "offline-harness-artifacts"
DEFAULT_ACCOUNT_ID = "123456789012"  # moto's default account
_TERMINAL_STACK_STATES = {"CREATE_COMPLETE", "CREATE_FAILED", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED"}
_active_lock = threading.Lock()
_active: list[OfflineStack] = []


@dataclass(frozen=True)
class StackResource:
    """One deployed resource of the stack."""

    logical_id: str
    resource_type: str
    physical_id: str


@dataclass
class PutEventsResult:
    """What `OfflineStack.put_events` did: the executions its rules started, and PutEvents' reply."""

    execution_arns: list[str] = field(default_factory=list)
    response: dict[str, Any] = field(default_factory=dict)


def _free_name(prefix: str) -> str:
    # Execution names: 1-80 characters of letters, digits, - and _.
    return re.sub(r"[^A-Za-z0-9_-]", "-", f"{prefix}-{uuid.uuid4().hex[:12]}")[-80:]


class OfflineStack:
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
    ) -> None:
        """Configure the stack; nothing starts before `start()`.

        `time_scale` multiplies every Wait state and Retry interval (0.01: a 60 s Wait takes 0.6 s).
        `emulator`: True requires the AppIntegrations emulator, False skips it, None uses it when
        `local.emulator` can be imported. `emulator_options` are further `EmulatorConfig` knobs.
        """
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.template_path = Path(template_path).resolve()
        self.parameters = dict(parameters or {})
        self.time_scale = time_scale
        self.stack_name = stack_name
        self.region = region
        self.account_id = account_id
        self.verbose = verbose
        self._want_emulator = emulator
        self._emulator_options = dict(emulator_options or {})
        self._port = port
        self._emulator_port = emulator_port
        self._server: ThreadedMotoServer | None = None
        self._emulator: Any = None
        self._saved_env: dict[str, str | None] = {}
        self._saved_config: dict[str, Any] = {}
        self._runtime = LocalLambdaRuntime()
        self._patches: MotoPatches | None = None
        self._plan: DeploymentPlan | None = None
        self._outputs: dict[str, str] = {}
        self._hidden: dict[str, str] = {}
        self.resources: dict[str, StackResource] = {}
        self._rule_executions: list[str] = []
        self._put_events_lock = threading.Lock()
        self.endpoint_url = ""
        self.appintegrations_endpoint_url: str | None = None

    # ----------------------------------------------------------------- lifecycle
    def __enter__(self) -> OfflineStack:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> OfflineStack:
        """Start moto (and the emulator), point the process at them, deploy the template."""
        with _active_lock:
            if _active:
                raise RuntimeError("Another OfflineStack is running in this process (moto state is global)")
            _active.append(self)
        try:
            self._start_moto()
            self._start_emulator()
            self._deploy()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the servers, wipe moto's state, undo the patches and restore the environment."""
        if self._emulator is not None:
            _quietly(self._emulator.stop)
            self._emulator = None
        if self._server is not None:
            _quietly(lambda: self._post("/moto-api/reset", {}))
            _quietly(self._server.stop)
            self._server = None
        if self._patches is not None:
            self._patches.remove()
            self._patches = None
        self._runtime.restore_modules()
        if self._saved_config:
            # The posted config lives in moto's process-global defaults: put back what was there.
            config = cast(dict[str, Any], default_user_config)
            config.clear()
            config.update(self._saved_config)
            self._saved_config = {}
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env = {}
        with _active_lock:
            if self in _active:
                _active.remove(self)

    def reset(self) -> None:
        """Between tests: reset the emulator and make every Lambda cold again.

        Handler and layer modules are imported afresh on their next invocation. moto itself is
        not reset: that would delete the deployed stack, so tests should use their own keys.
        """
        if self._emulator is not None:
            self._emulator.reset()
        self._runtime.drop_modules()

    def _set_env(self, values: dict[str, str | None]) -> None:
        for key, value in values.items():
            if key not in self._saved_env:
                self._saved_env[key] = os.environ.get(key)
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    def _start_moto(self) -> None:
        self._server = ThreadedMotoServer(ip_address=HOST, port=self._port, verbose=False)
        self._server.start()
        _, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{HOST}:{port}"
        self._set_env(
            {
                # moto's Step Functions interpreter calls its own server back on this port.
                "MOTO_PORT": str(port),
                "AWS_ENDPOINT_URL": self.endpoint_url,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_SESSION_TOKEN": "testing",
                "AWS_DEFAULT_REGION": self.region,
                "AWS_REGION": self.region,
                "AWS_PROFILE": None,
                # Never probe the instance metadata address for credentials or region.
                "AWS_EC2_METADATA_DISABLED": "true",
            }
        )
        self._patches = MotoPatches(
            self._runtime,
            time_scale=self.time_scale,
            verbose=self.verbose,
            on_state_machine_target=self._start_from_rule,
        )
        self._patches.apply()
        self._saved_config = json.loads(json.dumps(default_user_config))
        self._post(
            "/moto-api/config",
            {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}},
        )

    def _start_emulator(self) -> None:
        if self._want_emulator is False:
            return
        try:
            from local.emulator import EmulatorConfig, EmulatorServer
        except ImportError:
            if self._want_emulator:
                raise
            LOG.warning("local.emulator is not importable: running without the AppIntegrations emulator")
            return
        self._emulator = EmulatorServer(
            host=HOST,
            port=self._emulator_port,
            s3_endpoint_url=self.endpoint_url,
            region=self.region,
            account_id=self.account_id,
            config=EmulatorConfig(**{"time_scale": self.time_scale, **self._emulator_options}),
        )
        self._emulator.start()
        self.appintegrations_endpoint_url = str(self._emulator.url)
        self._set_env({"AWS_ENDPOINT_URL_APPINTEGRATIONS": self.appintegrations_endpoint_url})

    def _post(self, path: str, body: dict[str, Any]) -> None:
        request = urllib.request.Request(
            self.endpoint_url + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()

    # ----------------------------------------------------------------- deployment
    def client(self, service: str) -> Any:
        """A boto3 client for `service` on this stack's endpoints."""
        return boto3.client(service, region_name=self.region)  # type: ignore[call-overload]

    def _upload(self, hint: str, data: bytes) -> tuple[str, str]:
        key = f"{hint}/{hashlib.sha256(data).hexdigest()[:16]}.zip"
        self.client("s3").put_object(Bucket=ARTIFACTS_BUCKET, Key=key, Body=data)
        return ARTIFACTS_BUCKET, key

    def _deploy(self) -> None:
        started = time.monotonic()
        s3 = self.client("s3")
        s3.create_bucket(Bucket=ARTIFACTS_BUCKET)
        template = load_template(self.template_path)
        packaged, code = package_template(template, self.template_path.parent, self._upload)
        transformed = transform_template(packaged, self.parameters)
        self._plan = plan = plan_deployment(transformed, code)
        if plan.schedules:
            # moto warns it skips them; the harness fires them (fire_schedule), so say that instead.
            warnings.filterwarnings("ignore", "Tried to parse AWS::Scheduler::Schedule", UserWarning)
            LOG.info("Schedules fired by OfflineStack.fire_schedule: %s", [s.logical_id for s in plan.schedules])
        cfn = self.client("cloudformation")
        cfn.create_stack(
            StackName=self.stack_name,
            TemplateBody=json.dumps(plan.template),
            Parameters=[
                {"ParameterKey": k, "ParameterValue": v} for k, v in self._parameter_values(plan.template).items()
            ],
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
        )
        stack = self._wait_stack(cfn)
        for output in stack.get("Outputs", []):
            key, value = output["OutputKey"], output["OutputValue"]
            (self._hidden if key.startswith(HIDDEN_OUTPUT_PREFIX) else self._outputs)[key] = value
        for page in cfn.get_paginator("list_stack_resources").paginate(StackName=self.stack_name):
            for item in page["StackResourceSummaries"]:
                if not item.get("LogicalResourceId"):  # resource types moto skipped
                    continue
                self.resources[item["LogicalResourceId"]] = StackResource(
                    item["LogicalResourceId"], item["ResourceType"], item.get("PhysicalResourceId", "")
                )
        self._register_functions(plan)
        self._create_state_machines(plan)
        LOG.info(
            "Deployed %s into moto at %s in %.1fs", self.template_path, self.endpoint_url, time.monotonic() - started
        )

    def _parameter_values(self, template: dict[str, Any]) -> dict[str, str]:
        """Every declared parameter's value: the override, else the Default.

        Defaults are passed explicitly because moto splits CommaDelimitedList/List<...> values
        only when they are given, not when they come from Default (a Join over a default list
        would otherwise iterate its characters).
        """
        declared: dict[str, Any] = template.get("Parameters") or {}
        unknown = set(self.parameters) - set(declared)
        if unknown:
            raise ValueError(f"Parameters not declared by the template: {sorted(unknown)}")
        values: dict[str, str] = {}
        for name, spec in declared.items():
            if name in self.parameters:
                values[name] = str(self.parameters[name])
            elif "Default" in spec:
                default = spec["Default"]
                values[name] = json.dumps(default) if isinstance(default, bool) else str(default)
        missing = sorted(set(declared) - set(values))
        if missing:
            raise ValueError(f"Template parameters without a value or Default: {missing}")
        return values

    def _wait_stack(self, cfn: Any, timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            stack: dict[str, Any] = cfn.describe_stacks(StackName=self.stack_name)["Stacks"][0]
            if stack["StackStatus"] in _TERMINAL_STACK_STATES:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"Stack {self.stack_name} still {stack['StackStatus']}")
            time.sleep(0.1)
        if stack["StackStatus"] != "CREATE_COMPLETE":
            events = cfn.describe_stack_events(StackName=self.stack_name)["StackEvents"]
            reasons = [
                f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason')}"
                for e in events
                if e.get("ResourceStatusReason")
            ]
            raise RuntimeError(f"Stack {self.stack_name} is {stack['StackStatus']}: {reasons}")
        return stack

    def _register_functions(self, plan: DeploymentPlan) -> None:
        resources = plan.template.get("Resources", {})

        def code_dir(location: Any) -> Path | None:
            if not isinstance(location, dict):
                return None
            local = plan.code.get((str(location.get("S3Bucket")), str(location.get("S3Key"))))
            return local.path if local else None

        for logical_id, resource in resources.items():
            if resource.get("Type") != "AWS::Lambda::Function" or logical_id not in self.resources:
                continue
            props = resource.get("Properties") or {}
            folder = code_dir(props.get("Code"))
            if folder is None:
                LOG.warning("%s has no local code: invocations keep moto's echo behaviour", logical_id)
                continue
            layers: list[Path] = []
            for layer in props.get("Layers") or []:
                ref = layer.get("Ref") if isinstance(layer, dict) else None
                layer_resource = resources.get(ref or "", {})
                layer_dir = code_dir((layer_resource.get("Properties") or {}).get("Content"))
                if layer_dir is None:
                    LOG.warning("%s: layer %s is not local and is not put on sys.path", logical_id, layer)
                else:
                    layers.append(layer_dir)
            self._runtime.register(
                self.resources[logical_id].physical_id, LocalFunction(logical_id, folder, tuple(layers))
            )
        self._runtime.isolate_modules()

    def _create_state_machines(self, plan: DeploymentPlan) -> None:
        # moto's CloudFormation puts state machines in the backend that cannot execute them and
        # ignores DefinitionSubstitutions: re-create each, substituted, in the executing backend
        # under the same name, hence the same ARN everything in the stack already refers to.
        sfn = self.client("stepfunctions")
        for machine in plan.state_machines:
            deployed = self.resources.get(machine.logical_id)
            if deployed is None:  # its Condition is false
                continue
            definition = substitute_definition(
                self._hidden[machine.definition_output],
                {name: self._hidden[output] for name, output in machine.substitution_outputs.items()},
                machine.logical_id,
            )
            role = self._hidden.get(machine.role_output or "") or (
                f"arn:aws:iam::{self.account_id}:role/{machine.logical_id}"
            )
            created = sfn.create_state_machine(
                name=deployed.physical_id.rsplit(":", 1)[-1],
                definition=definition,
                roleArn=role,
                type=machine.machine_type,
            )
            if created["stateMachineArn"] != deployed.physical_id:
                raise RuntimeError(f"{machine.logical_id}: {created['stateMachineArn']} != {deployed.physical_id}")

    # ----------------------------------------------------------------- stack facts
    @property
    def outputs(self) -> dict[str, str]:
        """The template's Outputs, name -> value, as `describe_stacks` returns them."""
        return dict(self._outputs)

    def physical_id(self, logical_id: str) -> str:
        """The physical id (name or ARN) of a logical resource of the deployed template."""
        try:
            return self.resources[logical_id].physical_id
        except KeyError:
            raise KeyError(f"{logical_id} is not in the stack; resources: {sorted(self.resources)}") from None

    def state_machine_arn(self, logical_id: str | None = None) -> str:
        """The ARN of a state machine of the stack (the only one when `logical_id` is None)."""
        if logical_id is not None:
            return self.physical_id(logical_id)
        machines = [r for r in self.resources.values() if r.resource_type == "AWS::StepFunctions::StateMachine"]
        if len(machines) != 1:
            raise ValueError(f"Name the state machine: {[m.logical_id for m in machines]}")
        return machines[0].physical_id

    @property
    def emulator_control(self) -> Any:
        """An `EmulatorControl` for the running AppIntegrations emulator."""
        if self.appintegrations_endpoint_url is None:
            raise RuntimeError("The AppIntegrations emulator is not running in this stack")
        from local.emulator import EmulatorControl

        return EmulatorControl(self.appintegrations_endpoint_url)

    # ----------------------------------------------------------------- executions
    def start_execution(
        self, input: dict[str, Any] | str | None = None, name: str | None = None, state_machine: str | None = None
    ) -> str:
        """Start an execution (of `state_machine`: logical id or ARN; default the only one); return its ARN."""
        arn = state_machine if (state_machine or "").startswith("arn:") else self.state_machine_arn(state_machine)
        payload = input if isinstance(input, str) else json.dumps(input or {})
        response = self.client("stepfunctions").start_execution(
            # moto names an execution "None" when no name is given: always pass one.
            stateMachineArn=arn,
            name=name or _free_name("offline"),
            input=payload,
        )
        return str(response["executionArn"])

    def wait_execution(self, execution_arn: str, timeout: float = 60) -> dict[str, Any]:
        """Poll until the execution leaves RUNNING; return `describe_execution`'s answer."""
        sfn = self.client("stepfunctions")
        deadline = time.monotonic() + timeout
        while True:
            described: dict[str, Any] = sfn.describe_execution(executionArn=execution_arn)
            if described["status"] != "RUNNING":
                return described
            if time.monotonic() > deadline:
                raise TimeoutError(f"{execution_arn} still RUNNING after {timeout}s")
            time.sleep(0.05)

    def run_execution(
        self, input: dict[str, Any] | str | None = None, timeout: float = 60, **kwargs: Any
    ) -> dict[str, Any]:
        """Start an execution and wait for it: `wait_execution(start_execution(...))`."""
        return self.wait_execution(self.start_execution(input, **kwargs), timeout)

    def execution_history(self, execution_arn: str) -> list[dict[str, Any]]:
        """Every history event of an execution, oldest first."""
        sfn = self.client("stepfunctions")
        events: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
        while True:
            page = sfn.get_execution_history(**kwargs)
            events.extend(page["events"])
            if not page.get("nextToken"):
                return events
            kwargs["nextToken"] = page["nextToken"]

    # ----------------------------------------------------------------- triggers
    def schedules(self) -> dict[str, str]:
        """Schedules that target a state machine: logical id (or rule name) -> state machine ARN."""
        found = {s.logical_id: self._hidden[s.target_output] for s in self._deployed_schedules()}
        for rule, target in self._scheduled_rules():
            found[self._logical_id_of_rule(rule)] = target["Arn"]
        return found

    def fire_schedule(
        self, logical_id: str | None = None, scheduled_time: datetime | None = None, *, force: bool = False
    ) -> str:
        """Do what a schedule does when it fires at `scheduled_time` (default now); return the execution ARN.

        Handles `AWS::Scheduler::Schedule` (SAM `ScheduleV2`), whose Input keywords are filled in
        as EventBridge Scheduler does, and `AWS::Events::Rule` with a ScheduleExpression. A
        DISABLED schedule never fires on AWS: firing one raises unless `force` is set.
        """
        moment = scheduled_time or datetime.now(UTC)
        schedules = {s.logical_id: s for s in self._deployed_schedules()}
        rules = {self._logical_id_of_rule(rule): (rule, target) for rule, target in self._scheduled_rules()}
        if logical_id is None:
            candidates = sorted([*schedules, *rules])
            if len(candidates) != 1:
                raise ValueError(f"Name the schedule to fire: {candidates}")
            logical_id = candidates[0]
        if logical_id in schedules:
            schedule = schedules[logical_id]
            self._refuse_disabled(logical_id, self._hidden.get(schedule.state_output or "", "ENABLED"), force)
            schedule_arn = (
                f"arn:aws:scheduler:{self.region}:{self.account_id}:schedule/{schedule.group_name}/{schedule.name}"
            )
            raw_input = self._hidden.get(schedule.input_output or "") or "{}"
            payload = render_scheduler_input(raw_input, moment, schedule_arn, str(uuid.uuid4()))
            return self.start_execution(
                payload, name=_free_name(schedule.name[:50]), state_machine=self._hidden[schedule.target_output]
            )
        if logical_id in rules:
            rule, target = rules[logical_id]
            self._refuse_disabled(logical_id, rule.get("State", "ENABLED"), force)
            event = scheduled_event(rule["Arn"], moment, self.account_id, self.region)
            payload = target_input(target, event, rule["Arn"], rule["Name"])
            return self.start_execution(payload, name=_free_name(rule["Name"][:50]), state_machine=target["Arn"])
        raise KeyError(f"No schedule {logical_id!r}; schedules: {sorted([*schedules, *rules])}")

    @staticmethod
    def _refuse_disabled(logical_id: str, state: str, force: bool) -> None:
        if state != "ENABLED" and not force:
            raise RuntimeError(f"{logical_id} is {state}: AWS would not fire it (pass force=True to fire anyway)")

    def put_events(self, entries: list[dict[str, Any]]) -> PutEventsResult:
        """PutEvents through moto; return it with the executions the matching rules started.

        Rules are matched by moto on the entry's bus; a state machine target gets its Input /
        InputPath / InputTransformer applied (see `_start_from_rule`); other targets (SQS ...)
        are moto's. PutEvents from a handler or an ASL task is routed the same way; executions
        such a concurrent call starts while this one runs are counted here too.
        """
        with self._put_events_lock:
            first = len(self._rule_executions)
            response: dict[str, Any] = self.client("events").put_events(Entries=entries)
            return PutEventsResult(list(self._rule_executions[first:]), response)

    def _start_from_rule(self, rule: Any, target: dict[str, Any], event: dict[str, Any]) -> None:
        """Start a state machine target of a matched rule (called by the patched moto Rule)."""
        payload = target_input(target, normalize_event(event), rule.arn, rule.name)
        arn = self.start_execution(payload, name=_free_name(rule.name[:50]), state_machine=target["Arn"])
        self._rule_executions.append(arn)

    def _deployed_schedules(self) -> list[Any]:
        plan = self._plan
        if plan is None:
            return []
        # Deployed (its Condition holds) and aimed at a state machine: the only target handled.
        return [s for s in plan.schedules if self._hidden.get(s.target_output, "").startswith("arn:aws:states:")]

    def _rules(self, bus: str) -> list[dict[str, Any]]:
        events = self.client("events")
        rules: list[dict[str, Any]] = []
        for page in events.get_paginator("list_rules").paginate(EventBusName=bus):
            rules.extend(page["Rules"])
        return rules

    def _targets(self, rule: dict[str, Any]) -> list[dict[str, Any]]:
        bus = rule.get("EventBusName", "default")
        response = self.client("events").list_targets_by_rule(Rule=rule["Name"], EventBusName=bus)
        return list(response["Targets"])

    def _scheduled_rules(self) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        found = []
        for bus in self.client("events").list_event_buses()["EventBuses"]:
            for rule in self._rules(bus["Name"]):
                if not rule.get("ScheduleExpression"):
                    continue
                for target in self._targets(rule):
                    if target["Arn"].startswith("arn:aws:states:"):
                        found.append((rule, target))
        return found

    def _logical_id_of_rule(self, rule: dict[str, Any]) -> str:
        for resource in self.resources.values():
            if resource.resource_type == "AWS::Events::Rule" and resource.physical_id in (rule["Name"], rule["Arn"]):
                return resource.logical_id
        return str(rule["Name"])


def _quietly(action: Any) -> None:
    try:
        action()
    except Exception:
        LOG.debug("cleanup step failed", exc_info=True)
