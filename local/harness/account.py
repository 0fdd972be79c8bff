"""`OfflineAccount`: one offline AWS account and Region that stacks are deployed into.

It owns what every stack shares: moto's server and the AppIntegrations emulator (on 127.0.0.1),
IAM (the administrator, role sessions, the request gate), the Lambda sandboxes, the moto patches
and the trigger deliveries. moto's backends are process-global, so one account runs per process.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any, cast

import boto3
from moto.core.config import default_user_config

from local.athena.executor import IcebergFaults
from local.athena.service import OfflineAthena
from local.clock import Clock, HeldClock, RealClock
from local.harness.firing import Triggers
from local.harness.lambda_runtime import DeployedConfig, FileSink, LambdaRuntime, LogSink, StderrSink
from local.harness.limits import SERVICE_LIMITS
from local.harness.moto_patches import MotoPatches
from local.harness.servers import MotoServer, ProcessEnvironment, start_emulator
from local.harness.service_faults import ServiceFaults
from local.iam.authorizer import MotoAuthorizer
from local.iam.enforcement import Enforcer
from local.iam.errors import ServiceError
from local.iam.gate import RequestGate
from local.iam.operations import ApiCall
from local.iam.principals import (
    CONVENTIONAL_ACCESS_KEY_ID,
    CONVENTIONAL_SECRET_ACCESS_KEY,
    CredentialBroker,
    Credentials,
    Principal,
    UntrustedRole,
)
from local.iam.resources import ResourceDirectory

LOG = logging.getLogger("local.harness")
DEFAULT_ACCOUNT_ID = "123456789012"  # moto's default account
_active_lock = threading.Lock()
_active: list[OfflineAccount] = []


class OfflineAccount:
    """Servers, IAM, Lambda sandboxes and patches of the offline stack; `start()` / `stop()`."""

    def __init__(
        self,
        *,
        region: str = "us-east-1",
        account_id: str = DEFAULT_ACCOUNT_ID,
        time_scale: float = 1.0,
        enforce_iam: bool = True,
        verbose: bool = False,
        port: int = 0,
        emulator_port: int = 0,
        emulator: bool | None = None,
        emulator_options: dict[str, Any] | None = None,
        lambda_log: Path | None = None,
        max_workers_per_function: int = 10,
        trigger_retry_attempts: int = 2,
        prewarm: bool = True,
        held_clock: bool = False,
    ) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        if (emulator_options or {}).get("time_scale", time_scale) != time_scale:
            # One time scale for the whole stack (local.durations): a service at another speed than its callers
            # meets orderings AWS never produces.
            raise ValueError("emulator_options may not set another time_scale than the stack's")
        self.region = region
        self.account_id = account_id
        self.time_scale = time_scale
        # Wait states and emulated jobs share this clock; a held one stands while a due poll is answered.
        self.clock: Clock = HeldClock() if held_clock else RealClock()
        self.enforce_iam = enforce_iam
        self.verbose = verbose
        # Start each function's sandbox (its imports) in the background after deploy and reset.
        self.prewarm = prewarm
        self._port = port
        self._emulator_port = emulator_port
        self._want_emulator = emulator
        self._emulator_options = dict(emulator_options or {})
        self._lambda_log = lambda_log
        self.endpoint_url = ""
        self.appintegrations_endpoint_url: str | None = None
        self.emulator: Any = None
        self._moto = MotoServer(port)
        self._environment = ProcessEnvironment()
        self._saved_config: dict[str, Any] = {}
        self._patches: MotoPatches | None = None
        self.broker = CredentialBroker(account_id, region)
        self.enforcer = Enforcer(self.broker, ResourceDirectory(account_id, region), enabled=enforce_iam)
        # Faults of the services themselves (throttling, internal errors), for the pipeline's callers only.
        self.service_faults = ServiceFaults(is_administrator=self._not_a_pipeline_caller)
        self.gate = RequestGate(self.enforcer, (*SERVICE_LIMITS, self.service_faults))
        self._log_sink: LogSink = FileSink(lambda_log) if lambda_log is not None else StderrSink()
        self.runtime = LambdaRuntime(
            sandbox_environment=self._sandbox_environment,
            log_sink=self._log_sink,
            max_workers_per_function=max_workers_per_function,
        )
        self.triggers = Triggers(
            client=self.client,
            role_credentials=self.broker.role_credentials,
            service_may_send=self._service_may_send,
            account_id=account_id,
            region=region,
            time_scale=time_scale,
            retry_attempts=trigger_retry_attempts,
        )
        self.admin_credentials: Credentials | None = None
        # Fault knobs of the offline Iceberg tables (commit conflicts, VACUUM's more runs).
        self.athena_faults = IcebergFaults()
        self._owners: dict[tuple[str, str], str] = {}

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> OfflineAccount:
        """Start moto (and the emulator), create the administrator, install the patches."""
        with _active_lock:
            if _active:
                raise RuntimeError("Another offline stack is running in this process (moto state is global)")
            _active.append(self)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self.endpoint_url = self._moto.start()
        self._environment.set(
            {
                # moto's Step Functions interpreter calls its own server back on this port.
                "MOTO_PORT": str(self._moto.port),
                "AWS_ENDPOINT_URL": self.endpoint_url,
                "AWS_ACCESS_KEY_ID": CONVENTIONAL_ACCESS_KEY_ID,
                "AWS_SECRET_ACCESS_KEY": CONVENTIONAL_SECRET_ACCESS_KEY,
                "AWS_SESSION_TOKEN": None,
                "AWS_SECURITY_TOKEN": None,
                "AWS_DEFAULT_REGION": self.region,
                "AWS_REGION": self.region,
                "AWS_PROFILE": None,
                # Never probe the instance metadata address for credentials or region.
                "AWS_EC2_METADATA_DISABLED": "true",
            }
        )
        self._patches = MotoPatches(
            self.runtime,
            gate=self.gate,
            role_credentials=self._state_machine_credentials,
            time_scale=self.time_scale,
            verbose=self.verbose,
            on_state_machine_target=self.triggers.deliver_rule_target,
            child_execution_gate=self._may_start_child_executions,
            clock=self.clock,
            athena=OfflineAthena(self.endpoint_url, self.region, self._caller_client_arguments, self.athena_faults),
        )
        self._patches.apply()
        self._saved_config = json.loads(json.dumps(default_user_config))
        self._moto.post(
            "/moto-api/config",
            {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}},
        )
        self.admin_credentials = self.broker.create_admin()
        self._start_emulator()

    def _start_emulator(self) -> None:
        if self._want_emulator is False:
            return
        try:
            self.emulator = start_emulator(
                s3_endpoint_url=self.endpoint_url,
                region=self.region,
                account_id=self.account_id,
                port=self._emulator_port,
                config={"time_scale": self.time_scale, **self._emulator_options},
                authorizer=MotoAuthorizer(self.enforcer),
                clock=self.clock,
            )
        except ImportError:
            if self._want_emulator:
                raise
            LOG.warning("local.emulator is not importable: running without the AppIntegrations emulator")
            return
        self.appintegrations_endpoint_url = str(self.emulator.url)
        self._environment.set({"AWS_ENDPOINT_URL_APPINTEGRATIONS": self.appintegrations_endpoint_url})

    def stop(self) -> None:
        """Stop the sandboxes and servers, wipe moto's state, undo the patches, restore the environment."""
        _quietly(self.runtime.stop)
        if self.emulator is not None:
            _quietly(self.emulator.stop)
            self.emulator = None
        if self.endpoint_url:
            _quietly(lambda: self._moto.post("/moto-api/reset", {}))
        _quietly(self._moto.stop)
        if self._patches is not None:
            self._patches.remove()
            self._patches = None
        if self._saved_config:
            # The posted config lives in moto's process-global defaults: put back what was there.
            config = cast(dict[str, Any], default_user_config)
            config.clear()
            config.update(self._saved_config)
            self._saved_config = {}
        self._environment.restore()
        if isinstance(self._log_sink, FileSink):
            _quietly(self._log_sink.close)
        with _active_lock:
            if self in _active:
                _active.remove(self)

    # ------------------------------------------------------------------ clients and credentials
    def client(self, service: str, credentials: Credentials | None = None) -> Any:
        """A boto3 client on this account's endpoints, as the administrator unless `credentials` are given."""
        arguments = credentials.client_arguments() if credentials is not None else {}
        return boto3.client(service, region_name=self.region, **arguments)  # type: ignore[call-overload]

    def _not_a_pipeline_caller(self, access_key_id: str) -> bool:
        principal = self.broker.resolve(access_key_id)
        return principal is None or ":assumed-role/" not in principal.arn

    def role_may(self, role_arn: str, action: str, resource: str) -> bool:
        """Whether a role's identity policies allow `action` on `resource`."""
        role_name = role_arn.rsplit("/", 1)[-1]
        principal = Principal(role_arn, self.account_id, Credentials("", ""), role_name=role_name)
        return self.enforcer.principal_may(principal, action, resource, {})

    def _sandbox_environment(self, config: DeployedConfig) -> dict[str, str]:
        env = {"AWS_ENDPOINT_URL": self.endpoint_url, "AWS_EC2_METADATA_DISABLED": "true"}
        if self.appintegrations_endpoint_url:
            env["AWS_ENDPOINT_URL_APPINTEGRATIONS"] = self.appintegrations_endpoint_url
        try:
            env |= self.broker.role_credentials(config.role_arn, "lambda.amazonaws.com").environment()
        except UntrustedRole as untrusted:
            # AWS refuses such a function at deployment; without credentials every call fails.
            LOG.error("%s: %s", config.function_name, untrusted)
            env |= {"AWS_ACCESS_KEY_ID": "untrusted-role", "AWS_SECRET_ACCESS_KEY": "untrusted-role"}
        return env

    def _caller_client_arguments(self, access_key_id: str | None) -> dict[str, str]:
        """The keys of the caller of an Athena query: its Glue and S3 reads and writes are signed with them."""
        principal = self.broker.resolve(access_key_id) if access_key_id else None
        if principal is None:
            return Credentials(CONVENTIONAL_ACCESS_KEY_ID, CONVENTIONAL_SECRET_ACCESS_KEY).client_arguments()
        return principal.credentials.client_arguments()

    def _state_machine_credentials(self, role_arn: str) -> Credentials | None:
        try:
            return self.broker.role_credentials(role_arn, "states.amazonaws.com")
        except UntrustedRole as untrusted:
            LOG.error("state machine role: %s", untrusted)
            return None

    def _may_start_child_executions(self, role_arn: str, state_machine_arn: str) -> None:
        """A Distributed Map starts its children as the state machine's role: it needs states:StartExecution.

        Authorized as the StartExecution request the service makes for each child would be (raises
        `AccessDenied`, or `ServiceError` for a role Step Functions cannot assume).
        """
        if not self.enforce_iam:
            return
        try:
            credentials = self.broker.role_credentials(role_arn, "states.amazonaws.com")
        except UntrustedRole as untrusted:
            raise ServiceError("AccessDeniedException", str(untrusted)) from None
        principal = self.broker.resolve(credentials.access_key_id)
        if principal is None:
            raise ServiceError("UnrecognizedClientException", f"no session for {role_arn}")
        call = ApiCall(
            service="states",
            operation="StartExecution",
            params={"stateMachineArn": state_machine_arn},
            path="/",
            headers={},
            account_id=self.account_id,
            region=self.region,
        )
        self.enforcer.authorize(call, principal)

    def _service_may_send(self, service: str, queue_arn: str, context: dict[str, str]) -> bool:
        if not self.enforce_iam:
            return True
        return self.enforcer.service_may(service, "sqs:SendMessage", queue_arn, context)

    # ------------------------------------------------------------------ stacks sharing the account
    def claim(self, resource_type: str, physical_id: str, stack_name: str) -> None:
        """Record which stack created a named resource (for conflict messages)."""
        self._owners[(resource_type, physical_id)] = stack_name

    def release(self, resource_type: str, physical_id: str, stack_name: str) -> None:
        """Forget a resource of a deleted stack."""
        if self._owners.get((resource_type, physical_id)) == stack_name:
            del self._owners[(resource_type, physical_id)]

    def owner_of(self, resource_type: str, physical_id: str) -> str | None:
        """The stack that created a resource of that type and physical id, if known."""
        return self._owners.get((resource_type, physical_id))

    def make_cold(self) -> None:
        """Every Lambda cold again: the next invocations start new sandboxes."""
        self.runtime.make_cold(prewarm=self.prewarm)


def _quietly(action: Any) -> None:
    try:
        action()
    except Exception:
        LOG.debug("cleanup step failed", exc_info=True)
