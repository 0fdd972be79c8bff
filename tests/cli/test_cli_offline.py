"""`cpexport` against the offline stack: the real template deployed into moto, real executions, real refusals.

One stack for the module. The scenario runs executions through the harness first: one with a
failed export (the emulator fails `_order`), one stopped by hand while its job runs (`_asset`:
its lease stays behind, its job keeps running). Then every command reads that state or fixes it,
in the order on-call would: status, runs, explain, release-lease (refused, then allowed), run,
replay, backfill, doctor.

Commands that start an execution run in a subprocess (`python -m cpexport_cli`, and once the
installed console script) with only --endpoint-url and test credentials: the handlers run in this
process and print their logs to stdout, which would mix into an in-process command's output.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from cpexport.clients.state_table import StateTable, job_sort_key
from cpexport.models import ExportWindow, render_utc
from cpexport_cli.app import cli, run_cli

from local.emulator.synthetic import generate
from local.harness.stack import OfflineStack

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = "cli-a"
TYPES = ("_profile", "_order", "_asset")
TIME_SCALE = 0.01
# The stopped execution's job: 2000 s scaled, long enough to still run while the refusal is checked.
SLOW_JOB_SECONDS = 2000

pytestmark = pytest.mark.e2e


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@dataclass
class Scenario:
    stack: OfflineStack
    initial_start: datetime
    failed_arn: str  # _profile succeeded, _order failed
    stopped_arn: str  # _asset: stopped while its job ran

    @property
    def options(self) -> list[str]:
        return [
            "--stack-name",
            self.stack.stack_name,
            "--region",
            self.stack.region,
            "--endpoint-url",
            self.stack.endpoint_url,
            "--appintegrations-endpoint-url",
            str(self.stack.appintegrations_endpoint_url),
        ]

    def state(self) -> StateTable:
        return StateTable(self.stack.outputs["StateTableName"], api=self.stack.client("dynamodb"))

    def executions(self) -> list[str]:
        sfn = self.stack.client("stepfunctions")
        listed = sfn.list_executions(stateMachineArn=self.stack.outputs["StateMachineArn"], maxResults=1000)
        return [e["executionArn"] for e in listed["executions"]]


def _wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.1)


@pytest.fixture(scope="module")
def scenario() -> Iterator[Scenario]:
    logging.getLogger("moto").setLevel(logging.ERROR)
    now = datetime.now(UTC)
    initial = (now - timedelta(days=3)).replace(hour=0, minute=0, second=0, microsecond=0)
    parameters = {"DomainNames": DOMAIN, "ObjectTypes": ",".join(TYPES), "InitialStartTime": render_utc(initial)}
    with OfflineStack(ROOT / "template.yaml", parameters, time_scale=TIME_SCALE, stack_name="cli") as stack:
        control = stack.emulator_control
        for seed, object_type in enumerate(TYPES):
            control.seed(
                DOMAIN, object_type, generate(object_type, 40, ms(initial), ms(now - timedelta(hours=1)), seed)
            )
        control.configure(fail_object_types=["_order"], job_duration_by_object_type={"_asset": SLOW_JOB_SECONDS})
        failed = stack.run_execution({"domainName": DOMAIN, "objectTypes": ["_profile", "_order"]}, timeout=120)
        assert failed["status"] == "FAILED", failed

        stopped = stack.start_execution({"domainName": DOMAIN, "objectTypes": ["_asset"]})
        state = StateTable(stack.outputs["StateTableName"], api=stack.client("dynamodb"))

        def asset_waiting() -> bool:
            # Submitted (the lease says so) and StartExport has returned: the execution polls the job.
            lease = state.get_lease(DOMAIN, "_asset")
            events = stack.execution_history(stopped)
            polling = any(e.get("stateEnteredEventDetails", {}).get("name") == "WaitForExport" for e in events)
            return lease is not None and lease.submitted_at is not None and polling

        _wait_for(asset_waiting, 60, "the _asset job was never submitted")
        stack.client("stepfunctions").stop_execution(executionArn=stopped, error="OnCall", cause="stopped by hand")
        stack.wait_execution(stopped, timeout=30)
        yield Scenario(stack, initial, failed["executionArn"], stopped)


def invoke(scenario: Scenario, *arguments: str) -> Result:
    """The command in this process, through click's test runner, wide enough not to wrap."""
    runner = CliRunner(mix_stderr=False, env={"COLUMNS": "250"})
    return runner.invoke(cli, [*arguments, *scenario.options], catch_exceptions=False)


def invoke_json(scenario: Scenario, *arguments: str) -> tuple[int, Any]:
    result = invoke(scenario, *arguments, "--output", "json")
    return result.exit_code, json.loads(result.stdout)


def run_command(scenario: Scenario, program: list[str], *arguments: str, timeout: float = 180) -> tuple[int, Any, str]:
    """The command in its own process, with test credentials and the stack's endpoints only.

    The module form gets the source folders on PYTHONPATH; the installed script must find both
    packages by itself.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "PYTHONPATH"}
    env |= {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    if program == MODULE:
        env["PYTHONPATH"] = os.pathsep.join(str(ROOT / part) for part in ("cli", "layers/common"))
    completed = subprocess.run(
        [*program, *arguments, *scenario.options, "--output", "json"],
        # Not the project folder: the installed script must not depend on it.
        cwd=ROOT if program == MODULE else tempfile.gettempdir(),
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return completed.returncode, json.loads(completed.stdout), completed.stderr


MODULE = [sys.executable, "-m", "cpexport_cli"]


def rows_by_type(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["objectType"]: row for row in document["objectTypes"]}


# --------------------------------------------------------------------------------- reading the state
def test_status_shows_the_failure_the_running_job_the_left_lease_and_the_stale_alarm(scenario):
    code, document = invoke_json(scenario, "status")

    assert code == 1  # something needs attention
    assert document["stackName"] == "cli" and document["attention"] == "alert"
    rows = rows_by_type(document)
    assert list(rows) == list(TYPES)
    profile, order, asset = rows["_profile"], rows["_order"], rows["_asset"]

    assert profile["attention"] == "ok", profile["reasons"]
    assert profile["lastRun"]["status"] == "SUCCEEDED"
    assert profile["watermark"] == profile["lastRun"]["window"]["end"]
    assert not profile["staleAlarm"]["wouldFire"]

    assert order["attention"] == "alert"
    assert order["lastRun"]["status"] == "FAILED"
    assert order["watermark"] is None and order["staleAlarm"]["wouldFire"]
    assert "forced by the emulator" in order["reasons"][0]["message"]
    assert "the next run exports the window again" in order["reasons"][0]["message"]

    lease, job = asset["lease"], asset["job"]
    assert lease["executionArn"] == scenario.stopped_arn
    assert lease["executionStatus"] != "RUNNING"
    assert job["running"] and job["associationStatus"] == "IN_PROGRESS"
    assert job["window"] == lease["window"] and job["elapsedSeconds"] >= 0
    assert job["dataIntegrationName"] == "cli.cli-a._asset"
    assert any("its job still runs" in reason["message"] for reason in asset["reasons"])


def test_status_table_says_what_needs_attention_in_words(scenario):
    result = invoke(scenario, "status")

    assert result.exit_code == 1
    assert "IN_PROGRESS for" in result.stdout
    assert "ALERT cli-a/_order: last run FAILED" in result.stdout
    assert "the stale-export alarm fires" in result.stdout
    assert "3 object type(s): 2 alert(s), 0 warning(s), 1 ok: needs attention" in result.stdout


def test_release_lease_is_refused_while_the_job_runs_and_says_what_it_checked(scenario):
    before = scenario.state().get_lease(DOMAIN, "_asset")

    code, document = invoke_json(scenario, "release-lease", "--domain", DOMAIN, "--type", "_asset")

    assert code == 1
    assert document["released"] is False
    outcomes = {check["name"]: check["outcome"] for check in document["checks"]}
    assert outcomes == {"execution": "ok", "service": "refused", "ledger": "ok"}
    service = next(check for check in document["checks"] if check["name"] == "service")
    assert "ListDataIntegrationAssociations" in service["detail"] and "IN_PROGRESS" in service["detail"]
    assert scenario.state().get_lease(DOMAIN, "_asset") == before  # untouched


def test_runs_lists_the_run_index_newest_first_and_filters_failures(scenario):
    code, document = invoke_json(scenario, "runs")
    assert code == 0
    runs = document["runs"]
    assert [r["recordedAt"] for r in runs] == sorted((r["recordedAt"] for r in runs), reverse=True)
    succeeded = next(r for r in runs if r["objectType"] == "_profile")
    assert succeeded["status"] == "SUCCEEDED" and succeeded["records"] == 40 and succeeded["files"] >= 1
    assert succeeded["manifest"].startswith(f"s3://{scenario.stack.outputs['ExportBucketName']}/exports/")
    assert succeeded["executionArn"] == scenario.failed_arn
    assert succeeded["correlationId"] == scenario.failed_arn.rsplit(":", 1)[-1]

    _, failed = invoke_json(scenario, "runs", "--failed", "--type", "_order")
    assert [(r["objectType"], r["status"]) for r in failed["runs"]] == [("_order", "FAILED")]
    assert "forced by the emulator" in failed["runs"][0]["message"]

    _, last = invoke_json(scenario, "runs", "--last", "1")
    assert last["runs"] == runs[:1]

    table = invoke(scenario, "runs", "--failed")
    assert "FAILED cli-a/_order" in table.stdout and "forced by the emulator" in table.stdout


def test_runs_refuses_an_object_type_the_stack_does_not_export(scenario):
    result = invoke(scenario, "runs", "--type", "_case")

    assert result.exit_code == 2
    assert "--type _case: not configured in stack cli (configured: _profile, _order, _asset)" in result.stderr


def test_explain_tells_the_plan_the_polls_the_failure_and_where_the_watermark_stays(scenario):
    name = scenario.failed_arn.rsplit(":", 1)[-1]

    result = invoke(scenario, "explain", name)  # by name: resolved on the stack's state machine

    assert result.exit_code == 0
    text = result.stdout
    assert f"Execution {name} FAILED" in text
    assert "Plan: 2 export(s)." in text
    assert "cli-a/_order" in text and "polled" in text
    assert "FAILED: Export of object type _order failed (forced by the emulator's fail_object_types)." in text
    assert "No watermark yet: the next run starts again from InitialStartTime." in text
    assert "The watermark moved to" in text  # _profile
    assert "Notification: Customer Profiles export FAILED" in text

    _, story = invoke_json(scenario, "explain", scenario.failed_arn)
    outcomes = {e["objectType"]: e["outcome"] for e in story["exports"]}
    assert outcomes == {"_profile": "SUCCEEDED", "_order": "FAILED"}
    assert all(e["polls"] >= 1 and e["submission"] == "SUBMITTED" for e in story["exports"])
    assert story["verdict"]["status"] == "FAILED"


def test_explain_of_the_stopped_execution_points_at_the_lease_it_left(scenario):
    _, story = invoke_json(scenario, "explain", scenario.stopped_arn)

    assert story["status"] != "RUNNING" and story["verdict"] is None
    assert story["exports"][0]["submission"] == "SUBMITTED"
    assert any("may still hold its LEASE" in line for line in story["story"])


def test_explain_of_a_rejected_request_says_nothing_changed(scenario):
    arn = scenario.stack.start_execution({"domainName": "not-configured"})
    scenario.stack.wait_execution(arn, timeout=60)

    result = invoke(scenario, "explain", arn)

    assert result.exit_code == 0
    assert "Rejected before anything started: invalid export request: domainName: not-configured" in result.stdout
    assert "Nothing changed: no job, no watermark moved." in result.stdout


def test_explain_of_an_unknown_execution_is_not_found(scenario):
    result = invoke(scenario, "explain", "no-such-execution")

    assert result.exit_code == 3
    assert "execution no-such-execution does not exist" in result.stderr


# --------------------------------------------------------------------------------- fixing things
def test_run_wait_exports_the_failed_window_with_one_command(scenario):
    scenario.stack.emulator_control.configure(fail_object_types=[])

    code, document, progress = run_command(
        scenario, MODULE, "run", "--domain", DOMAIN, "--type", "_order", "--wait", "--poll-seconds", "0.2"
    )

    assert code == 0, progress
    execution, result = document["execution"], document["result"]
    assert execution["name"].startswith("cpexport-run-")
    assert execution["consoleUrl"].endswith(f"#/v2/executions/details/{execution['executionArn']}")
    assert execution["input"] == {"domainName": DOMAIN, "objectTypes": ["_order"], "correlationId": execution["name"]}
    assert [p["window"]["start"] for p in execution["planned"]] == [render_utc(scenario.initial_start)]
    assert result["status"] == "SUCCEEDED"
    (export,) = result["exports"]
    assert export["outcome"] == "SUCCEEDED" and export["result"]["records"] == 40
    assert "cli-a/_order" in progress and "SUCCEEDED" in progress  # the progress display, on stderr
    _, status = invoke_json(scenario, "status", "--type", "_order")
    assert rows_by_type(status)["_order"]["watermark"] == export["result"]["watermark"]


def test_release_lease_wants_force_for_a_submitted_job_the_service_never_showed(scenario):
    # Given a lease and a SUBMITTED ledger item for a window the service has never seen (a submitter that
    # crashed between recording the job and the service answering), held by an execution that ended
    state = scenario.state()
    ddb, table = scenario.stack.client("dynamodb"), scenario.stack.outputs["StateTableName"]
    window = ExportWindow(start=datetime(2026, 1, 1, tzinfo=UTC), end=datetime(2026, 1, 2, tzinfo=UTC))
    common = {"pk": {"S": f"EXPORT#{DOMAIN}#_profile"}, "executionArn": {"S": scenario.failed_arn}}
    acquired = {"S": "2026-01-02T00:00:00Z"}
    ddb.put_item(
        TableName=table,
        Item=common
        | {
            "sk": {"S": "LEASE"},
            "windowStart": {"S": render_utc(window.start)},
            "windowEnd": {"S": render_utc(window.end)},
            "requestKey": {"S": "execution:crashed"},
            "acquiredAt": acquired,
            "submittedAt": acquired,
        },
    )
    ddb.put_item(
        TableName=table,
        Item=common
        | {"sk": {"S": job_sort_key(window)}, "state": {"S": "SUBMITTED"}, "submittedAt": acquired}
        | {"windowStart": {"S": render_utc(window.start)}, "windowEnd": {"S": render_utc(window.end)}},
    )

    code, refused = invoke_json(scenario, "release-lease", "--domain", DOMAIN, "--type", "_profile")
    assert code == 1 and not refused["released"]
    ledger = next(check for check in refused["checks"] if check["name"] == "ledger")
    assert ledger["outcome"] == "needs-force" and "the job may still show up" in ledger["detail"]
    assert "pass --force" in refused["message"]
    assert state.get_lease(DOMAIN, "_profile") is not None

    code, forced = invoke_json(scenario, "release-lease", "--domain", DOMAIN, "--type", "_profile", "--force")
    assert code == 0 and forced["released"]
    assert state.get_lease(DOMAIN, "_profile") is None


def test_release_lease_frees_the_stuck_object_type_once_its_job_ended(scenario):
    scenario.stack.emulator_control.wait_idle(timeout=90)
    lease = scenario.state().get_lease(DOMAIN, "_asset")
    assert lease is not None

    result = invoke(scenario, "release-lease", "--domain", DOMAIN, "--type", "_asset")

    assert result.exit_code == 0, result.stdout + result.stderr
    assert "OK          service: ListDataIntegrationAssociations shows the last job" in result.stdout
    assert "COMPLETED, not IN_PROGRESS" in result.stdout
    assert "released the lease of" in result.stdout
    assert scenario.state().get_lease(DOMAIN, "_asset") is None
    code, again = invoke_json(scenario, "release-lease", "--domain", DOMAIN, "--type", "_asset")
    assert code == 0 and again["lease"] is None and "nothing to release" in again["message"]


def test_replay_of_a_missed_tick_sends_exactly_the_schedules_input(scenario):
    scenario.stack.emulator_control.configure(job_duration_by_object_type={})
    tick = (datetime.now(UTC) - timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)

    code, document, progress = run_command(
        scenario, MODULE, "replay", render_utc(tick), "--wait", "--poll-seconds", "0.2"
    )

    assert code == 0, progress
    assert document["execution"]["input"] == {"scheduledTime": render_utc(tick)}
    result = document["result"]
    assert result["clock"] == render_utc(tick) and result["status"] == "SUCCEEDED"
    # _profile and _order are already exported past this tick; _asset (never exported) is not
    assert {s["objectType"] for s in result["skipped"]} == {"_profile", "_order"}
    assert [(e["objectType"], e["outcome"]) for e in result["exports"]] == [("_asset", "SUCCEEDED")]
    _, runs = invoke_json(scenario, "runs", "--type", "_asset", "--last", "1")
    assert runs["runs"][0]["requestKey"] == f"scheduled:{render_utc(tick)}"  # the same request as the tick


def test_replay_in_the_future_is_refused_before_anything_starts(scenario):
    started = len(scenario.executions())
    future = render_utc(datetime.now(UTC) + timedelta(hours=2))

    result = invoke(scenario, "replay", future)

    assert result.exit_code == 2
    assert f"scheduledTime: {future} is in the future" in result.stderr
    assert "Nothing was started." in result.stderr
    assert len(scenario.executions()) == started


@pytest.mark.parametrize(
    ("start", "end", "reason"),
    [
        ("2026-11-10T00:00:00Z", "2026-11-01T00:00:00Z", "must be before endTime"),
        ("2026-11-10", "2026-11-11T00:00:00Z", "startTime: must be an ISO 8601 date-time"),
        ("2026-11-10T00:00:00Z", None, None),  # endTime later than the safety lag allows: filled in below
    ],
)
def test_backfill_with_a_bad_range_is_refused_before_anything_starts(scenario, start, end, reason):
    started = len(scenario.executions())
    if end is None:
        end, reason = render_utc(datetime.now(UTC)), "is later than"
    arguments = ["backfill", "--domain", DOMAIN, "--type", "_profile", "--from", start, "--to", end]

    code, document = invoke_json(scenario, *arguments)

    assert code == 2
    assert document["error"]["type"] == "InvalidInput" and reason in document["error"]["message"]
    assert len(scenario.executions()) == started


def test_the_installed_console_script_backfills_a_range_without_moving_the_watermark(scenario):
    script = shutil.which("cpexport", path=str(Path(sys.executable).parent))
    if script is None:
        if os.environ.get("CI"):
            pytest.fail("the cpexport console script is not installed: pip install -e '.[dev]' installs it")
        pytest.skip("the cpexport console script is not installed here (pip install -e '.[cli]')")
    watermark = scenario.state().get_watermark(DOMAIN, "_profile")
    start, end = scenario.initial_start, scenario.initial_start + timedelta(days=1)
    arguments = ["--domain", DOMAIN, "--type", "_profile", "--from", render_utc(start), "--to", render_utc(end)]

    code, document, progress = run_command(
        scenario, [script], "backfill", *arguments, "--wait", "--poll-seconds", "0.2", "--correlation-id", "crm-7"
    )

    assert code == 0, progress
    (export,) = document["result"]["exports"]
    assert export["backfill"] and export["outcome"] == "SUCCEEDED"
    assert export["window"] == {"start": render_utc(start), "end": render_utc(end)}
    assert document["result"]["correlationId"] == "crm-7"
    assert scenario.state().get_watermark(DOMAIN, "_profile") == watermark


# --------------------------------------------------------------------------------- the current-state tables
def test_reconcile_plans_a_full_export_to_the_watermark_and_leaves_the_watermark_where_it_was(scenario):
    watermark = scenario.state().get_watermark(DOMAIN, "_profile")

    code, document, progress = run_command(
        scenario, MODULE, "reconcile", "--domain", DOMAIN, "--type", "_profile", "--wait", "--poll-seconds", "0.2"
    )

    assert code == 0, progress
    execution, result = document["execution"], document["result"]
    assert execution["name"].startswith("cpexport-reconcile-")
    assert execution["input"] == {
        "reconcile": True,
        "domainName": DOMAIN,
        "objectTypes": ["_profile"],
        "correlationId": execution["name"],
    }
    full = {"start": render_utc(scenario.initial_start), "end": render_utc(watermark)}
    assert [p["window"] for p in execution["planned"]] == [full]
    assert result["status"] == "SUCCEEDED"
    assert "a reconcile of domain cli-a (_profile)" in " ".join(result["story"])
    (export,) = result["exports"]
    assert export["outcome"] == "SUCCEEDED" and export["result"]["records"] == 40
    # The same window as the first export's: the job's start moves a second earlier (the service refuses
    # a window a job of the data integration already had), the end is the watermark
    assert export["window"]["end"] == full["end"] and export["window"]["start"] <= full["start"]
    assert export["result"]["currentState"]["merged"] is True
    # the ids it lacks are candidates up to its cutoff; the first export past it confirms them (exactAsOf then)
    assert export["result"]["currentState"]["cutoff"] == render_utc(watermark)
    assert export["result"]["currentState"]["exactAsOf"] is None
    assert export["reconcile"] is True
    assert (
        "Current state: merged into cli.profile_state; what the full export no longer holds is recorded in"
        in " ".join(result["story"])
    )
    assert scenario.state().get_watermark(DOMAIN, "_profile") == watermark


def test_reconcile_of_an_object_type_the_stack_does_not_export_is_refused(scenario):
    started = len(scenario.executions())

    result = invoke(scenario, "reconcile", "--domain", DOMAIN, "--type", "_case")

    assert result.exit_code == 2
    assert "objectTypes: _case" in result.stderr and "Nothing was started." in result.stderr
    assert len(scenario.executions()) == started


def test_rebuild_current_merges_every_indexed_export_and_counts_the_live_objects(scenario):
    code, document = invoke_json(
        scenario, "rebuild-current", "--domain", DOMAIN, "--type", "_profile", "--type", "_order"
    )

    assert code == 0
    assert document["stackName"] == "cli"
    tables = {table["objectType"]: table for table in document["tables"]}
    succeeded = {
        object_type: [r for r in scenario.state().list_runs(DOMAIN, object_type) if r.get("status") == "SUCCEEDED"]
        for object_type in ("_profile", "_order")
    }
    for object_type, stem in (("_profile", "profile"), ("_order", "order")):
        assert tables[object_type] == {
            "domainName": DOMAIN,
            "objectType": object_type,
            "table": f"cli.{stem}_state",
            "exportsMerged": len(succeeded[object_type]),
            "expiredPartitions": [],
            "rebuilt": False,
            "objects": 40,
        }

    table = invoke(scenario, "rebuild-current", "--domain", DOMAIN, "--type", "_order", "--rebuild")
    assert table.exit_code == 0, table.stderr
    assert table.stdout.strip() == (
        f"cli.order_state (cli-a/_order): {len(succeeded['_order'])} export(s) merged after forgetting "
        "the domain's rows, 40 live objects"
    )
    assert "merging export" in table.stderr  # progress goes to stderr


def test_rebuild_current_says_which_statement_athena_failed_and_why(scenario):
    scenario.stack.account.athena_faults.fail_next_commits(1)
    try:
        code, document = invoke_json(scenario, "rebuild-current", "--domain", DOMAIN, "--type", "_order", "--rebuild")
    finally:
        scenario.stack.account.athena_faults.fail_next_commits(0)

    assert code == 1
    error = document["error"]
    assert error["exitCode"] == 1
    assert error["message"].startswith("clearing the table failed (FAILED): ICEBERG_COMMIT_ERROR")
    # The failed statement committed nothing: the table still holds every order
    _, again = invoke_json(scenario, "rebuild-current", "--domain", DOMAIN, "--type", "_order")
    assert again["tables"][0]["objects"] == 40


# --------------------------------------------------------------------------------- the deployment
def test_an_unknown_stack_is_reported_with_exit_code_3(scenario):
    runner = CliRunner(mix_stderr=False)
    options = [*scenario.options[2:], "--stack-name", "no-such-stack", "--output", "json"]

    result = runner.invoke(cli, ["status", *options])

    assert result.exit_code == 3
    error = json.loads(result.stdout)["error"]
    assert error["type"] == "DeploymentNotFound"
    assert "stack no-such-stack does not exist in Region us-east-1 at http://127.0.0.1:" in error["message"]


def test_run_cli_runs_a_command_in_process_and_returns_its_exit_code(scenario, capsys):
    code = run_cli(["runs", "--last", "1", *scenario.options, "--output", "json"])

    assert code == 0
    # JSON, not the table: a table's columns wrap with the terminal's width
    (run,) = json.loads(capsys.readouterr().out)["runs"]
    assert run["domainName"] == DOMAIN


def test_the_stack_name_comes_from_samconfig_of_the_chosen_environment(scenario, tmp_path: Path):
    config = tmp_path / "samconfig.toml"
    config.write_text('version = 0.1\n[offline.global.parameters]\nstack_name = "cli"\n')
    options = [*scenario.options[2:], "--config-file", str(config), "--config-env", "offline", "--output", "json"]

    result = CliRunner(mix_stderr=False).invoke(cli, ["runs", "--last", "1", *options])

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["stackName"] == "cli"


def test_doctor_checks_the_deployment_and_names_what_would_keep_exports_or_pages_from_working(scenario):
    code, document = invoke_json(scenario, "doctor")

    checks = {check["name"]: check for check in document["checks"]}
    assert list(checks) == [
        "stack",
        "resources",
        "bucket-policy",
        "bucket-encryption",
        "key-policy",
        "data-integrations",
        "export-jobs",
        "schedule",
        "alarms",
        "alarm-subscriptions",
    ]
    for name in ("stack", "resources", "key-policy", "data-integrations", "export-jobs"):
        assert checks[name]["status"] == "ok", checks[name]
    assert checks["data-integrations"]["summary"] == "3 of 20 data integrations once every object type exported"
    # AlertEmail is empty in this deployment: nobody would be paged
    assert checks["alarm-subscriptions"]["status"] == "fail"
    assert "nobody is paged" in checks["alarm-subscriptions"]["summary"]
    assert code == 1 and document["status"] == "fail"

    # A quota smaller than what the stack needs is a failure before any export runs into it
    _, tight = invoke_json(scenario, "doctor", "--data-integration-quota", "2")
    assert next(c for c in tight["checks"] if c["name"] == "data-integrations")["status"] == "fail"


def test_doctor_reads_the_bucket_policy_that_is_really_there(scenario):
    bucket = scenario.stack.outputs["ExportBucketName"]
    s3 = scenario.stack.client("s3")
    statement = {
        "Sid": "Allow AppIntegrations to write data to destination bucket",
        "Effect": "Allow",
        "Principal": {"Service": ["app-integrations.amazonaws.com"]},
        "Action": ["s3:GetObject", "s3:ListBucket", "s3:PutObject"],
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
        "Condition": {"StringEquals": {"aws:SourceAccount": scenario.stack.account_id}},
    }
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [statement]}))

    _, short = invoke_json(scenario, "doctor")
    check = next(c for c in short["checks"] if c["name"] == "bucket-policy")
    assert check["status"] == "fail"
    assert check["details"] == [
        f"missing: s3:PutObjectAcl on arn:aws:s3:::{bucket}",
        f"missing: s3:PutObjectAcl on arn:aws:s3:::{bucket}/*",
    ]

    statement["Action"] = [*statement["Action"], "s3:PutObjectAcl"]
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [statement]}))
    _, documented = invoke_json(scenario, "doctor")
    assert next(c for c in documented["checks"] if c["name"] == "bucket-policy")["status"] == "ok"
