"""The pipeline's promises, checked against what it left behind (S3, the state table, SNS, events, the service).

Each check returns the violations it found (strings that say what and where); `Counts` keeps the
totals the soak prints after every schedule.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from local.observe import PipelineObserver, Version, versions
from local.soak.world import World


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


@dataclass
class Counts:
    """What the soak has seen so far (all cumulative)."""

    schedules: int = 0
    executions: int = 0
    jobs: int = 0
    exported_versions: int = 0
    failures_recorded: int = 0
    alerts: int = 0
    lost: int = 0
    duplicate_jobs: int = 0
    overlapping_jobs: int = 0
    duplicate_reports: int = 0
    unreported: int = 0
    gaps_or_overlaps: int = 0
    failures_without_one_alert: int = 0
    alerts_without_a_failure: int = 0
    executions_without_a_verdict: int = 0
    leases_left: int = 0
    # Current state: deletes and merges in the domain, reconciles, and what the current-state tables hold.
    deleted: int = 0
    merged_profiles: int = 0
    reconciles: int = 0
    confirmed_reconciles: int = 0
    current_checked: int = 0
    current_stale: int = 0
    current_extra: int = 0
    reconcile_inexact: int = 0
    replays: int = 0
    replay_changed: int = 0
    violations: list[str] = field(default_factory=list)

    def add(self, name: str, found: list[str]) -> None:
        setattr(self, name, getattr(self, name) + len(found))
        self.violations.extend(f"{name}: {text}" for text in found)

    @property
    def ok(self) -> bool:
        return not self.violations

    def line(self) -> str:
        """One line of counts, as the soak prints after every schedule."""
        return (
            f"schedules {self.schedules}, executions {self.executions}, jobs {self.jobs}, "
            f"versions exported {self.exported_versions}, failures {self.failures_recorded}, alerts {self.alerts} | "
            f"lost {self.lost}, duplicate jobs {self.duplicate_jobs}, overlapping jobs {self.overlapping_jobs}, "
            f"duplicate reports {self.duplicate_reports}, unreported {self.unreported}, "
            f"window gaps/overlaps {self.gaps_or_overlaps}, failures without exactly one alert "
            f"{self.failures_without_one_alert}, alerts without a failure {self.alerts_without_a_failure}, "
            f"executions without a verdict {self.executions_without_a_verdict}, leases left {self.leases_left} | "
            f"deleted {self.deleted}, merged profiles {self.merged_profiles}, reconciles {self.reconciles} "
            f"({self.confirmed_reconciles} confirmed), "
            f"current rows checked {self.current_checked}: stale {self.current_stale}, "
            f"extra {self.current_extra}, inexact after a reconcile {self.reconcile_inexact}, "
            f"changed by {self.replays} replayed merges {self.replay_changed}"
        )


@dataclass
class Invariants:
    """Checks one soak's stack after a schedule; remembers messages and events seen so far."""

    observer: PipelineObserver
    world: World
    initial_start: str
    request_keys: dict[str, str]  # execution ARN -> the request it answers
    notifications: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    # A manifest never changes once written: each is read once (the soak's checks stay linear).
    manifest_versions: dict[str, set[Version]] = field(default_factory=dict)

    def collect(self) -> None:
        self.notifications += self.observer.notifications()
        self.events += self.observer.result_events()

    # -- data -------------------------------------------------------------------------------
    def lost(self) -> tuple[list[str], int]:
        """Every object's newest version last updated before its type's watermark is in a manifest."""
        found, exported_total = [], 0
        for object_type in self.world.object_types:
            watermark = self.observer.watermark(self.world.domain, object_type)
            if watermark is None:
                continue
            cutoff = _ms(watermark)
            exported = self._exported(object_type)
            exported_total += len(exported)
            due = {v for v in versions(self.world.current(object_type)) if v.last_updated < cutoff}
            for version in sorted(due - exported, key=lambda v: (v.last_updated, v.id))[:20]:
                found.append(f"{object_type} {version.id}@{version.last_updated} < watermark {watermark}")
        return found, exported_total

    def exported(self, object_type: str) -> set[Version]:
        """Every version an indexed export's manifest lists."""
        return self._exported(object_type)

    def _exported(self, object_type: str) -> set[Version]:
        exported: set[Version] = set()
        for run in self.observer.runs(self.world.domain, object_type):
            key = run.get("manifestKey")
            if run.get("status") != "SUCCEEDED" or not key:
                continue
            if key not in self.manifest_versions:
                self.manifest_versions[key] = versions(self.observer.manifest_records(key))
            exported |= self.manifest_versions[key]
        return exported

    def tiling(self) -> list[str]:
        """The scheduled windows that succeeded tile time from the initial start to the watermark."""
        found = []
        for object_type in self.world.object_types:
            runs = [
                r
                for r in self.observer.runs(self.world.domain, object_type)
                if r.get("status") == "SUCCEEDED" and not r.get("backfill")
            ]
            runs.sort(key=lambda r: r["windowStart"])
            expected = self.initial_start
            for run in runs:
                if run["windowStart"] != expected:
                    found.append(f"{object_type}: window {run['windowStart']}..{run['windowEnd']} after {expected}")
                expected = run["windowEnd"]
            watermark = self.observer.watermark(self.world.domain, object_type)
            if runs and watermark != expected:
                found.append(f"{object_type}: last window ends {expected}, watermark {watermark}")
        return found

    # -- jobs -------------------------------------------------------------------------------
    def jobs(self, jobs: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
        """No two jobs of an object type share a window; no two run at once."""
        duplicates, overlaps = [], []
        by_type: dict[str, list[dict[str, Any]]] = {}
        for job in jobs:
            by_type.setdefault(job["objectType"], []).append(job)
        for object_type, mine in by_type.items():
            windows = Counter((j["startTimeMs"], j["endTimeMs"]) for j in mine)
            duplicates += [f"{object_type}: {n} jobs for window {w}" for w, n in windows.items() if n > 1]
            mine.sort(key=lambda j: j["requestTimeMs"])
            running: dict[str, Any] | None = None  # the earlier job that ends last (None: ended before)
            for job in mine:
                if running is not None:
                    ended = running["finishedTimeMs"]
                    if ended is None or job["requestTimeMs"] < ended:
                        overlaps.append(
                            f"{object_type}: job {job['id'][:8]} requested at {job['requestTimeMs']} while "
                            f"{running['id'][:8]} ran (ended {ended})"
                        )
                if running is None or _ends_later(job, running):
                    running = job
        return duplicates, overlaps

    # -- reports ----------------------------------------------------------------------------
    def reports(self) -> tuple[list[str], list[str]]:
        """Each job reported once per request: one run record (by construction) and one result event."""
        duplicates, missing = [], []
        seen: Counter[tuple[str, str, str, str, str]] = Counter()
        for event in self.events:
            detail = event["detail"]
            if detail.get("status") in ("REJECTED", "BROKEN"):
                continue
            key = self.request_keys.get(detail.get("executionArn", ""), detail.get("executionArn", ""))
            window = detail.get("window") or {}
            seen[(detail["objectType"], window.get("start", ""), window.get("end", ""), key, detail["status"])] += 1
        duplicates = [f"{k}: {n} events" for k, n in seen.items() if n > 1]
        for object_type in self.world.object_types:
            for run in self.observer.runs(self.world.domain, object_type):
                status = "SUCCEEDED" if run["status"] == "SUCCEEDED" else run["status"]
                key = (object_type, run["windowStart"], run["windowEnd"], run["requestKey"], status)
                if seen[key] == 0:
                    missing.append(f"no result event for run {key}")
        return duplicates, missing

    def alerts(self) -> tuple[list[str], list[str], int, int]:
        """Every recorded failure produced exactly one FAILED message; every FAILED message has a failure."""
        failed_messages = [n for n in self.notifications if n["MessageAttributes"]["status"]["Value"] == "FAILED"]
        by_execution: dict[str, list[dict[str, Any]]] = {}
        for message in failed_messages:
            execution = next(
                (line.split(": ", 1)[1] for line in message["Message"].splitlines() if line.startswith("Execution: ")),
                "",
            )
            by_execution.setdefault(execution, []).append(message)
        without_one, failures = [], 0
        explained: set[str] = set()
        for object_type in self.world.object_types:
            for run in self.observer.runs(self.world.domain, object_type):
                # A run's failure, and the timeout its outcome replaced (the execution that gave up waiting
                # alerted on-call then): each must have produced exactly one FAILED message.
                told = [] if run["status"] == "SUCCEEDED" else [(run["executionArn"], run["status"])]
                if run.get("supersededExecutionArn"):
                    told.append((run["supersededExecutionArn"], run["supersededStatus"]))
                for execution, status in told:
                    failures += 1
                    messages = by_execution.get(execution, [])
                    line = f"{self.world.domain} / {object_type}: {status}, window {run['windowStart']}"
                    naming = [m for m in messages if line in m["Message"]]
                    if len(naming) != 1:
                        without_one.append(f"{execution} {object_type} {run['windowStart']}: {len(naming)}")
                    explained.add(execution)
        unexplained = []
        for execution, messages in by_execution.items():
            rejected = all(
                "request rejected" in m["Subject"]
                or "broke before" in m["Subject"]
                or "could not be recorded in the state table" in m["Message"]
                for m in messages
            )
            if execution not in explained and not rejected:
                unexplained.append(f"{execution}: {[m['Subject'] for m in messages]}")
            if len(messages) > 1:
                without_one.append(f"{execution}: {len(messages)} FAILED messages")
        return without_one, unexplained, failures, len(failed_messages)

    def verdicts(self, finished: dict[str, dict[str, Any]]) -> list[str]:
        """Every execution that ended told on-call: exactly one message per execution."""
        told = Counter(
            next((line.split(": ", 1)[1] for line in n["Message"].splitlines() if line.startswith("Execution: ")), "")
            for n in self.notifications
        )
        return [
            f"{arn}: {result['status']} {result.get('error')} with {told[arn]} messages"
            for arn, result in finished.items()
            if told[arn] != 1
        ]

    def leases(self, ddb: Any, table: str) -> list[str]:
        """After the soak settles: no lease, and no job the ledger still thinks runs."""
        found = []
        for object_type in self.world.object_types:
            items = ddb.query(
                TableName=table,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": f"EXPORT#{self.world.domain}#{object_type}"}},
            )["Items"]
            for item in items:
                sort_key = item["sk"]["S"]
                if sort_key == "LEASE":
                    found.append(f"{object_type}: lease left {json.dumps(item, default=str)[:300]}")
                if sort_key.startswith("JOB#") and item["state"]["S"] in ("SUBMITTING", "SUBMITTED"):
                    found.append(f"{object_type}: ledger still says {item['state']['S']} for {sort_key}")
        return found


@dataclass(frozen=True)
class Reconciled:
    """A reconcile the current-state table took: its cutoff and when its full export was requested."""

    cutoff_ms: int
    requested_ms: int


@dataclass
class CurrentStateCheck:
    """The current-state tables against the domain's live objects and what was exported.

    - every live object that was exported is in its table with its newest exported version (stale):
      a reconcile never removes an object that lives on, even one updated after its full export;
    - every id of the table that is not live was deleted, and no confirmed reconcile since its deletion
      could prove it (its row is at or after that reconcile's cutoff, or the reconcile looked before
      the deletion) (extra);
    - once a reconcile is confirmed (an export moved the watermark past the moment it looked): every
      live object last updated before its cutoff is in the table with that version, and no object
      deleted before it looked and older than the cutoff is (inexact).
    """

    domain: str
    deleted_at: dict[str, dict[str, int]] = field(default_factory=dict)  # type -> id -> deletion time (ms)
    reconciles: dict[str, list[Reconciled]] = field(default_factory=dict)  # type -> reconciles taken

    def record_deletions(self, object_type: str, ids: set[str], at_ms: int) -> None:
        for object_id in ids:
            self.deleted_at.setdefault(object_type, {}).setdefault(object_id, at_ms)

    def check(
        self,
        object_type: str,
        table: dict[str, int],
        live: dict[str, int],
        exported: set[Version],
    ) -> tuple[list[str], list[str], int]:
        newest: dict[str, int] = {}
        for version in exported:
            if version.last_updated > newest.get(version.id, -1):
                newest[version.id] = version.last_updated
        stale = [
            f"{object_type} {object_id}: table {table.get(object_id)}, newest exported {newest[object_id]}"
            for object_id in sorted(live)
            if object_id in newest and table.get(object_id) != newest[object_id]
        ]
        extra = []
        deleted = self.deleted_at.get(object_type, {})
        for object_id in sorted(set(table) - set(live)):
            when = deleted.get(object_id)
            if when is None:
                extra.append(f"{object_type} {object_id}@{table[object_id]}: in the table, never existed or deleted")
                continue
            proving = [
                r
                for r in self.reconciles.get(object_type, [])
                if r.requested_ms > when and table[object_id] < r.cutoff_ms
            ]
            if proving:
                extra.append(
                    f"{object_type} {object_id}@{table[object_id]}: deleted at {when}, still there after the reconcile "
                    f"with cutoff {proving[0].cutoff_ms}"
                )
        return stale[:20], extra[:20], len(table)

    def after_reconcile(
        self, object_type: str, reconciled: Reconciled, table: dict[str, int], live: dict[str, int]
    ) -> list[str]:
        self.reconciles.setdefault(object_type, []).append(reconciled)
        found = [
            f"{object_type} {object_id}@{last}: live before the cutoff {reconciled.cutoff_ms}, table {table.get(object_id)}"
            for object_id, last in sorted(live.items())
            if last < reconciled.cutoff_ms and table.get(object_id) != last
        ]
        deleted = self.deleted_at.get(object_type, {})
        found += [
            f"{object_type} {object_id}@{table[object_id]}: deleted at {deleted[object_id]}, kept by the reconcile"
            for object_id in sorted(set(table) - set(live))
            if object_id in deleted
            and deleted[object_id] < reconciled.requested_ms
            and table[object_id] < reconciled.cutoff_ms
        ]
        return found[:20]


def _ends_later(job: dict[str, Any], other: dict[str, Any]) -> bool:
    """Whether `job` ends after `other` (a job still running ends last)."""
    if job["finishedTimeMs"] is None:
        return True
    return other["finishedTimeMs"] is not None and job["finishedTimeMs"] > other["finishedTimeMs"]
