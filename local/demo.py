"""`make demo`: the whole pipeline offline over several scheduled days, then proof that nothing is missing.

The real template.yaml is deployed into moto, the real state machine runs in moto's interpreter
with the real handlers, and the AppIntegrations emulator plays Customer Profiles' bulk export.
Time is scaled (a 60 s Wait takes 0.6 s), so a simulated week runs in well under a minute. After the
scheduled days comes a Saturday: identity resolution auto-merges duplicate profiles and a few objects are
deleted, which no incremental export can show; the weekly reconcile (a full export) then removes them from
the current-state tables, checked against the emulator's live objects. It ends with the saved queries'
answers through the offline Athena, and with `cpexport status` as on-call would run it.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import time
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cpexport.catalog import CURRENT_COUNT_BY_OBJECT_TYPE, deleted_table_name, state_table_name, view_name
from cpexport.current_state import exact_property
from cpexport.models import render_utc
from cpexport_cli.app import run_cli

from local.athena.report import answer_questions
from local.emulator.lifecycle import LifecyclePlan, plan_lifecycle
from local.emulator.synthetic import generate, mutate
from local.harness.stack import OfflineStack
from local.observe import PipelineObserver, missing_versions, versions

ROOT = Path(__file__).resolve().parents[1]
DOMAIN = "demo-domain"
OBJECT_TYPES = ("_profile", "_asset", "_order")
RECONCILE_SCHEDULE = "ExportStateMachineReconcile"
# A few new profiles each day are the same person as a known one (same e-mail and/or phone, same name):
# about 3 of day 1's 300 and 3 of each later day's 75, for the weekly auto-merge to find.
FIRST_DAY_DUPLICATE_RATE, LATER_DUPLICATE_RATE = 0.01, 0.04


def demo_start(days: int, now: datetime | None = None) -> datetime:
    """Midnight UTC `days` days ago: the last scheduled day ends at the last midnight at least two hours
    ago, so the watermarks the demo leaves are hours old, as after a real schedule, `cpexport status`
    judges them by the real clock, and an export run now moves the watermark past Saturday's reconcile."""
    moment = (now or datetime.now(UTC)).astimezone(UTC) - timedelta(hours=2)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days)


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def fresh_lambda_log(log_path: Path) -> Path:
    """An empty log file for the handlers' output: each Lambda sandbox writes its stdout/stderr there."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.write_text("")
    return log_path


def short(object_id: str) -> str:
    """An id as the demo prints it: its first 8 characters are enough to tell objects apart."""
    return object_id[:8]


def distinct_phones(profiles: list[dict[str, Any]], known: list[dict[str, Any]]) -> None:
    """Give a profile whose phone another person already has a free number of the same fictional range.

    The synthetic numbers come from 100 reserved ones per area code, so strangers would share them and the
    stand-in identity resolution (same e-mail or phone) would merge them; a duplicate meant as one person
    carries the name of the one it copies, and keeps the number.
    """
    in_use = {str(p.get("PhoneNumber")): p for p in known}
    for profile in profiles:
        phone = str(profile.get("PhoneNumber"))
        other = in_use.get(phone)
        same_person = other is not None and (
            other["id"] == profile["id"]
            or (other.get("FirstName"), other.get("LastName")) == (profile.get("FirstName"), profile.get("LastName"))
        )
        if other is not None and not same_person:
            free = (f"{phone[:-2]}{n:02d}" for n in range(100))
            profile["PhoneNumber"] = next((number for number in free if number not in in_use), phone)
        in_use[str(profile["PhoneNumber"])] = profile


@dataclass
class Removals:
    """What Saturday took from the domain: ids deleted per type (merged-away profiles included), the merges."""

    deleted: dict[str, set[str]]
    merged_away: list[str]
    moved: dict[str, set[str]]


class Demo:
    def __init__(self, stack: OfflineStack, observer: PipelineObserver, start: datetime) -> None:
        self.stack, self.observer = stack, observer
        self.start = start
        self.control = stack.emulator_control
        self.seeded: dict[str, list[dict[str, Any]]] = {t: [] for t in OBJECT_TYPES}
        self.summary: list[dict[str, Any]] = []
        self.messages: list[dict[str, Any]] = []
        # The same messages as published (every protocol's part): what a chat channel would receive.
        self.published: dict[str, dict[str, Any]] = {}

    def seed(self, object_type: str, objects: list[dict[str, Any]]) -> None:
        self.control.seed(DOMAIN, object_type, objects)
        self.seeded[object_type].extend(objects)

    def latest(self, object_type: str) -> list[dict[str, Any]]:
        newest: dict[str, dict[str, Any]] = {}
        for obj in self.seeded[object_type]:
            if obj["id"] not in newest or obj["lastUpdated"] >= newest[obj["id"]]["lastUpdated"]:
                newest[obj["id"]] = obj
        return list(newest.values())

    def changes_for_day(self, day: int) -> None:
        """New objects and updates during day `day`, some updates in its last 30 minutes (exported a day later).

        New objects appear before the day's last hour, so each is exported by that day's tick: the current
        view then holds every object seeded (in its newest version, or its last exported one if it changed
        inside the lag since). A few new profiles duplicate a known person; assets and orders belong to
        profiles seeded so far, so a merge moves them.
        """
        begin, end = self.start + timedelta(days=day - 1), self.start + timedelta(days=day)
        counts = {"_profile": (300, 60), "_asset": (120, 25), "_order": (400, 80)}
        for index, (object_type, (new, changed)) in enumerate(counts.items()):
            seed = day * 10 + index
            known = self.latest("_profile")
            fresh = generate(
                object_type,
                new if day == 1 else new // 4,
                ms(begin),
                ms(end - timedelta(hours=1)),
                seed,
                profile_ids=[p["id"] for p in known],
                duplicate_rate=FIRST_DAY_DUPLICATE_RATE if day == 1 else LATER_DUPLICATE_RATE,
                duplicates_of=known,
            )
            updates = mutate(
                self.latest(object_type), changed, ms(end - timedelta(hours=6)), seed, spread_ms=6 * 3600_000
            )
            if object_type == "_profile":
                distinct_phones([*fresh, *updates], known)
            self.seed(object_type, fresh + updates)
        print(
            f"  seeded {sum(len(v) for v in self.seeded.values())} object versions so far "
            f"({', '.join(f'{t}: {len(self.latest(t))}' for t in OBJECT_TYPES)} objects)"
        )

    def wait(self, execution_arn: str, label: str) -> dict[str, Any]:
        """Wait for an execution, printing each job's progress as it changes."""
        shown: dict[str, str] = {}
        known = {job["id"] for job in self.control.jobs()} if not shown else set()
        sfn = self.stack.client("stepfunctions")
        started = time.monotonic()
        while True:
            for job in self.control.jobs():
                if job["id"] in known:
                    continue
                line = f"{job['status']}, {len(job['files'])} files written"
                if shown.get(job["id"]) != line:
                    shown[job["id"]] = line
                    print(f"    {label}: {job['domainName']}/{job['objectType']} job {line}")
            described = sfn.describe_execution(executionArn=execution_arn)
            if described["status"] != "RUNNING":
                print(f"    {label}: execution {described['status']} after {time.monotonic() - started:.1f}s")
                return dict(described)
            if time.monotonic() - started > 300:
                raise TimeoutError(f"{execution_arn} still running after 300 s")
            time.sleep(0.2)

    def record(self, label: str, result: dict[str, Any]) -> None:
        output = json.loads(result.get("output") or "{}")
        self.summary.append({"run": label, "status": result["status"], "verdict": output.get("subject")})
        for message in self.observer.notifications():
            self.messages.append(message)
        for sent in self.observer.published():
            self.published[sent["MessageId"]] = sent

    def show_runs(self) -> None:
        print("\nRun index (DynamoDB), per object type:")
        print(f"  {'object type':<10} {'window':<44} {'status':<10} {'files':>5} {'records':>8} {'bytes':>10}")
        for object_type in OBJECT_TYPES:
            for run in self.observer.runs(DOMAIN, object_type):
                window = f"{run['windowStart']} .. {run['windowEnd']}"
                print(
                    f"  {object_type:<10} {window:<44} {run['status']:<10} {run.get('files', 0):>5} "
                    f"{run.get('records', 0):>8} {run.get('bytes', 0):>10}"
                    + ("  backfill" if run.get("backfill") else "")
                )

    def check_nothing_missing(self) -> bool:
        """Every object's current version, if last updated before the watermark, is in a manifest.

        Older versions an object had before a later update are not owed: an export carries each
        object's state at export time, as Customer Profiles does.
        """
        print("\nCompleteness: every object last updated before its type's watermark was exported")
        ok = True
        for object_type in OBJECT_TYPES:
            watermark = self.observer.watermark(DOMAIN, object_type)
            assert watermark is not None
            cutoff = _watermark_ms(watermark)
            current = self.latest(object_type)
            exported = self.observer.exported_versions(DOMAIN, object_type)
            due = {v for v in versions(current) if v.last_updated < cutoff}
            missing = missing_versions(current, exported, cutoff)
            pending = len(versions(current)) - len(due)
            status = "OK" if not missing else "MISSING DATA"
            ok = ok and not missing
            print(
                f"  {object_type:<10} watermark {watermark}: {len(due & exported)}/{len(due)} objects exported, "
                f"{len(missing)} missing, {pending} updated since (next run) -> {status}"
            )
        return ok

    def check_views(self) -> bool:
        """Each `*_current` view (the history view: newest exported version per id, deleted ones included)
        through the offline Athena, against the objects seeded.

        Every object whose newest version predates its type's watermark shows that version; an object
        changed since (inside the lag) shows a version it really had; nothing else is there.
        """
        print(
            "\nThe `*_current` views, the history (newest exported version per id, deleted ones included), "
            "against the seeded objects:"
        )
        ok = True
        for object_type in OBJECT_TYPES:
            watermark = self.observer.watermark(DOMAIN, object_type)
            assert watermark is not None
            cutoff = _watermark_ms(watermark)
            rows = self.observer.athena(
                f"SELECT id, lastupdated FROM {view_name(object_type)} WHERE domain = '{DOMAIN}'"  # nosec B608
            )
            shown = {str(row["id"]): int(str(row["lastupdated"])) for row in rows}
            had = {(obj["id"], obj["lastUpdated"]) for obj in self.seeded[object_type]}
            due = {obj["id"]: obj["lastUpdated"] for obj in self.latest(object_type) if obj["lastUpdated"] < cutoff}
            current = sum(shown.get(object_id) == last for object_id, last in due.items())
            unknown = sum((object_id, last) not in had for object_id, last in shown.items())
            good = current == len(due) and unknown == 0
            ok = ok and good
            print(
                f"  {view_name(object_type):<15} {len(shown)} objects of {len(self.latest(object_type))} seeded: "
                f"{current}/{len(due)} in their newest version, {len(shown) - current - unknown} changed since "
                f"(last exported version), {unknown} unknown -> {'OK' if good else 'WRONG'}"
            )
        return ok

    # ------------------------------------------------------------------ current state, deletions, reconcile
    def current_counts(self) -> dict[str, int]:
        """The saved query "Current count by object type" (the `_state` tables) for the demo's domain."""
        rows = self.observer.athena(CURRENT_COUNT_BY_OBJECT_TYPE)
        return {str(row["object_type"]): int(str(row["objects"])) for row in rows if row["domain"] == DOMAIN}

    def live(self, object_type: str) -> dict[str, int]:
        """id -> lastUpdated of the objects the domain holds now (the emulator's truth)."""
        return {str(o["id"]): int(o["lastUpdated"]) for o in self.control.objects(DOMAIN, object_type)}

    def saturday(self, at: datetime) -> Removals:
        """Identity resolution's weekly auto-merge and a few deletions, at `at` (after the last watermark)."""
        live = {t: [o["object"] for o in self.control.objects(DOMAIN, t)] for t in OBJECT_TYPES}
        # The first seed whose plan deletes an order, so that the demo always has one to follow.
        plan: LifecyclePlan = next(
            plan
            for plan in (plan_lifecycle(random.Random(seed), live, ms(at), auto_merge=True) for seed in range(100))
            if any(d.object_type == "_order" for d in plan.deletions)
        )
        answers = plan.apply(self.control, DOMAIN)
        # A merge changes objects by itself (the main profile, maybe the moved objects): the history has them too.
        for object_type in OBJECT_TYPES:
            known = {(o["id"], o["lastUpdated"]) for o in self.seeded[object_type]}
            self.seeded[object_type] += [
                o["object"]
                for o in self.control.objects(DOMAIN, object_type)
                if (o["id"], o["lastUpdated"]) not in known
            ]
        removals = Removals(deleted={t: set() for t in OBJECT_TYPES}, merged_away=[], moved={})
        for answer in answers:
            for object_type, ids in answer.get("deleted", {}).items():
                removals.deleted.setdefault(object_type, set()).update(ids)
            for object_type, ids in answer.get("changed", {}).items():
                if object_type != "_profile":
                    removals.moved.setdefault(object_type, set()).update(ids)
        for deletion, answer in zip(plan.deletions, answers, strict=False):
            also = {t: len(ids) for t, ids in answer["deleted"].items() if t != deletion.object_type}
            print(
                f"  deleted {deletion.object_type} {', '.join(short(i) for i in deletion.ids)}"
                + (f" (with its {', '.join(f'{n} {t}' for t, n in also.items())})" if also else "")
            )
        for merge, answer in zip(plan.merges, answers[len(plan.deletions) :], strict=True):
            removals.merged_away.extend(merge.profile_ids_to_merge)
            moved = {t: len(ids) for t, ids in answer["changed"].items() if t != "_profile"}
            print(
                f"  merged _profile {', '.join(short(i) for i in merge.profile_ids_to_merge)} into "
                f"{short(merge.main_profile_id)}"
                + (f", moving {', '.join(f'{n} {t}' for t, n in moved.items())}" if moved else "")
            )
        print(
            "  gone from the domain: "
            + ", ".join(f"{t} {len(removals.deleted.get(t, ()))}" for t in OBJECT_TYPES)
            + f" ({len(removals.merged_away)} of the profiles merged away)"
        )
        return removals

    def candidates(self, object_type: str) -> int:
        """How many rows a `_deleted` table holds for the demo's domain."""
        rows = self.observer.athena(
            f"SELECT count(*) AS n FROM {deleted_table_name(object_type)} WHERE domain = '{DOMAIN}'"  # nosec B608
        )
        return int(str(rows[0]["n"])) if rows else 0

    def tables(self) -> dict[str, dict[str, int]]:
        """id -> lastupdated of each `_state` table, through the offline Athena."""
        return {t: self.observer.current_table(DOMAIN, t) for t in OBJECT_TYPES}

    def exact_as_of(self, object_type: str) -> str | None:
        """The `exact_as_of.{domain}` property of a `_state` table (its Glue Parameters): the last reconcile's cutoff."""
        table = self.stack.client("glue").get_table(
            DatabaseName=self.stack.outputs["GlueDatabaseName"], Name=state_table_name(object_type)
        )["Table"]
        value = table.get("Parameters", {}).get(exact_property(DOMAIN))
        return str(value) if value is not None else None

    def deleted_rows(self, object_type: str, ids: set[str]) -> list[dict[str, Any]]:
        """The rows of a `_deleted` table for these ids."""
        if not ids:
            return []
        listed = ", ".join(f"'{i}'" for i in sorted(ids))
        return self.observer.athena(
            "SELECT id, lastupdated, deleted_by, detected_at "  # nosec B608: the demo's own ids and names
            f"FROM {deleted_table_name(object_type)} WHERE domain = '{DOMAIN}' AND id IN ({listed}) ORDER BY id"
        )

    def check_current_state(self, tables: dict[str, dict[str, int]], removals: Removals) -> bool:
        """After the reconcile, each `_state` table against the domain's live objects (the emulator).

        Exact as of the cutoff: every live object last updated before it is there in that version, no
        object removed before the reconcile with a row older than it remains, and every id of the table is
        live or has a row at or after the cutoff (a full export cannot prove those gone).
        """
        print("\nThe `_state` tables after the reconcile, against the domain's live objects:")
        ok = True
        for object_type in OBJECT_TYPES:
            exact = self.exact_as_of(object_type)
            table, live = tables[object_type], self.live(object_type)
            if exact is None:
                print(f"  {state_table_name(object_type):<15} no exact_as_of.{DOMAIN}: the reconcile did not finish")
                ok = False
                continue
            cutoff = _watermark_ms(exact)
            due = {i: last for i, last in live.items() if last < cutoff}
            exact_rows = sum(table.get(i) == last for i, last in due.items())
            kept = sorted(i for i in removals.deleted.get(object_type, ()) if i in table and table[i] < cutoff)
            unproven = sorted(i for i, last in table.items() if i not in live and last < cutoff)
            dropped = sorted(i for i, last in live.items() if last >= cutoff and i not in table)
            # A live object is never removed, even one changed after the cutoff (its next export is what tells).
            good = exact_rows == len(due) and not kept and not unproven and not dropped
            ok = ok and good
            print(
                f"  {state_table_name(object_type):<15} exact as of {exact}: {exact_rows}/{len(due)} live objects "
                f"in their version, {len(kept)} removed objects kept, {len(unproven)} ids neither live nor newer "
                f"than the cutoff, {len(table)} rows for {len(live)} live -> {'OK' if good else 'WRONG'}"
            )
            if dropped:
                print(
                    f"    WRONG: {len(dropped)} live objects changed after the cutoff are missing "
                    f"({', '.join(short(i) for i in dropped[:5])}{', ...' if len(dropped) > 5 else ''})"
                )
        return ok


@dataclass(frozen=True)
class DemoOutcome:
    """What the demo ends with: its exit code, the objects it seeded, the query answers, `cpexport status`'s code,
    and Saturday's removals with the current-state tables before and after the reconcile."""

    code: int
    seeded: dict[str, list[dict[str, Any]]]
    watermarks: dict[str, str | None]
    answers: dict[str, list[dict[str, Any]]]
    status_code: int
    counts_before: dict[str, int]
    counts_after: dict[str, int]
    removed: dict[str, list[str]]  # ids gone from the domain on Saturday, per type (merged-away profiles included)
    merged_away: list[str]
    tables_after: dict[str, list[str]]  # ids of each `_state` table after the reconcile
    deleted_rows: dict[str, list[dict[str, Any]]]  # `_deleted` rows of the merged-away profile and the deleted order


def run_demo(days: int, time_scale: float, log_path: Path) -> DemoOutcome:
    start = demo_start(days)
    parameters = {
        "DomainNames": DOMAIN,
        "ObjectTypes": ",".join(OBJECT_TYPES),
        "InitialStartTime": render_utc(start),
        "ExportPrefix": "exports",
    }
    print("Deploying template.yaml into moto (offline) ...")
    with OfflineStack(
        ROOT / "template.yaml",
        parameters,
        time_scale=time_scale,
        stack_name="demo",
        lambda_log=fresh_lambda_log(log_path),
    ) as stack:
        observer = PipelineObserver(stack, name="demo")
        demo = Demo(stack, observer, start)
        print(f"  stack outputs: {json.dumps(stack.outputs, indent=None)[:300]}...")
        for day in range(1, days + 1):
            tick = start + timedelta(days=day)
            print(f"\nDay {day}: objects change, then the schedule fires at {tick:%Y-%m-%dT%H:%M:%SZ}")
            demo.changes_for_day(day)
            if day == days - 1:
                print("  (the emulator will fail the _asset export today: on-call gets a FAILED message)")
                demo.control.configure(fail_object_types=["_asset"])
            result = demo.wait(stack.fire_schedule(scheduled_time=tick), f"day {day}")
            demo.control.configure(fail_object_types=[])
            demo.record(f"day {day} schedule", result)

        print("\nAnother system requests a backfill of _order through EventBridge:")
        request = {
            "domainName": DOMAIN,
            "objectTypes": ["_order"],
            "startTime": render_utc(start),
            "endTime": render_utc(start + timedelta(days=1)),
            "correlationId": "crm-backfill-42",
        }
        print(f"  detail: {json.dumps(request)}")
        entry = {
            "Source": "customer-profiles-export.requests",
            "DetailType": "Customer Profiles Export Requested",
            "Detail": json.dumps(request),
            "EventBusName": "default",
        }
        (arn,) = stack.put_events([entry]).execution_arns
        demo.record("backfill request", demo.wait(arn, "request"))
        for event in observer.result_events():
            if event["detail"].get("correlationId") == "crm-backfill-42":
                print(f"  result event: {event['detail-type']}: {json.dumps(event['detail'])}")

        print("\nA malformed request (unknown domain) is rejected, nothing changes:")
        bad = dict(entry, Detail=json.dumps({"domainName": "no-such-domain"}))
        (arn,) = stack.put_events([bad]).execution_arns
        demo.record("bad request", demo.wait(arn, "request"))

        demo.show_runs()
        print("\nSNS notifications (one per execution):")
        for message in demo.messages:
            print(f"  [{message['MessageAttributes']['status']['Value']}] {message['Subject']}")
        failed = next((m for m in demo.messages if m["MessageAttributes"]["status"]["Value"] == "FAILED"), None)
        if failed:
            print("\n  A failure message, as on-call reads it:")
            for line in failed["Message"].split("\nDetail (JSON):")[0].splitlines():
                print(f"    {line}")
            sent = demo.published.get(failed["MessageId"])
            if sent is not None:
                print(
                    "\n  The same message as a Slack or Teams channel gets it (the `https` part: a custom "
                    "notification of Amazon Q Developer in chat applications):"
                )
                chat = json.loads(json.loads(sent["Message"])["https"])
                for line in json.dumps(chat, indent=2, ensure_ascii=False).splitlines():
                    print(f"    {line}")
        print("\nWatermarks:")
        for object_type in OBJECT_TYPES:
            print(f"  {DOMAIN}/{object_type}: {observer.watermark(DOMAIN, object_type)}")
        ok = demo.check_nothing_missing()

        print('\nThe current-state tables (the saved query "Current count by object type", offline Athena):')
        before = demo.current_counts()
        print("  " + ", ".join(f"{state_table_name(t)} {before.get(t, 0)}" for t in OBJECT_TYPES))

        last_tick = start + timedelta(days=days)
        # Identity resolution runs on Saturday after the last tick: later than every watermark, as on AWS.
        saturday = min(last_tick + timedelta(minutes=5), datetime.now(UTC) - timedelta(seconds=1))
        print(
            f"\nSaturday {saturday:%Y-%m-%dT%H:%M:%SZ}: identity resolution auto-merges duplicates; "
            "Customer Profiles deletes a few objects"
        )
        removals = demo.saturday(saturday)
        held = demo.tables()
        still = {t: len(removals.deleted.get(t, set()) & set(held[t])) for t in OBJECT_TYPES}
        print(
            "  before the reconcile the `_state` tables still hold them (an export cannot see deletions): "
            + ", ".join(f"{t} {still[t]}/{len(removals.deleted.get(t, ()))}" for t in OBJECT_TYPES)
        )

        reconcile_at = saturday + timedelta(minutes=1)
        print(f"\nThe weekly reconcile (schedule {RECONCILE_SCHEDULE}) fires at {reconcile_at:%Y-%m-%dT%H:%M:%SZ}:")
        result = demo.wait(stack.fire_schedule(RECONCILE_SCHEDULE, scheduled_time=reconcile_at), "reconcile")
        demo.record("weekly reconcile", result)
        candidates = {t: demo.candidates(t) for t in OBJECT_TYPES}
        print(
            "  ids the full export lacks, recorded as candidates: "
            + ", ".join(f"{deleted_table_name(t)} {candidates[t]}" for t in OBJECT_TYPES)
            + "\n  (an object updated after the full export's window is absent from it too: the next export tells them apart)"
        )
        confirm_at = datetime.now(UTC).replace(microsecond=0)
        print(f"\nThe next scheduled export ({confirm_at:%Y-%m-%dT%H:%M:%SZ}) moves the watermark past the reconcile:")
        result = demo.wait(stack.fire_schedule(scheduled_time=confirm_at), "export")
        demo.record("export after the reconcile", result)
        after = demo.current_counts()
        print("  current count by object type, before -> after:")
        for object_type in OBJECT_TYPES:
            print(
                f"    {state_table_name(object_type):<15} {before.get(object_type, 0):>5} -> "
                f"{after.get(object_type, 0):>5}  ({len(removals.deleted.get(object_type, ())):>2} gone from the domain)"
            )
        tables = demo.tables()
        merged_away = next(iter(removals.merged_away), None)
        deleted_order = min(removals.deleted["_order"] - removals.moved.get("_order", set()), default=None)
        followed = {
            "_profile": {merged_away} if merged_away else set(),
            "_order": {deleted_order} if deleted_order else set(),
        }
        deleted_rows: dict[str, list[dict[str, Any]]] = {}
        for object_type, ids in followed.items():
            for object_id in sorted(ids):
                what = "merged-away profile" if object_type == "_profile" else "deleted order"
                where = "still in" if object_id in tables[object_type] else "left"
                print(f"  the {what} {short(object_id)} {where} {state_table_name(object_type)}")
            deleted_rows[object_type] = demo.deleted_rows(object_type, ids)
            for row in deleted_rows[object_type]:
                print(
                    f"    {deleted_table_name(object_type)}: id {short(str(row['id']))}, lastupdated {row['lastupdated']}, "
                    f"deleted_by {row['deleted_by']!r}, detected_at {row['detected_at']}"
                )
        for object_type in OBJECT_TYPES:
            print(
                f"  {state_table_name(object_type)} Parameters: {exact_property(DOMAIN)} = {demo.exact_as_of(object_type)}"
            )
        current_ok = demo.check_current_state(tables, removals)

        print(f"\nQueries, as Athena answers them (offline) in workgroup {stack.outputs['AthenaWorkGroupName']}:")
        answers = answer_questions(demo.observer.athena)
        views_ok = demo.check_views()
        print("\n$ cpexport status")
        status_code = run_cli(
            [
                "status",
                "--stack-name",
                stack.stack_name,
                "--region",
                stack.region,
                "--endpoint-url",
                stack.endpoint_url,
                "--appintegrations-endpoint-url",
                str(stack.appintegrations_endpoint_url),
            ]
        )
        if status_code != 0:
            print(f"  cpexport status exited {status_code}: a row needs attention (see above)")
        print(f"\nHandler logs: {log_path}")
        passed = ok and current_ok and views_ok and status_code == 0
        print(
            "Demo "
            + (
                "PASSED: nothing is missing, and the current state is exact as of the reconcile."
                if passed
                else "FAILED: see above."
            )
        )
        return DemoOutcome(
            code=0 if passed else 1,
            seeded={object_type: list(objects) for object_type, objects in demo.seeded.items()},
            watermarks={object_type: observer.watermark(DOMAIN, object_type) for object_type in OBJECT_TYPES},
            answers=answers,
            status_code=status_code,
            counts_before=before,
            counts_after=after,
            removed={t: sorted(ids) for t, ids in removals.deleted.items()},
            merged_away=list(removals.merged_away),
            tables_after={t: sorted(rows) for t, rows in tables.items()},
            deleted_rows=deleted_rows,
        )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The demo's options (shared by `python -m local demo` and `python -m local.demo`)."""
    parser.add_argument("--days", type=int, default=4, help="scheduled days to simulate, at least 2 (default 4)")
    parser.add_argument(
        "--time-scale", type=float, default=0.01, help="time scale (default 0.01; see local/durations.py)"
    )
    parser.add_argument("--log", type=Path, default=ROOT / ".local-state" / "demo-lambdas.log")


def run(args: argparse.Namespace) -> int:
    """Run the demo; 0 when nothing is missing."""
    if args.days < 2:
        raise SystemExit("--days must be at least 2 (day N-1 shows a failure, day N its recovery)")
    logging.getLogger("moto").setLevel(logging.CRITICAL)
    logging.getLogger("local").setLevel(logging.WARNING)
    # Known and harmless here: moto skips alarms/bucket policies; some handlers emit no metric.
    warnings.filterwarnings("ignore", message="Tried to parse")
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    return run_demo(args.days, args.time_scale, args.log).code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.demo", description=__doc__)
    add_arguments(parser)
    logging.basicConfig(level=logging.WARNING)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())


def _watermark_ms(watermark: str) -> int:
    """A watermark (ISO 8601, Z) as the epoch milliseconds objects are stamped with."""
    return ms(datetime.fromisoformat(watermark.replace("Z", "+00:00")))
