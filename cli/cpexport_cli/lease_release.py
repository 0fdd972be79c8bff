"""`cpexport release-lease`: free an object type's LEASE only when no job can be running for it.

Export jobs cannot be cancelled and only the last job of a data integration is visible. Deleting
a lease while its job runs would let the next run start a second job beside it; so the release
checks the holding execution, the service's view of the last job, and the job ledger, and then
deletes the lease with a condition on exactly the lease it read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from botocore.exceptions import ClientError
from cpexport.clients.appintegrations import AppIntegrations
from cpexport.clients.state_table import JobState, Lease, StateTable
from cpexport.errors import ExportError
from cpexport.exports import OPEN_JOB_STATES, data_integration_name
from cpexport.models import render_utc

from cpexport_cli.status import IN_PROGRESS, describe_window


class Outcome(StrEnum):
    """What one check found."""

    OK = "ok"
    REFUSED = "refused"  # releasing would not be safe, whatever the options
    NEEDS_FORCE = "needs-force"  # probably safe, but only a person can know: --force
    FORCED = "forced"


@dataclass(frozen=True)
class Check:
    """One thing the release checked, and what it found."""

    name: str
    outcome: Outcome
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "outcome": self.outcome.value, "detail": self.detail}


@dataclass
class LeaseRelease:
    """What `release-lease` checked and did."""

    domain_name: str
    object_type: str
    lease: Lease | None
    checks: list[Check] = field(default_factory=list)
    released: bool = False
    message: str = ""

    @property
    def refused(self) -> bool:
        return self.lease is not None and not self.released

    def to_json(self) -> dict[str, Any]:
        lease = self.lease
        return {
            "domainName": self.domain_name,
            "objectType": self.object_type,
            "lease": None
            if lease is None
            else {
                "window": lease.window.to_wire(),
                "executionArn": lease.execution_arn,
                "acquiredAt": render_utc(lease.acquired_at),
                "submittedAt": render_utc(lease.submitted_at) if lease.submitted_at else None,
                "timedOutAt": render_utc(lease.timed_out_at) if lease.timed_out_at else None,
            },
            "checks": [check.to_json() for check in self.checks],
            "released": self.released,
            "message": self.message,
        }


def release_lease(
    stack_name: str,
    state: StateTable,
    appintegrations: AppIntegrations,
    stepfunctions: Any,
    domain_name: str,
    object_type: str,
    *,
    force: bool = False,
) -> LeaseRelease:
    """Check, then release the object type's lease with a condition on the lease as read."""
    lease = state.get_lease(domain_name, object_type)
    result = LeaseRelease(domain_name, object_type, lease)
    if lease is None:
        result.message = f"{domain_name}/{object_type} holds no lease: nothing to release"
        return result
    window = describe_window(lease.window)
    result.checks.append(_check_execution(stepfunctions, lease))
    service_check, shown_window = _check_service(stack_name, appintegrations, domain_name, object_type, lease)
    result.checks.append(service_check)
    result.checks.append(_check_ledger(state, domain_name, object_type, lease, shown_window, force))
    blocking = [c for c in result.checks if c.outcome in {Outcome.REFUSED, Outcome.NEEDS_FORCE}]
    if blocking:
        hint = " (pass --force to release anyway)" if all(c.outcome == Outcome.NEEDS_FORCE for c in blocking) else ""
        result.message = (
            f"not released: the lease of {window} stays{hint}. " + " ".join(c.detail for c in blocking)
        ).strip()
        return result
    if not state.delete_lease_as_read(domain_name, object_type, lease):
        result.checks.append(
            Check(
                "condition",
                Outcome.REFUSED,
                "the lease changed between the checks and the delete (another execution took it, or it was "
                "released): nothing was deleted",
            )
        )
        result.message = "not released: the lease is no longer the one that was checked"
        return result
    result.checks.append(
        Check(
            "condition",
            Outcome.OK,
            f"deleted on condition acquiredAt = {render_utc(lease.acquired_at)} and executionArn = the holder",
        )
    )
    result.released = True
    result.message = (
        f"released the lease of {window} of {domain_name}/{object_type}; the watermark is untouched and the next "
        "run exports from it"
    )
    return result


def _check_execution(stepfunctions: Any, lease: Lease) -> Check:
    name = lease.execution_arn.rsplit(":", 1)[-1]
    try:
        status = str(stepfunctions.describe_execution(executionArn=lease.execution_arn)["status"])
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in {"ExecutionDoesNotExist", "InvalidArn"}:
            return Check("execution", Outcome.OK, f"the holding execution {name} does not exist (any more)")
        return Check("execution", Outcome.REFUSED, f"could not describe the holding execution {name}: {code}")
    if status == "RUNNING":
        return Check(
            "execution",
            Outcome.REFUSED,
            f"the holding execution {name} is RUNNING: it releases the lease itself when its job ends "
            "(stop it first if it is stuck)",
        )
    return Check("execution", Outcome.OK, f"the holding execution {name} is {status}, not running")


def _check_service(
    stack_name: str, appintegrations: AppIntegrations, domain_name: str, object_type: str, lease: Lease
) -> tuple[Check, str | None]:
    """ListDataIntegrationAssociations: the last job must not be IN_PROGRESS. Returns the window it shows."""
    name = data_integration_name(stack_name, domain_name, object_type)
    try:
        data_integration = appintegrations.get_data_integration(name)
        association = appintegrations.find_association(data_integration) if data_integration else None
    except (ExportError, ClientError) as exc:
        return Check("service", Outcome.REFUSED, f"could not read data integration {name}: {exc}"), None
    if data_integration is None:
        return Check("service", Outcome.OK, f"data integration {name} does not exist: no job ever ran"), None
    if association is None:
        return Check("service", Outcome.OK, f"data integration {name} has no association: no job ever ran"), None
    shown = describe_window(association.window) if association.window else None
    if association.status == IN_PROGRESS:
        return (
            Check(
                "service",
                Outcome.REFUSED,
                f"ListDataIntegrationAssociations shows the last job of {name} ({shown or 'unknown window'}) "
                "IN_PROGRESS: jobs cannot be cancelled, and releasing now would let a second job start beside it",
            ),
            shown,
        )
    return (
        Check(
            "service",
            Outcome.OK,
            f"ListDataIntegrationAssociations shows the last job of {name} ({shown or 'unknown window'}) "
            f"{association.status or 'with no status'}, not IN_PROGRESS",
        ),
        shown,
    )


def _check_ledger(
    state: StateTable, domain_name: str, object_type: str, lease: Lease, shown_window: str | None, force: bool
) -> Check:
    """A job recorded as submitted that the service does not show may still show up."""
    window = describe_window(lease.window)
    job = state.get_job(domain_name, object_type, lease.window)
    if job is None:
        return Check("ledger", Outcome.OK, f"the job ledger has no job for {window}: none was submitted")
    if job.state not in OPEN_JOB_STATES or shown_window == window:
        return Check("ledger", Outcome.OK, f"the job ledger has the job of {window} {job.state.value}")
    shows = f"shows {shown_window}" if shown_window else "shows no job"
    detail = (
        f"the job ledger has the job of {window} {job.state.value} at {render_utc(job.submitted_at)}, but the "
        f"service {shows}: the job may still show up"
        + (" (a submission whose answer was an error)" if job.state == JobState.SUBMITTING else "")
    )
    if force:
        return Check("ledger", Outcome.FORCED, f"{detail}; released anyway (--force)")
    return Check("ledger", Outcome.NEEDS_FORCE, detail)
