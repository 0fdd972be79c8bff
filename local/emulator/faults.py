"""The fault and quota model: which calls fail, what a read shows while the service is inconsistent, limits.

The operations ask this module three questions: may this call proceed (injected faults), which job
and which fields does a List show for an association right now (stale views), and is a quota full.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from local.emulator.config import OBJECT_TYPES, DrawContext, drawn_knobs
from local.emulator.errors import AccessDeniedError, InternalServiceError, ResourceQuotaExceededError, ThrottlingError
from local.emulator.state import IN_PROGRESS, Association, EmulatorState, Job


def random_faults(rng: random.Random, *, object_types: Sequence[str] = OBJECT_TYPES) -> dict[str, Any]:
    """A plausible fault configuration for one simulated day: each drawn knob's declared ``Draw``, in order.

    The result is a partial ``EmulatorConfig`` (``configure(**random_faults(rng))``); the same ``rng``
    state gives the same configuration. ``object_types`` are the types the day exports.
    """
    context = DrawContext(object_types=tuple(object_types))
    return {name: draw.pick(rng, context) for name, draw in drawn_knobs()}


@dataclass(frozen=True)
class AssociationView:
    """What a List shows of an association's last job right now."""

    job: Job | None


class FaultModel:
    """Decides injected faults, eventually consistent views and quota refusals from the current knobs."""

    def __init__(self, state: EmulatorState) -> None:
        self._state = state

    def before_call(self, operation: str, principal_arn: str | None = None) -> None:
        """Apply the fault-injection knobs (denied operations, throttling, internal errors) to one API call."""
        with self._state.lock:
            cfg = self._state.config
            rng = self._state.rng
            if operation in cfg.access_denied_operations:
                raise AccessDeniedError(
                    f"User: {principal_arn or 'the caller'} is not authorized to perform: "
                    f"app-integrations:{operation} (denied by the emulator's access_denied_operations)"
                )
            # Only draw when a rate is set, so enabling one knob does not shift the other's sequence.
            if cfg.throttle_rate > 0 and rng.random() < cfg.throttle_rate:
                raise ThrottlingError(f"Rate exceeded for {operation}")
            if cfg.internal_error_rate > 0 and rng.random() < cfg.internal_error_rate:
                raise InternalServiceError(f"An internal error occurred while processing {operation}")

    def association_view(self, assoc: Association) -> AssociationView:
        """The job List shows for ``assoc``: after an Update, the previous one for ``stale_status_seconds``."""
        state = self._state
        shown = state.jobs.get(assoc.current_job_id or "")
        stale_for = state.config.stale_status_seconds * state.config.time_scale
        if assoc.previous_job_id and time.monotonic() - assoc.switched_at < stale_for:
            # Emulates an eventually consistent read: the previous job is still what List returns.
            shown = state.jobs.get(assoc.previous_job_id) or shown
        return AssociationView(job=shown)

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
