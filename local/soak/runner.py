"""Drive the soak: one simulated day after another, each with its changes, deliveries and faults."""

from __future__ import annotations

import json
import logging
import random
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from local.durations import of_setting
from local.emulator import random_faults
from local.harness.firing import DeliveryFailed
from local.harness.lambda_runtime import CrashAfterSideEffect
from local.harness.service_faults import ServiceFaultRule
from local.harness.stack import OfflineStack
from local.observe import PipelineObserver, versions
from local.soak.checks import Counts, CurrentStateCheck, Invariants, Reconciled
from local.soak.world import World, day_start, epoch_ms

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = "soak"
OBJECT_TYPES = ("_profile", "_order")
FUNCTIONS = ("PlanFunction", "StartExportFunction", "CheckExportFunction", "IndexExportFunction",
             "RecordFailureFunction", "NotifyFunction")  # fmt: skip
REQUESTED = "Customer Profiles Export Requested"
LOG = logging.getLogger("local.soak")
SETTLE_SECONDS = of_setting("index_settle_seconds").seconds or 0.0  # IndexSettleSeconds' default
RECONCILE_SCHEDULE = "ExportStateMachineReconcile"
# Identity resolution with auto-merging runs weekly; the reconcile schedule follows it a day later.
AUTO_MERGE_EVERY, RECONCILE_EVERY = (7, 6), (7, 0)


@dataclass
class SoakRun:
    """One soak: its seed, size and what it saw."""

    seed: int
    schedules: int
    time_scale: float = 0.002
    counts: Counts = field(default_factory=Counts)
    log: Callable[[str], None] = print


def _faults_for_the_day(rng: random.Random, stack: OfflineStack) -> dict[str, Any]:
    """The emulator's drawn faults plus the harness's: Lambda crashes after their work, service errors."""
    emulator = random_faults(rng, object_types=OBJECT_TYPES)
    # A job longer than ExportTimeoutHours times out: keep most days below it so windows advance.
    emulator["job_duration_seconds"] = rng.choice((60.0, 300.0, 900.0, 1800.0))
    # Files may appear after COMPLETED, but within the settle period the pipeline promises to wait
    # (IndexSettleSeconds); later than that is a documented limit, not something it can see.
    emulator["late_files_seconds"] = rng.choice((0.0, 0.0, 30.0, 0.8 * SETTLE_SECONDS))
    emulator["file_delay_seconds"] = rng.choice((0.0, 5.0, 0.4 * SETTLE_SECONDS))
    crashed = None
    if rng.random() < 0.25:
        crashed = rng.choice(FUNCTIONS)
        stack.crash_after_side_effect(crashed, CrashAfterSideEffect(count=rng.randrange(1, 3)))
    rules = []
    if rng.random() < 0.25:
        rules.append(
            ServiceFaultRule("dynamodb", "*", kind=rng.choice(("throttle", "internal")), count=rng.randrange(1, 6))
        )
    if rng.random() < 0.15:
        rules.append(ServiceFaultRule("sns", "Publish", kind="internal", count=rng.randrange(1, 3)))
    if rng.random() < 0.15:
        # Fewer than botocore's attempts: an event lost after every retry is alarmed, not a soak failure.
        rules.append(ServiceFaultRule("events", "PutEvents", kind="throttle", count=1))
    stack.service_faults.configure(rules, seed=rng.randrange(10**9))
    # Another writer wins an Iceberg commit now and then: the state machine's Retry must absorb it.
    conflicts = rng.randrange(1, 3) if rng.random() < 0.2 else 0
    stack.account.athena_faults.fail_next_commits(conflicts)
    return {
        "emulator": emulator,
        "crash": crashed,
        "service": [(r.service, r.operation, r.kind, r.count) for r in rules],
        "iceberg_commit_conflicts": conflicts,
    }


def _clear_faults(stack: OfflineStack) -> None:
    for function in FUNCTIONS:
        stack.crash_after_side_effect(function, None)
    stack.service_faults.configure([])
    stack.fail_next_trigger_starts(0)
    stack.account.athena_faults.fail_next_commits(0)


class Soak:
    """The stack, the world and the checks of one run."""

    def __init__(self, stack: OfflineStack, run: SoakRun, day0: datetime) -> None:
        self.stack, self.run, self.day0 = stack, run, day0
        self.rng = random.Random(run.seed)
        # Duplicate profiles for the weekly auto-merge, and orders that reference profiles, so merges move them.
        self.world = World(DOMAIN, OBJECT_TYPES, duplicate_profile_rate=0.1, link_to_profiles=True)
        self.current = CurrentStateCheck(DOMAIN)
        self.reconcile_events_seen = 0
        self.day_deleted = 0
        self.day_merged = 0
        self.control = stack.emulator_control
        self.observer = PipelineObserver(stack, name="soak")
        self.request_keys: dict[str, str] = {}
        self.finished: dict[str, dict[str, Any]] = {}
        self.pending: list[str] = []
        self.invariants = Invariants(self.observer, self.world, _iso(day0), self.request_keys)
        self.never_ending_since: dict[str, int] = {}
        self.lost_ticks: list[datetime] = []

    # -- deliveries --------------------------------------------------------------------------
    def tick(self, moment: datetime) -> None:
        try:
            arn = self.stack.fire_schedule(scheduled_time=moment)
        except DeliveryFailed:
            # Dead-lettered: on-call replays it from the DLQ (the runbook), a day later here.
            self.lost_ticks.append(moment)
            return
        self.request_keys[arn] = f"scheduled:{_iso(moment)}"
        self.pending.append(arn)

    def reconcile(self, moment: datetime) -> None:
        try:
            arn = self.stack.fire_schedule(RECONCILE_SCHEDULE, scheduled_time=moment)
        except DeliveryFailed:
            return  # dead-lettered: the next week's reconcile proves the same
        self.request_keys[arn] = f"reconcile-scheduled:{_iso(moment)}"
        self.pending.append(arn)

    def lifecycle(self, number: int, rng: random.Random) -> list[str]:
        """Customer Profiles deletes objects any day, and merges duplicate profiles once a week, by itself."""
        before = {object_type: set(self.world.objects[object_type]) for object_type in OBJECT_TYPES}
        at = day_start(self.day0, number - 1) + timedelta(hours=12)
        auto_merge = number % AUTO_MERGE_EVERY[0] == AUTO_MERGE_EVERY[1]
        plan = self.world.lifecycle(self.control, at, rng, auto_merge=auto_merge)
        gone = 0
        for object_type in OBJECT_TYPES:
            deleted = before[object_type] - set(self.world.objects[object_type])
            self.current.record_deletions(object_type, deleted, epoch_ms(at))
            gone += len(deleted)
        merged = sum(len(merge.profile_ids_to_merge) for merge in plan.merges)
        self.day_deleted, self.day_merged = gone, merged
        return [f"{gone} deleted"] + ([f"auto-merge of {merged} profiles"] if auto_merge else [])

    def request(self, detail: dict[str, Any], key: str | None) -> None:
        entry = {
            "Source": "customer-profiles-export.requests",
            "DetailType": REQUESTED,
            "Detail": json.dumps(detail),
            "EventBusName": "default",
        }
        for arn in self.stack.put_events([entry]).execution_arns:
            if key:
                self.request_keys[arn] = key
            self.pending.append(arn)

    def wait(self) -> None:
        for arn in self.pending:
            self.finished[arn] = self.stack.wait_execution(arn, timeout=900)
        self.pending = []

    # -- one day -----------------------------------------------------------------------------
    def day(self, number: int) -> dict[str, Any]:
        rng = self.rng
        changed = self.world.change(self.control, day_start(self.day0, number - 1), rng)
        lifecycle = self.lifecycle(number, rng)
        drawn = _faults_for_the_day(rng, self.stack)
        self.control.configure(**drawn["emulator"])
        if rng.random() < 0.15:
            # Step Functions refuses the tick's first starts (throttled): Scheduler retries, or dead-letters.
            self.stack.fail_next_trigger_starts(rng.randrange(1, 5))
        tick = day_start(self.day0, number)
        self.tick(tick)
        happened = [f"{changed} changes", *lifecycle]
        if number % RECONCILE_EVERY[0] == RECONCILE_EVERY[1]:
            self.reconcile(tick)
            happened.append("reconcile")
        if rng.random() < 0.2:
            self.tick(tick)  # delivered twice while the first runs
            happened.append("tick twice")
        if self.lost_ticks and rng.random() < 0.7:
            late = self.lost_ticks.pop(0)
            self.tick(late)
            happened.append(f"replay of dead-lettered {_iso(late)}")
        elif number > 2 and rng.random() < 0.1:
            self.tick(day_start(self.day0, rng.randrange(1, number)))  # a late re-delivery of an old tick
            happened.append("late re-delivery")
        if number > 3 and rng.random() < 0.15:
            first = rng.randrange(0, number - 2)
            start, end = day_start(self.day0, first), day_start(self.day0, first + rng.randrange(1, 3))
            correlation = f"backfill-{number}-{rng.randrange(10**6)}"
            detail = {
                "domainName": DOMAIN,
                "objectTypes": [rng.choice(OBJECT_TYPES)],
                "startTime": _iso(start),
                "endTime": _iso(end),
                "correlationId": correlation,
            }
            self.request(detail, f"correlation:{correlation}")
            if rng.random() < 0.3:
                self.request(detail, f"correlation:{correlation}")  # EventBridge delivers at least once
            happened.append("backfill")
        if rng.random() < 0.05:
            self.request({"domainName": DOMAIN, "startTime": "20261001"}, None)
            happened.append("bad request")
        self.wait()
        self.stack.fail_next_trigger_starts(0)
        self._finish_never_ending_jobs(number)
        return {"day": number, "happened": happened, "faults": drawn}

    def _finish_never_ending_jobs(self, number: int) -> None:
        """A job that never ends is ended by the service eventually (here: two days later)."""
        for job in self.control.jobs():
            if job["status"] != "IN_PROGRESS" or not job["neverEnds"]:
                continue
            since = self.never_ending_since.setdefault(job["id"], number)
            if number - since >= 2:
                self.control.finish_job(job["id"], self.rng.choice(("COMPLETED", "FAILED")))

    # -- checks ------------------------------------------------------------------------------
    def check(self, counts: Counts) -> None:
        invariants = self.invariants
        invariants.collect()
        lost, exported = invariants.lost()
        counts.add("lost", lost)
        counts.exported_versions = exported
        counts.add("gaps_or_overlaps", invariants.tiling())
        jobs = self.control.jobs()
        counts.jobs = len(jobs)
        duplicates, overlaps = invariants.jobs(jobs)
        counts.add("duplicate_jobs", duplicates)
        counts.add("overlapping_jobs", overlaps)
        duplicate_reports, unreported = invariants.reports()
        counts.add("duplicate_reports", duplicate_reports)
        counts.add("unreported", unreported)
        without_one, unexplained, failures, alerts = invariants.alerts()
        counts.add("failures_without_one_alert", without_one)
        counts.add("alerts_without_a_failure", unexplained)
        counts.failures_recorded, counts.alerts = failures, alerts
        counts.add("executions_without_a_verdict", invariants.verdicts(self.finished))
        counts.executions = len(self.finished)
        self.check_current_state(counts)

    def check_current_state(self, counts: Counts) -> None:
        """The current-state tables against the domain (see `CurrentStateCheck`), and a merge replayed."""
        counts.deleted += self.day_deleted
        counts.merged_profiles += self.day_merged
        self.day_deleted = self.day_merged = 0
        tables = {object_type: self.observer.current_table(DOMAIN, object_type) for object_type in OBJECT_TYPES}
        live = {
            object_type: {v.id: v.last_updated for v in versions(self.world.current(object_type))}
            for object_type in OBJECT_TYPES
        }
        for event in self.invariants.events[self.reconcile_events_seen :]:
            detail = event["detail"]
            state = detail.get("currentState") or {}
            if detail.get("reconcile") and state.get("merged"):
                counts.reconciles += 1
            # A reconcile's deletions reach the table with the first export past the moment it looked.
            label = state.get("confirmedReconcile")
            if not label or not state.get("merged") or not state.get("exactAsOf"):
                continue
            # When the full export looked, on the soak's timeline: the reconcile tick's scheduled time
            # (its folder's request time is the emulator's wall clock, not the simulated day).
            looked = (
                label.rsplit("(reconcile-scheduled:", 1)[-1].rstrip(")") if "(reconcile-scheduled:" in label else None
            )
            if looked is None:
                continue
            reconciled = Reconciled(_ms(state["exactAsOf"]), _ms(looked))
            object_type = detail["objectType"]
            counts.confirmed_reconciles += 1
            counts.add(
                "reconcile_inexact",
                self.current.after_reconcile(object_type, reconciled, tables[object_type], live[object_type]),
            )
        self.reconcile_events_seen = len(self.invariants.events)
        for object_type in OBJECT_TYPES:
            stale, extra, checked = self.current.check(
                object_type, tables[object_type], live[object_type], self.invariants.exported(object_type)
            )
            counts.add("current_stale", stale)
            counts.add("current_extra", extra)
            counts.current_checked += checked
        if self.rng.random() < 0.3:
            changed = self.replay_a_merge()
            counts.replays += 1
            counts.add("replay_changed", changed)

    def replay_a_merge(self) -> list[str]:
        """Merge an export the table already took once more: nothing may change."""
        object_type = self.rng.choice(OBJECT_TYPES)
        runs = [
            r for r in self.observer.runs(DOMAIN, object_type) if r.get("status") == "SUCCEEDED" and r.get("partitions")
        ]
        if not runs:
            return []
        run = self.rng.choice(runs)
        before = self.observer.current_table(DOMAIN, object_type)
        self.observer.replay_merge(object_type, [p["name"] for p in run["partitions"]])
        after = self.observer.current_table(DOMAIN, object_type)
        if before == after:
            return []
        changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        return [f"{object_type}: replaying {run['windowStart']}..{run['windowEnd']} changed {changed[:5]}"]

    def diagnostics(self, day: dict[str, Any]) -> dict[str, Any]:
        """What a failing schedule left: the day's draws, the service's jobs, the state table, the runs."""
        ddb = self.stack.client("dynamodb")
        items = {}
        for object_type in OBJECT_TYPES:
            items[object_type] = ddb.query(
                TableName=self.observer.table,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": f"EXPORT#{DOMAIN}#{object_type}"}},
            )["Items"]
        jobs = [
            {k: v for k, v in job.items() if k not in ("files", "fileWrittenTimesMs")}
            | {"fileCount": len(job["files"])}
            for job in self.control.jobs()
        ]
        return {"day": day, "jobs": jobs, "state": items, "finished": self.finished}

    def settle(self, counts: Counts) -> None:
        """After the last schedule: end every job, turn faults off, run clean ticks, then no lease may be left."""
        _clear_faults(self.stack)
        self.control.configure(**_no_faults())
        for job in self.control.jobs():
            if job["status"] == "IN_PROGRESS":
                self.control.finish_job(job["id"], "COMPLETED")
        for moment in self.lost_ticks:
            self.tick(moment)
        self.lost_ticks = []
        last = self.run.schedules
        for extra in (1, 2):
            self.tick(day_start(self.day0, last + extra))
            self.wait()
        # A last reconcile without faults, and the export that confirms it: every current-state table must then
        # be exact.
        self.reconcile(day_start(self.day0, last + 2) + timedelta(hours=1))
        self.wait()
        self.tick(day_start(self.day0, last + 3))
        self.wait()
        self.check(counts)
        counts.add("leases_left", self.invariants.leases(self.stack.client("dynamodb"), self.observer.table))


def _no_faults() -> dict[str, Any]:
    return {
        "throttle_rate": 0.0,
        "internal_error_rate": 0.0,
        "fault_rules": [],
        "fail_object_types": [],
        "never_ending_object_types": [],
        "never_ending_rate": 0.0,
        "late_files_seconds": 0.0,
        "file_delay_seconds": 0.0,
        "empty_status_seconds": 0.0,
        "status_regression_seconds": 0.0,
        "stale_status_seconds": 0.0,
        "job_duration_seconds": 60.0,
        "job_duration_by_object_type": {},
    }


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_soak(run: SoakRun, log_path: Path | None = None) -> Counts:
    """Deploy the real template offline, run `run.schedules` simulated days, check after each; return the counts."""
    logging.getLogger("moto").setLevel(logging.CRITICAL)
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    day0 = today - timedelta(days=run.schedules + 4)
    parameters = {
        "DomainNames": DOMAIN,
        "ObjectTypes": ",".join(OBJECT_TYPES),
        "InitialStartTime": _iso(day0),
        "ExportTimeoutHours": "1",
        "MaxConcurrentExports": "2",
    }
    counts = run.counts
    run.log(f"soak: seed {run.seed}, {run.schedules} schedules, time scale {run.time_scale}")
    started = time.monotonic()
    with OfflineStack(
        ROOT / "template.yaml",
        parameters,
        time_scale=run.time_scale,
        stack_name="soak",
        lambda_log=log_path,
        emulator_options={"random_seed": run.seed},
    ) as stack:
        soak = Soak(stack, run, day0)
        for number in range(1, run.schedules + 1):
            what = soak.day(number)
            counts.schedules = number
            soak.check(counts)
            run.log(f"day {number:>3} {', '.join(what['happened'])}: {counts.line()}")
            if not counts.ok:
                run.log(f"  violations: {counts.violations[:5]}")
                if log_path is not None:
                    dump = log_path.with_suffix(".failure.json")
                    dump.write_text(json.dumps(soak.diagnostics(what), indent=1, default=str))
                    run.log(f"  state at the failure: {dump}")
                break
        if counts.ok:
            soak.settle(counts)
        run.log(f"soak: seed {run.seed}, {time.monotonic() - started:.0f} s: {counts.line()}")
        if not counts.ok:
            run.log(f"soak FAILED (replay with --seed {run.seed}): {counts.violations[:20]}")
    return counts
