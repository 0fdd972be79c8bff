"""The fault and quota model: which calls fail, what a read shows while the service is inconsistent, limits.

The operations ask this module four questions: may this call proceed, or be answered with a fault after
it took effect (injected faults); does a new job ever end; what does a List show of an association right
now (stale, empty or regressing views); and is a quota full.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from local.emulator.config import OBJECT_TYPES, DrawContext, drawn_knobs
from local.emulator.errors import (
    AccessDeniedError,
    ConnectionDropped,
    InternalServiceError,
    ResourceQuotaExceededError,
    ThrottlingError,
)
from local.emulator.state import FAILED, IN_PROGRESS, Association, EmulatorState, Job


def random_faults(rng: random.Random, *, object_types: Sequence[str] = OBJECT_TYPES) -> dict[str, Any]:
    """A plausible fault configuration for one simulated day: each drawn knob's declared ``Draw``, in order.

    The result is a partial ``EmulatorConfig`` (``configure(**random_faults(rng))``); the same ``rng``
    state gives the same configuration. ``object_types`` are the types the day exports.
    """
    context = DrawContext(object_types=tuple(object_types))
    return {name: draw.pick(rng, context) for name, draw in drawn_knobs()}


@dataclass(frozen=True)
class AssociationView:
    """What a List shows of an association's last job right now (None: the field is left out)."""

    last_execution_status: dict[str, Any] | None
    execution_configuration: dict[str, Any] | None


class FaultModel:
    """Decides injected faults, eventually consistent views and quota refusals from the current knobs.

    Callers hold ``state.lock`` or let these methods take it; every random decision draws from the
    state's seeded generator, and only when a rate is strictly between 0 and 1, so that enabling one
    knob does not shift the sequence another knob sees.
    """

    def __init__(self, state: EmulatorState) -> None:
        self._state = state

    # ----------------------------------------------------------------- calls

    def _draw(self, rate: float) -> bool:
        if rate <= 0:
            return False
        return rate >= 1 or self._state.rng.random() < rate

    def before_call(self, operation: str, principal_arn: str | None = None) -> None:
        """Refuse a call before it takes effect: denied operations, global rates, then ``before`` rules."""
        with self._state.lock:
            cfg = self._state.config
            if operation in cfg.access_denied_operations:
                raise AccessDeniedError(
                    f"User: {principal_arn or 'the caller'} is not authorized to perform: "
                    f"app-integrations:{operation} (denied by the emulator's access_denied_operations)"
                )
            if self._draw(cfg.throttle_rate):
                raise ThrottlingError(f"Rate exceeded for {operation}")
            if self._draw(cfg.internal_error_rate):
                raise InternalServiceError(f"An internal error occurred while processing {operation}")
            self._apply_rules(operation, "before")

    def after_call(self, operation: str) -> None:
        """After a call took effect, answer it with a fault anyway if an ``after`` rule fires."""
        with self._state.lock:
            self._apply_rules(operation, "after")

    def _apply_rules(self, operation: str, phase: str) -> None:
        now = self._state.clock.monotonic()
        scale = self._state.config.time_scale
        for armed in self._state.fault_rules:
            rule = armed.rule
            if rule.phase != phase or rule.operation not in ("*", operation):
                continue
            if rule.count is not None and armed.fired >= rule.count:
                continue
            elapsed = now - armed.armed_at
            if elapsed < rule.start_seconds * scale:
                continue
            if rule.duration_seconds is not None and elapsed >= (rule.start_seconds + rule.duration_seconds) * scale:
                continue
            if not self._draw(rule.rate):
                continue
            armed.fired += 1
            if rule.fault == "connection_dropped":
                raise ConnectionDropped(operation)
            if rule.fault == "ThrottlingException":
                raise ThrottlingError(f"Rate exceeded for {operation}")
            raise InternalServiceError(f"An internal error occurred while processing {operation}")

    def rules_snapshot(self) -> list[dict[str, Any]]:
        """Every armed fault rule with how often it fired."""
        with self._state.lock:
            return [armed.snapshot() for armed in self._state.fault_rules]

    # ----------------------------------------------------------------- jobs

    def job_never_ends(self, object_type: str) -> bool:
        """Whether a new job of ``object_type`` stays IN_PROGRESS until reset or finished by the control API."""
        cfg = self._state.config
        return object_type in cfg.never_ending_object_types or self._draw(cfg.never_ending_rate)

    # ----------------------------------------------------------------- eventually consistent reads

    def association_view(self, assoc: Association) -> AssociationView:
        """What List shows of ``assoc``'s last job now: stale after an Update, empty after a Create, regressing."""
        state = self._state
        cfg = state.config
        now = self._state.clock.monotonic()
        shown = state.jobs.get(assoc.current_job_id or "")
        if assoc.previous_job_id and now - assoc.switched_at < cfg.scaled(cfg.stale_status_seconds):
            # The previous job is still what an eventually consistent read returns.
            shown = state.jobs.get(assoc.previous_job_id) or shown
        if shown is None:
            return AssociationView(None, None)
        status: dict[str, Any] = {"ExecutionStatus": shown.status}
        if shown.status == FAILED and shown.status_message:
            status["StatusMessage"] = shown.status_message
        if shown.status != IN_PROGRESS:
            status = self._maybe_regressed(shown, status, now)
        configuration: dict[str, Any] | None = shown.execution_configuration
        if shown.id == assoc.first_job_id and now - assoc.created_at < cfg.scaled(cfg.empty_status_seconds):
            # Right after the Create, the association's summary has not caught up with its job yet.
            if cfg.empty_status_fields in ("both", "LastExecutionStatus"):
                status = {}
            if cfg.empty_status_fields in ("both", "ExecutionConfiguration"):
                configuration = None
        return AssociationView(status or None, configuration)

    def _maybe_regressed(self, job: Job, status: dict[str, Any], now: float) -> dict[str, Any]:
        """The final status the first time it is shown; IN_PROGRESS again for a while after, if the job regresses."""
        cfg = self._state.config
        if job.finished_seen_at is None:
            job.finished_seen_at = now
            job.regresses = cfg.status_regression_seconds > 0 and self._draw(cfg.status_regression_rate)
            return status
        if job.regresses and now - job.finished_seen_at < cfg.scaled(cfg.status_regression_seconds):
            return {"ExecutionStatus": IN_PROGRESS}
        return status

    # ----------------------------------------------------------------- quotas

    def check_job_quota(self) -> None:
        """Refuse a new job when ``max_concurrent_jobs`` jobs are IN_PROGRESS (Create and Update alike)."""
        state = self._state
        running = sum(1 for job in state.jobs.values() if job.status == IN_PROGRESS)
        limit = state.config.max_concurrent_jobs
        if running >= limit:
            raise ResourceQuotaExceededError(
                f"{running} export jobs are IN_PROGRESS in {state.region} for account {state.account_id}; "
                f"the quota of concurrent bulk export jobs is {limit}"
            )

    def check_data_integration_quota(self) -> None:
        """Refuse a new data integration when ``max_data_integrations`` exist."""
        state = self._state
        quota = state.config.max_data_integrations
        if len(state.data_integrations) >= quota:
            raise ResourceQuotaExceededError(
                f"This account already has {quota} data integrations in {state.region} (quota max_data_integrations)"
            )
