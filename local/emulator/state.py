"""The one state object the operations, the job runner and the fault model share, and its records.

Everything here is guarded by ``EmulatorState.lock`` (re-entrant): API calls, job threads and the
control API all take it before reading or changing a record.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from local.clock import Clock, RealClock
from local.emulator.auth import Authorizer
from local.emulator.config import EmulatorConfig, FaultRule

IN_PROGRESS = "IN_PROGRESS"
COMPLETED = "COMPLETED"
FAILED = "FAILED"

S3ClientFactory = Callable[[], Any]


@dataclass
class DataIntegration:
    """One data integration (one Customer Profiles domain and object type)."""

    id: str
    name: str
    arn: str
    kms_key: str
    source_uri: str
    object_configuration: dict[str, Any]
    domain: str
    object_type: str
    seq: int
    description: str | None = None
    tags: dict[str, str] | None = None
    schedule_configuration: dict[str, Any] | None = None
    file_configuration: dict[str, Any] | None = None
    client_token: str | None = None
    request_fingerprint: str = ""
    association_id: str | None = None


@dataclass
class Association:
    """The single association of a data integration: a fixed destination plus its export jobs."""

    id: str
    arn: str
    data_integration_id: str
    destination_uri: str
    bucket: str
    prefix: str
    seq: int
    client_id: str | None = None
    object_configuration: dict[str, Any] | None = None
    client_association_metadata: dict[str, str] | None = None
    client_token: str | None = None
    current_job_id: str | None = None
    previous_job_id: str | None = None
    switched_at: float = 0.0  # clock.monotonic() of the last Update, for stale_status_seconds.
    first_job_id: str | None = None  # the job the Create started, for empty_status_seconds
    created_at: float = 0.0  # clock.monotonic() of the Create


@dataclass
class Job:
    """One on-demand export job."""

    id: str
    data_integration_id: str
    data_integration_name: str
    data_integration_arn: str
    association_id: str
    association_arn: str
    domain: str
    object_type: str
    start_ms: int
    end_ms: int
    request_ms: int
    execution_configuration: dict[str, Any]
    destination: str
    bucket: str
    prefix: str
    folder: str
    kms_key: str
    records_per_file: int
    duration_seconds: float  # wall-clock seconds (time_scale applied), like every duration below
    forced_failure: bool
    selection: list[dict[str, Any]] = field(repr=False)
    never_ends: bool = False
    late_files_seconds: float = 0.0
    file_delay_seconds: float = 0.0
    status: str = IN_PROGRESS
    status_message: str | None = None
    files: list[str] = field(default_factory=list)
    file_written_ms: list[int] = field(default_factory=list)
    files_planned: int = 0
    files_pending: int = 0  # writes still scheduled on the job's thread
    timeline: list[tuple[float, int, int]] = field(default_factory=list, repr=False)  # see jobs.JobRunner
    records: int = 0
    finished_ms: int | None = None
    finished_seen_at: float | None = None  # clock.monotonic() when a List first showed the final status
    started_clock: float = 0.0  # clock.monotonic() when the job started (its timeline counts from here)
    finished_clock: float | None = None  # clock.monotonic() when it ended
    next_alarm: int | None = None  # the clock alarm of the timeline event its thread is to play next
    regresses: bool = False  # whether List shows IN_PROGRESS again after that (status_regression_seconds)
    cancel: threading.Event = field(default_factory=threading.Event, repr=False)

    def snapshot(self) -> dict[str, Any]:
        """Return the job as shown by ``GET /_emulator/jobs``."""
        return {
            "id": self.id,
            "dataIntegrationName": self.data_integration_name,
            "dataIntegrationArn": self.data_integration_arn,
            "dataIntegrationId": self.data_integration_id,
            "associationId": self.association_id,
            "associationArn": self.association_arn,
            "domainName": self.domain,
            "objectType": self.object_type,
            "startTimeMs": self.start_ms,
            "endTimeMs": self.end_ms,
            "requestTimeMs": self.request_ms,
            "executionConfiguration": self.execution_configuration,
            "status": self.status,
            "statusMessage": self.status_message,
            "destination": self.destination,
            "bucket": self.bucket,
            "folder": self.folder,
            "files": list(self.files),
            "fileWrittenTimesMs": list(self.file_written_ms),
            "filesPlanned": self.files_planned,
            "filesPending": self.files_pending,
            "records": self.records,
            "recordsSelected": len(self.selection),
            "durationSeconds": self.duration_seconds,
            "lateFilesSeconds": self.late_files_seconds,
            "fileDelaySeconds": self.file_delay_seconds,
            "neverEnds": self.never_ends,
            "finishedTimeMs": self.finished_ms,
            # On the account's clock (seconds, monotonic): a job's length and the lag to the poll that saw it end.
            "clock": {
                "started": self.started_clock,
                "finished": self.finished_clock,
                "finishSeen": self.finished_seen_at,
            },
        }


@dataclass
class ArmedRule:
    """A fault rule as it runs: when it was armed and how often it has fired."""

    rule: FaultRule
    armed_at: float  # clock.monotonic()
    fired: int = 0

    def snapshot(self) -> dict[str, Any]:
        """Return the rule as shown by ``GET /_emulator/faults``."""
        remaining = None if self.rule.count is None else max(self.rule.count - self.fired, 0)
        return {"rule": self.rule.model_dump(), "fired": self.fired, "remaining": remaining}


class EmulatorState:
    """Everything the emulated service of one account and Region knows, behind one lock."""

    def __init__(
        self,
        *,
        region: str,
        account_id: str,
        config: EmulatorConfig,
        s3_client_factory: S3ClientFactory,
        authorizer: Authorizer,
        clock: Clock | None = None,
    ) -> None:
        self.region = region
        self.clock: Clock = clock if clock is not None else RealClock()  # kept across reset()
        self.account_id = account_id
        self.lock = threading.RLock()
        self.initial_config = config.model_copy(deep=True)
        self.config = config.model_copy(deep=True)
        self.rng = random.Random(self.config.random_seed)
        self.s3_client_factory = s3_client_factory
        self.authorizer = authorizer  # construction-time wiring, kept across reset()
        self.seq = 0
        self.data_integrations: dict[str, DataIntegration] = {}
        self.associations: dict[str, Association] = {}
        self.jobs: dict[str, Job] = {}
        self.objects: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        self.threads: list[threading.Thread] = []
        self.fault_rules: list[ArmedRule] = []
        self.arm_fault_rules()

    def arm_fault_rules(self) -> None:
        """(Re-)arm the configured fault rules: their windows and counts start now."""
        now = self.clock.monotonic()
        self.fault_rules = [ArmedRule(rule=rule, armed_at=now) for rule in self.config.fault_rules]

    def next_seq(self) -> int:
        """A strictly increasing number: creation order, and the position paging tokens refer to."""
        self.seq += 1
        return self.seq

    def now_ms(self) -> int:
        """The emulator clock in epoch milliseconds."""
        return self.config.now_ms()

    def data_integration_arn(self, di_id: str) -> str:
        """The documented ARN of a data integration."""
        return f"arn:aws:app-integrations:{self.region}:{self.account_id}:data-integration/{di_id}"

    def association_arn(self, di_id: str, assoc_id: str) -> str:
        """The documented ARN of a data integration association."""
        return (
            f"arn:aws:app-integrations:{self.region}:{self.account_id}:data-integration-association/{di_id}/{assoc_id}"
        )

    def clear(self) -> None:
        """Stop every job and forget every record; restore the configuration given at construction."""
        for job in self.jobs.values():
            job.cancel.set()
        self.data_integrations.clear()
        self.associations.clear()
        self.jobs.clear()
        self.objects.clear()
        self.config = self.initial_config.model_copy(deep=True)
        self.rng = random.Random(self.config.random_seed)
        self.threads = [t for t in self.threads if t.is_alive()]
        self.arm_fault_rules()
