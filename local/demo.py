"""`make demo`: the whole pipeline offline over several scheduled days, then proof that nothing is missing.

The real template.yaml is deployed into moto, the real state machine runs in moto's interpreter
with the real handlers, and the AppIntegrations emulator plays Customer Profiles' bulk export.
Time is scaled (a 60 s Wait takes 0.6 s), so a simulated week runs in well under a minute. It ends
with the saved queries' answers from the pipeline's own catalog (DuckDB standing in for Athena),
checked against the objects it seeded, and with `cpexport status` as on-call would run it.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cpexport.catalog import view_name
from cpexport.models import render_utc
from cpexport_cli.app import run_cli

from local.athena import AthenaStandIn
from local.athena.report import answer_questions
from local.emulator.synthetic import generate, mutate
from local.harness.stack import OfflineStack
from local.observe import PipelineObserver, missing_versions, versions

ROOT = Path(__file__).resolve().parents[1]
DOMAIN = "demo-domain"
OBJECT_TYPES = ("_profile", "_asset", "_order")


def demo_start(days: int, now: datetime | None = None) -> datetime:
    """Midnight UTC `days` days ago: the last scheduled day ends at today's midnight, so the watermarks the
    demo leaves are hours old, as after a real schedule, and `cpexport status` judges them by the real clock."""
    today = (now or datetime.now(UTC)).astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days)


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def fresh_lambda_log(log_path: Path) -> Path:
    """An empty log file for the handlers' output: each Lambda sandbox writes its stdout/stderr there."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.write_text("")
    return log_path


class Demo:
    def __init__(self, stack: OfflineStack, observer: PipelineObserver, start: datetime) -> None:
        self.stack, self.observer = stack, observer
        self.start = start
        self.control = stack.emulator_control
        self.seeded: dict[str, list[dict[str, Any]]] = {t: [] for t in OBJECT_TYPES}
        self.summary: list[dict[str, Any]] = []
        self.messages: list[dict[str, Any]] = []

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
        inside the lag since).
        """
        begin, end = self.start + timedelta(days=day - 1), self.start + timedelta(days=day)
        counts = {"_profile": (300, 60), "_asset": (120, 25), "_order": (400, 80)}
        for index, (object_type, (new, changed)) in enumerate(counts.items()):
            seed = day * 10 + index
            fresh = generate(object_type, new if day == 1 else new // 4, ms(begin), ms(end - timedelta(hours=1)), seed)
            updates = mutate(
                self.latest(object_type), changed, ms(end - timedelta(hours=6)), seed, spread_ms=6 * 3600_000
            )
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

    def check_views(self, athena: AthenaStandIn) -> bool:
        """Each current-state view, as DuckDB computes it from the catalog, against the objects seeded.

        Every object whose newest version predates its type's watermark shows that version; an object
        changed since (inside the lag) shows a version it really had; nothing else is there.
        """
        print("\nThe current-state views (DuckDB over the Glue catalog and S3) against the seeded objects:")
        ok = True
        for object_type in OBJECT_TYPES:
            watermark = self.observer.watermark(DOMAIN, object_type)
            assert watermark is not None
            cutoff = _watermark_ms(watermark)
            rows = athena.query(f"SELECT id, lastupdated FROM {view_name(object_type)} WHERE domain = ?", [DOMAIN])
            shown = {row["id"]: row["lastupdated"] for row in rows}
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


@dataclass(frozen=True)
class DemoOutcome:
    """What the demo ends with: its exit code, the objects it seeded, the query answers, `cpexport status`'s code."""

    code: int
    seeded: dict[str, list[dict[str, Any]]]
    watermarks: dict[str, str | None]
    answers: dict[str, list[dict[str, Any]]]
    status_code: int


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
        print("\nWatermarks:")
        for object_type in OBJECT_TYPES:
            print(f"  {DOMAIN}/{object_type}: {observer.watermark(DOMAIN, object_type)}")
        ok = demo.check_nothing_missing()
        database = stack.outputs["GlueDatabaseName"]
        print(f"\nQueries, as Athena would answer them in workgroup {stack.outputs['AthenaWorkGroupName']}:")
        with AthenaStandIn(database, glue=stack.client("glue"), s3=stack.client("s3")) as athena:
            answers = answer_questions(athena)
            views_ok = demo.check_views(athena)
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
        passed = ok and views_ok and status_code == 0
        print("Demo " + ("PASSED: nothing is missing." if passed else "FAILED: see above."))
        return DemoOutcome(
            code=0 if passed else 1,
            seeded={object_type: list(objects) for object_type, objects in demo.seeded.items()},
            watermarks={object_type: observer.watermark(DOMAIN, object_type) for object_type in OBJECT_TYPES},
            answers=answers,
            status_code=status_code,
        )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The demo's options (shared by `python -m local demo` and `python -m local.demo`)."""
    parser.add_argument("--days", type=int, default=4, help="scheduled days to simulate, at least 2 (default 4)")
    parser.add_argument("--time-scale", type=float, default=0.01, help="Wait/Retry scale (default 0.01)")
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
