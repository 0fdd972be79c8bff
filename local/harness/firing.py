"""Schedules and rules fire as EventBridge Scheduler and EventBridge deliver: with the target's role,
retries, and the dead-letter queue.

moto never fires a schedule and cannot start a state machine from a rule, so the harness delivers:

- a schedule tick (`fire_schedule`) starts the state machine with the schedule's `Target.RoleArn`
  (assumed as scheduler.amazonaws.com) and the Input with Scheduler's keywords filled in;
- a matched rule's state machine target (called by the patched `Rule.send_to_targets`) starts it with
  the target's `RoleArn` (assumed as events.amazonaws.com) and the Input/InputPath/InputTransformer;
- a failed start is retried when AWS retries it (throttling, 5xx: `RetryPolicy`, at most
  `retry_attempts` here, backoff scaled by `time_scale`), then dead-lettered: a schedule sends the
  tick to `DeadLetterConfig` *with the schedule role's credentials* (the role must allow
  sqs:SendMessage); a rule delivers to its target's `DeadLetterConfig` only when that queue's policy
  lets events.amazonaws.com send with `aws:SourceArn` = the rule's ARN, else the event is dropped
  (logged), as AWS does.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from local.harness.triggers import format_utc, normalize_event, render_scheduler_input, target_input
from local.iam.principals import Credentials, UntrustedRole

LOG = logging.getLogger("local.harness.firing")

SCHEDULER_PRINCIPAL = "scheduler.amazonaws.com"
EVENTS_PRINCIPAL = "events.amazonaws.com"
# Errors AWS retries a delivery on; anything else goes to the dead-letter queue at once.
_RETRYABLE = {"ThrottlingException", "ServiceUnavailable", "InternalFailure", "InternalServerError", "ServiceException"}


class DeliveryFailed(RuntimeError):
    """A trigger could not start its target; `dead_lettered` says whether the DLQ got the event."""

    def __init__(self, message: str, outcome: Delivery) -> None:
        super().__init__(message)
        self.outcome = outcome


@dataclass(frozen=True)
class Delivery:
    """What happened to one tick or one matched event."""

    source_arn: str  # the schedule or the rule
    target_arn: str
    execution_arn: str | None = None
    attempts: int = 0
    error_code: str | None = None
    error_message: str | None = None
    dead_letter_arn: str | None = None
    dead_lettered: bool = False
    dropped_reason: str | None = None


@dataclass(frozen=True)
class FunctionTick:
    """One tick of a schedule that invokes a Lambda function: the payload sent and what came back."""

    schedule_arn: str
    function_arn: str
    payload: str
    result: Any
    function_error: str | None = None


def execution_name(prefix: str) -> str:
    """A fresh execution name: 1-80 characters of letters, digits, - and _."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", f"{prefix}-{uuid.uuid4().hex[:12]}")[-80:]


@dataclass
class StartFaults:
    """Make the next `count` StartExecution calls of triggers fail with `error_code` (e.g. throttling)."""

    count: int = 0
    error_code: str = "ThrottlingException"
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self) -> str | None:
        with self._lock:
            if self.count <= 0:
                return None
            self.count -= 1
            return self.error_code


class Triggers:
    """Delivers schedule ticks and rule targets the way the AWS services do."""

    def __init__(
        self,
        *,
        client: Callable[..., Any],
        role_credentials: Callable[[str, str], Credentials],
        service_may_send: Callable[[str, str, dict[str, str]], bool],
        account_id: str,
        region: str,
        time_scale: float,
        retry_attempts: int = 2,
    ) -> None:
        self._client = client
        self._role_credentials = role_credentials
        self._service_may_send = service_may_send
        self.account_id = account_id
        self.region = region
        self.time_scale = time_scale
        self.retry_attempts = retry_attempts
        self.start_faults = StartFaults()
        self.deliveries: list[Delivery] = []
        self.rule_executions: list[str] = []
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ schedules
    def fire_schedule(self, schedule: dict[str, Any], moment: datetime) -> Delivery:
        """Deliver one tick of a schedule (as `scheduler.get_schedule` describes it)."""
        target = schedule["Target"]
        schedule_arn = schedule["Arn"]
        execution_id = str(uuid.uuid4())
        delivery = self._start(
            source_arn=schedule_arn,
            target=target,
            principal=SCHEDULER_PRINCIPAL,
            name_prefix=str(schedule["Name"])[:50],
            payload_for=lambda attempt: render_scheduler_input(
                str(target.get("Input") or "{}"), moment, schedule_arn, execution_id, attempt
            ),
        )
        if delivery.execution_arn is None:
            delivery = self._dead_letter_tick(schedule, delivery, moment, execution_id)
        self._remember(delivery)
        return delivery

    def invoke_schedule(self, schedule: dict[str, Any], moment: datetime) -> FunctionTick:
        """Deliver one tick of a schedule whose target is a Lambda function; return what the function answered.

        Scheduler invokes the function asynchronously with the schedule's role; offline the invocation
        is synchronous (same role, same payload, same permission: lambda:InvokeFunction), so the caller
        sees the function's result or error when this returns.
        """
        target = schedule["Target"]
        payload = render_scheduler_input(
            str(target.get("Input") or "{}"), moment, schedule["Arn"], str(uuid.uuid4()), 1
        )
        credentials = self._role_credentials(target["RoleArn"], SCHEDULER_PRINCIPAL)
        answer = self._client("lambda", credentials).invoke(
            FunctionName=target["Arn"], InvocationType="RequestResponse", Payload=payload.encode()
        )
        body = json.loads(answer["Payload"].read() or b"null")
        tick = FunctionTick(schedule["Arn"], target["Arn"], payload, body, answer.get("FunctionError"))
        self._remember(Delivery(schedule["Arn"], target["Arn"], attempts=1, error_code=tick.function_error))
        return tick

    def _dead_letter_tick(
        self, schedule: dict[str, Any], delivery: Delivery, moment: datetime, execution_id: str
    ) -> Delivery:
        target = schedule["Target"]
        queue_arn = (target.get("DeadLetterConfig") or {}).get("Arn")
        if not queue_arn:
            LOG.warning("%s: tick of %s lost (no dead-letter queue)", schedule["Name"], format_utc(moment))
            return _with(delivery, dropped_reason="the schedule has no dead-letter queue")
        body = render_scheduler_input(str(target.get("Input") or "{}"), moment, schedule["Arn"], execution_id)
        attributes = {
            "ERROR_CODE": delivery.error_code or "",
            "ERROR_MESSAGE": (delivery.error_message or "")[:1000],
            "EXECUTION_ID": execution_id,
            "RETRY_ATTEMPTS": str(max(0, delivery.attempts - 1)),
            "SCHEDULE_ARN": schedule["Arn"],
            "TARGET_ARN": target["Arn"],
        }
        try:
            # Scheduler sends to its DLQ with the schedule's role: the role needs sqs:SendMessage.
            credentials = self._role_credentials(target["RoleArn"], SCHEDULER_PRINCIPAL)
            self._send(queue_arn, body, attributes, credentials)
        except (ClientError, UntrustedRole) as error:
            LOG.warning("%s: tick not dead-lettered to %s: %s", schedule["Name"], queue_arn, error)
            return _with(delivery, dead_letter_arn=queue_arn, dropped_reason=str(error))
        return _with(delivery, dead_letter_arn=queue_arn, dead_lettered=True)

    # ------------------------------------------------------------------ rules
    def deliver_rule_target(self, rule: Any, target: dict[str, Any], event: dict[str, Any]) -> Delivery:
        """Start a matched rule's state machine target (called from the patched moto Rule)."""
        normalized = normalize_event(event)
        payload = target_input(target, normalized, rule.arn, rule.name)
        delivery = self._start(
            source_arn=rule.arn,
            target=target,
            principal=EVENTS_PRINCIPAL,
            name_prefix=str(rule.name)[:50],
            payload_for=lambda attempt: payload,
        )
        if delivery.execution_arn is None:
            delivery = self._dead_letter_event(rule.arn, target, normalized, delivery)
        else:
            with self._lock:
                self.rule_executions.append(delivery.execution_arn)
        self._remember(delivery)
        return delivery

    def _dead_letter_event(
        self, rule_arn: str, target: dict[str, Any], event: dict[str, Any], delivery: Delivery
    ) -> Delivery:
        queue_arn = (target.get("DeadLetterConfig") or {}).get("Arn")
        if not queue_arn:
            LOG.warning("%s: event for %s dropped (no dead-letter queue)", rule_arn, target["Arn"])
            return _with(delivery, dropped_reason="the target has no dead-letter queue")
        context = {"aws:SourceArn": rule_arn, "aws:SourceAccount": self.account_id}
        if not self._service_may_send(EVENTS_PRINCIPAL, queue_arn, context):
            reason = f"the queue policy of {queue_arn} does not let {EVENTS_PRINCIPAL} send for {rule_arn}"
            LOG.warning("%s: event dropped: %s", rule_arn, reason)
            return _with(delivery, dead_letter_arn=queue_arn, dropped_reason=reason)
        attributes = {
            "ERROR_CODE": delivery.error_code or "",
            "ERROR_MESSAGE": (delivery.error_message or "")[:1000],
            "EXHAUSTED_RETRY_CONDITION": "MaximumRetryAttempts" if delivery.attempts > 1 else "",
            "RETRY_ATTEMPTS": str(max(0, delivery.attempts - 1)),
            "RULE_ARN": rule_arn,
            "TARGET_ARN": target["Arn"],
        }
        self._send(queue_arn, json.dumps(event), {k: v for k, v in attributes.items() if v}, None)
        return _with(delivery, dead_letter_arn=queue_arn, dead_lettered=True)

    # ------------------------------------------------------------------ shared
    def _start(
        self,
        *,
        source_arn: str,
        target: dict[str, Any],
        principal: str,
        name_prefix: str,
        payload_for: Callable[[int], str],
    ) -> Delivery:
        policy = target.get("RetryPolicy") or {}
        allowed = min(int(policy.get("MaximumRetryAttempts", 185)), self.retry_attempts)
        attempt = 0
        code: str | None = None
        message: str | None = None
        while True:
            attempt += 1
            try:
                sfn = self._client("stepfunctions", self._role_credentials(target["RoleArn"], principal))
                injected = self.start_faults.take()
                if injected:
                    raise ClientError(
                        {"Error": {"Code": injected, "Message": "Rate exceeded (offline fault)"}}, "StartExecution"
                    )
                started = sfn.start_execution(
                    stateMachineArn=target["Arn"], name=execution_name(name_prefix), input=payload_for(attempt)
                )
                return Delivery(source_arn, target["Arn"], str(started["executionArn"]), attempt)
            except UntrustedRole as untrusted:
                code, message = "AccessDeniedException", str(untrusted)
                break
            except ClientError as error:
                code = str(error.response.get("Error", {}).get("Code"))
                message = str(error.response.get("Error", {}).get("Message"))
                if code not in _RETRYABLE or attempt > allowed:
                    break
                LOG.info("%s -> %s: %s, retrying", source_arn, target["Arn"], code)
                time.sleep(min(60.0, 2.0 ** (attempt - 1)) * self.time_scale)
        LOG.warning("%s -> %s failed after %d attempt(s): %s: %s", source_arn, target["Arn"], attempt, code, message)
        return Delivery(source_arn, target["Arn"], None, attempt, code, message)

    def _send(self, queue_arn: str, body: str, attributes: dict[str, str], credentials: Credentials | None) -> None:
        # The URL is looked up as the administrator: the services send to a queue ARN, no GetQueueUrl.
        account, name = queue_arn.split(":")[4:6]
        url = self._client("sqs").get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
        self._client("sqs", credentials).send_message(
            QueueUrl=url,
            MessageBody=body,
            MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items() if v},
        )

    def _remember(self, delivery: Delivery) -> None:
        with self._lock:
            self.deliveries.append(delivery)


def _with(delivery: Delivery, **changes: Any) -> Delivery:
    return Delivery(**{**delivery.__dict__, **changes})


def now() -> datetime:
    """The current time, UTC (a schedule fired without a time fires now)."""
    return datetime.now(UTC)
