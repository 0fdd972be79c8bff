"""The `cpexport` command: click commands over the pipeline's own models and clients.

Every command takes the stack options (`--stack-name`, `--config-env`, `--config-file`), the
standard AWS options (`--profile`, `--region`, `--endpoint-url`, and `--appintegrations-endpoint-url`
for `python -m local serve`) and `--output table|json`, before or after the command's name.
Exit codes: 0 success; 1 the answer is "not OK" (a failed execution, a failing check, something
needing attention, a refusal); 2 invalid options or input (nothing started or changed); 3 the stack
or a service could not be found or read.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn, ParamSpec

import click
from botocore.exceptions import BotoCoreError, ClientError
from cpexport.clients.appintegrations import AppIntegrations
from cpexport.clients.athena import Athena
from cpexport.clients.glue import GlueCatalog
from cpexport.clients.state_table import StateTable
from cpexport.errors import ExportError
from cpexport.models import render_utc
from rich.text import Text

from cpexport_cli.connection import AwsOptions, Connection
from cpexport_cli.current_tables import rebuild_current
from cpexport_cli.deployment import Deployment, check_selection, find_deployment
from cpexport_cli.doctor import DEFAULT_DATA_INTEGRATION_QUOTA, Doctor
from cpexport_cli.doctor import Verdict as CheckVerdict
from cpexport_cli.errors import CliError, DeploymentNotFound, ExitCode, InvalidInput, ServiceUnreachable
from cpexport_cli.executions import (
    StillRunning,
    execution_name,
    follow_execution,
    plan_request,
    resolve_execution,
    start_execution,
    tell_execution,
)
from cpexport_cli.lease_release import release_lease
from cpexport_cli.output import (
    console,
    emit_json,
    now_utc,
    show_doctor,
    show_lines,
    show_release,
    show_runs,
    show_status,
    show_step,
    show_verdict,
)
from cpexport_cli.progress import ExecutionProgress
from cpexport_cli.runs import read_runs
from cpexport_cli.samconfig import DEFAULT_CONFIG_ENV, DEFAULT_CONFIG_FILE, read_sam_defaults
from cpexport_cli.status import Attention, StatusReader, describe_window
from cpexport_cli.story import narrate
from cpexport_cli.verify import (
    DEFAULT_MINUTES,
    ExportChecks,
    Scope,
    StackResources,
    Step,
    Target,
    Verdict,
    choose_target,
    not_started,
    permission_steps,
    verification_request,
    worst,
)

_OPTIONS = "cpexport.options"
P = ParamSpec("P")


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    # Shared by the group and every command (ctx.meta is shared): the last one given wins.
    if value is not None and param.name:
        ctx.meta.setdefault(_OPTIONS, {})[param.name] = value
    return value


def _shared(*names: str, **settings: Any) -> Callable[[Callable[P, Any]], Callable[P, Any]]:
    """An option every command (and the group) accepts; remembered in the context, not passed as an argument."""
    return click.option(*names, expose_value=False, callback=_remember, **settings)


_SHARED_OPTIONS = (
    _shared("--stack-name", help="The stack (default: samconfig.toml's stack_name of --config-env)."),
    _shared("--config-env", help=f"samconfig.toml environment (default: {DEFAULT_CONFIG_ENV})."),
    _shared("--config-file", help=f"samconfig file (default: ./{DEFAULT_CONFIG_FILE})."),
    _shared("--profile", help="AWS profile."),
    _shared("--region", help="AWS Region (default: the profile's, or samconfig.toml's)."),
    _shared("--endpoint-url", help="Endpoint of every AWS service (e.g. `python -m local serve`'s Endpoint)."),
    _shared(
        "--appintegrations-endpoint-url",
        help="Endpoint of AppIntegrations (serve's AppIntegrationsEndpoint; also AWS_ENDPOINT_URL_APPINTEGRATIONS).",
    ),
    _shared("--output", "-o", type=click.Choice(["table", "json"]), help="table (default) or json."),
)


def shared_options(command: Callable[P, Any]) -> Callable[P, Any]:
    """Add the stack, AWS and output options to a command (or the group)."""
    for option in reversed(_SHARED_OPTIONS):
        command = option(command)
    return command


@dataclass
class Invocation:
    """What one command acts on: the options as resolved, and the clients built from them (once)."""

    output: str
    stack_name: str
    aws: AwsOptions
    _connection: Connection | None = field(default=None, repr=False)
    _deployment: Deployment | None = field(default=None, repr=False)

    @property
    def json(self) -> bool:
        return self.output == "json"

    @property
    def connection(self) -> Connection:
        if self._connection is None:
            self._connection = Connection(self.aws)
        return self._connection

    def deployment(self, with_resources: bool = False) -> Deployment:
        if self._deployment is None or (with_resources and not self._deployment.resources):
            self._deployment = find_deployment(self.connection, self.stack_name, with_resources=with_resources)
        return self._deployment

    def client(self, service: str) -> Any:
        return self.connection.client(service)

    def state_table(self) -> StateTable:
        return StateTable(self.deployment().state_table_name, api=self.client("dynamodb"))

    def appintegrations(self) -> AppIntegrations:
        api = self.client("appintegrations")
        return AppIntegrations(api=api, starter=api)


def _given(ctx: click.Context) -> dict[str, Any]:
    return dict(ctx.meta.get(_OPTIONS, {}))


def invocation() -> Invocation:
    """Resolve the options of the running command: explicit ones, then samconfig.toml's, then AWS's own."""
    given = _given(click.get_current_context())
    config_file = Path(given.get("config_file", DEFAULT_CONFIG_FILE))
    config_env = given.get("config_env", DEFAULT_CONFIG_ENV)
    explicit_env = "config_env" in given or "config_file" in given
    sam = read_sam_defaults(config_file, config_env, required="stack_name" not in given or explicit_env)
    return Invocation(
        output=given.get("output", "table"),
        stack_name=given.get("stack_name") or sam.stack_name or "",
        aws=AwsOptions(
            profile=given.get("profile") or sam.profile,
            region=given.get("region") or sam.region,
            endpoint_url=given.get("endpoint_url"),
            appintegrations_endpoint_url=given.get("appintegrations_endpoint_url"),
        ),
    )


def _fail(ctx: click.Context, error: CliError) -> NoReturn:
    if _given(ctx).get("output") == "json":
        emit_json({"error": {"type": type(error).__name__, "message": str(error), "exitCode": int(error.exit_code)}})
    console(stderr=True).print(Text(f"cpexport: {error}", style="bold red"))
    ctx.exit(int(error.exit_code))


def reported(command: Callable[P, int]) -> Callable[P, None]:
    """Turn a command's result into its exit code, and its errors into a message and an exit code."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        ctx = click.get_current_context()
        try:
            code = command(*args, **kwargs)
        except CliError as error:
            _fail(ctx, error)
        except ExportError as error:
            _fail(ctx, ServiceUnreachable(f"{type(error).__name__}: {error}"))
        except ClientError as error:
            details = error.response.get("Error", {})
            _fail(ctx, ServiceUnreachable(f"{error.operation_name}: {details.get('Code')}: {details.get('Message')}"))
        except BotoCoreError as error:
            _fail(ctx, ServiceUnreachable(f"{type(error).__name__}: {error}"))
        ctx.exit(code)

    return run


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@shared_options
def cli() -> None:
    """On-call command line of the Customer Profiles export pipeline: read its state, act on it safely.

    Exit codes: 0 OK; 1 not OK (failed execution, failing check, attention needed, refusal);
    2 invalid input (nothing started or changed); 3 stack or service unreachable.
    """


# ------------------------------------------------------------------------------------------- read
@cli.command()
@click.option("--domain", "domains", multiple=True, help="Only this domain (repeatable).")
@click.option("--type", "object_types", multiple=True, help="Only this object type (repeatable).")
@shared_options
@reported
def status(domains: tuple[str, ...], object_types: tuple[str, ...]) -> int:
    """One row per domain and object type: watermark, last run, job, lease, stale alarm.

    Exits 1 when something needs attention (red), 0 otherwise.
    """
    run = invocation()
    deployment = run.deployment()
    check_selection(deployment, list(domains), list(object_types))
    reader = StatusReader(deployment, run.state_table(), run.appintegrations(), run.client("stepfunctions"))
    now = now_utc()
    rows = reader.read_all(list(domains) or deployment.domain_names, list(object_types) or deployment.object_types, now)
    worst = max((row.attention for row in rows), default=Attention.OK)
    if run.json:
        emit_json(
            {
                "stackName": deployment.stack_name,
                "region": deployment.region,
                "checkedAt": render_utc(now),
                "attention": worst.label,
                "objectTypes": [row.to_json() for row in rows],
            }
        )
    else:
        show_status(rows, now, deployment.stack_name)
    return ExitCode.NOT_OK if worst == Attention.ALERT else ExitCode.OK


@cli.command()
@click.option("--domain", "domains", multiple=True, help="Only this domain (repeatable).")
@click.option("--type", "object_types", multiple=True, help="Only this object type (repeatable).")
@click.option("--last", type=click.IntRange(min=1), default=20, show_default=True, help="At most this many runs.")
@click.option("--failed", is_flag=True, help="Only FAILED and TIMED_OUT runs.")
@shared_options
@reported
def runs(domains: tuple[str, ...], object_types: tuple[str, ...], last: int, failed: bool) -> int:
    """The run index, newest first: window, status, files, records, size, manifest, correlation id, execution."""
    run = invocation()
    deployment = run.deployment()
    check_selection(deployment, list(domains), list(object_types))
    records = read_runs(
        run.state_table(),
        list(domains) or deployment.domain_names,
        list(object_types) or deployment.object_types,
        last=last,
        failed_only=failed,
    )
    bucket = deployment.outputs.get("ExportBucketName")
    if run.json:
        emit_json({"stackName": deployment.stack_name, "runs": [record.to_json(bucket) for record in records]})
    else:
        show_runs(records, bucket)
    return ExitCode.OK


@cli.command()
@click.argument("execution")
@shared_options
@reported
def explain(execution: str) -> int:
    """What an execution did, in words: its plan, each export's polls and outcome, the watermark.

    EXECUTION is an execution ARN, or the name of an execution of the stack's state machine.
    """
    run = invocation()
    arn = resolve_execution(run.deployment(), execution)
    try:
        story = tell_execution(run.client("stepfunctions"), arn)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in {"ExecutionDoesNotExist", "InvalidArn"}:
            raise DeploymentNotFound(f"execution {execution} does not exist ({arn})") from None
        raise
    if run.json:
        emit_json(story.to_json())
    else:
        show_lines(narrate(story))
    return ExitCode.OK


# ------------------------------------------------------------------------------------------- act
def _wait_options(command: Callable[P, Any]) -> Callable[P, Any]:
    command = click.option("--timeout", type=float, help="With --wait: stop following after this many seconds.")(
        command
    )
    command = click.option(
        "--poll-seconds",
        type=click.FloatRange(min=0.05),
        default=5.0,
        show_default=True,
        help="With --wait: how often to look.",
    )(command)
    return click.option("--wait", is_flag=True, help="Follow the execution until it ends, then print its result.")(
        command
    )


def _start(kind: str, request: dict[str, Any], wait: bool, poll_seconds: float, timeout: float | None) -> int:
    """Plan the request as the pipeline will (refusing what it would reject), start it, and maybe follow it."""
    run = invocation()
    deployment = run.deployment()
    now = now_utc()
    name = execution_name(kind, now)
    if kind != "replay":
        # The correlation id is the execution's name unless given: one id from the command to the run index.
        request.setdefault("correlationId", name)
    plan = plan_request(deployment, run.state_table(), request, name, now)
    stepfunctions = run.client("stepfunctions")
    started = start_execution(stepfunctions, deployment, request, name, plan)
    if not run.json:
        lines = [f"Planned {len(plan.exports)} export(s) with clock {render_utc(plan.clock)}:"]
        lines += [
            f"  - {t.domain_name}/{t.object_type}: {describe_window(t.window)}"
            + (
                " (reconcile)"
                if t.reconcile
                else " (verification)"
                if t.verification
                else " (backfill)"
                if t.backfill
                else ""
            )
            for t in plan.exports
        ]
        lines += [f"  - {s.domain_name}/{s.object_type}: skipped, {s.reason}" for s in plan.skipped]
        lines += [
            f"Started execution {started.name}",
            f"  ARN: {started.execution_arn}",
            f"  Console: {started.console_url}",
        ]
        show_lines(lines)
    if not wait:
        if run.json:
            emit_json({"execution": started.to_json(), "result": None})
        return ExitCode.OK
    try:
        with ExecutionProgress(console(stderr=True)) as progress:
            story = follow_execution(stepfunctions, started.execution_arn, progress.update, poll_seconds, timeout)
    except StillRunning as still:
        raise CliError(str(still)) from None
    except KeyboardInterrupt:
        raise CliError(f"stopped following; the execution goes on: {started.execution_arn}") from None
    if run.json:
        emit_json({"execution": started.to_json(), "result": story.to_json()})
    else:
        show_lines(narrate(story))
    return ExitCode.OK if story.status == "SUCCEEDED" else ExitCode.NOT_OK


def _selection(
    request: dict[str, Any], domain: str | None, object_types: tuple[str, ...], correlation_id: str | None
) -> dict[str, Any]:
    """The request with the options that narrow it (only those given: the state machine takes no nulls)."""
    if domain:
        request["domainName"] = domain
    if object_types:
        request["objectTypes"] = list(object_types)
    if correlation_id:
        request["correlationId"] = correlation_id
    return request


@cli.command(name="run")
@click.option("--domain", help="Only this domain (default: every configured domain).")
@click.option("--type", "object_types", multiple=True, help="Only this object type (repeatable).")
@click.option(
    "--correlation-id", help="Echoed in notifications, result events and the run index (default: the execution name)."
)
@_wait_options
@shared_options
@reported
def run_now(
    domain: str | None,
    object_types: tuple[str, ...],
    correlation_id: str | None,
    wait: bool,
    poll_seconds: float,
    timeout: float | None,
) -> int:
    """Start an execution now: export what is new since each watermark (a failed window included)."""
    return _start("run", _selection({}, domain, object_types, correlation_id), wait, poll_seconds, timeout)


@cli.command()
@click.argument("scheduled_time", metavar="TIME")
@_wait_options
@shared_options
@reported
def replay(scheduled_time: str, wait: bool, poll_seconds: float, timeout: float | None) -> int:
    """Re-play a missed schedule tick: the same windows the tick at TIME (ISO 8601 with a zone) would have had.

    The request is exactly the schedule's ({"scheduledTime": TIME}), so a late delivery of the real
    tick is recognised as the same request and exports nothing twice.
    """
    return _start("replay", {"scheduledTime": scheduled_time}, wait, poll_seconds, timeout)


@cli.command()
@click.option("--domain", required=True, help="The domain.")
@click.option("--type", "object_types", multiple=True, required=True, help="The object type (repeatable).")
@click.option("--from", "start", required=True, help="Start of the range, ISO 8601 with a zone.")
@click.option("--to", "end", help="End of the range (default: the newest time an export is sure to include).")
@click.option("--correlation-id", help="Echoed in notifications, result events and the run index.")
@_wait_options
@shared_options
@reported
def backfill(
    domain: str,
    object_types: tuple[str, ...],
    start: str,
    end: str | None,
    correlation_id: str | None,
    wait: bool,
    poll_seconds: float,
    timeout: float | None,
) -> int:
    """Export a range again into its own folder and manifest; never moves the watermark."""
    request: dict[str, Any] = {"domainName": domain, "objectTypes": list(object_types), "startTime": start}
    if end:
        request["endTime"] = end
    if correlation_id:
        request["correlationId"] = correlation_id
    return _start("backfill", request, wait, poll_seconds, timeout)


@cli.command()
@click.option("--domain", help="Only this domain (default: every configured domain).")
@click.option("--type", "object_types", multiple=True, help="Only this object type (repeatable).")
@click.option("--correlation-id", help="Echoed in notifications, result events and the run index.")
@_wait_options
@shared_options
@reported
def reconcile(
    domain: str | None,
    object_types: tuple[str, ...],
    correlation_id: str | None,
    wait: bool,
    poll_seconds: float,
    timeout: float | None,
) -> int:
    """Full export (InitialStartTime to each watermark) that removes deleted and merged-away objects from the
    current-state tables; never moves a watermark. The ReconcileIntervalDays schedule runs the same."""
    request = _selection({"reconcile": True}, domain, object_types, correlation_id)
    return _start("reconcile", request, wait, poll_seconds, timeout)


@cli.command(name="rebuild-current")
@click.option("--domain", required=True, help="The domain.")
@click.option("--type", "object_types", multiple=True, required=True, help="The object type (repeatable).")
@click.option("--rebuild", is_flag=True, help="Forget the domain's rows first, then merge every export again.")
@shared_options
@reported
def rebuild_current_command(domain: str, object_types: tuple[str, ...], rebuild: bool) -> int:
    """Catch a current-state table up with every indexed export (after a merge failed), or rebuild it.

    Idempotent: every export the run index names is merged again (a merged one changes nothing), then
    every reconcile's deletions are applied again. Athena runs each statement in the stack's workgroup.
    """
    run = invocation()
    deployment = run.deployment()
    check_selection(deployment, [domain], list(object_types))
    settings = deployment.settings()
    workgroup = deployment.output("AthenaWorkGroupName")
    reports = []
    for object_type in object_types:
        report = rebuild_current(
            stack_name=deployment.stack_name,
            bucket=settings.export_bucket_name,
            export_prefix=settings.export_prefix,
            workgroup=workgroup,
            domain_name=domain,
            object_type=object_type,
            rebuild=rebuild,
            state=run.state_table(),
            catalog=GlueCatalog(run.client("glue")),
            athena=Athena(run.client("athena")),
            progress=lambda line: show_lines([line], stderr=True),
        )
        reports.append(report)
    if run.json:
        emit_json({"stackName": deployment.stack_name, "tables": [report.to_json() for report in reports]})
        return ExitCode.OK
    lines = []
    for report in reports:
        lines.append(
            f"{report.table} ({report.domain_name}/{report.object_type}): {report.exports_merged} export(s) merged"
            + (" after forgetting the domain's rows" if report.rebuilt else "")
            + f", {report.objects} live objects"
        )
        if report.expired:
            lines.append(
                f"  {len(report.expired)} export(s) expired by raw retention could not be merged again "
                "(what the table took from them stays)"
            )
    show_lines(lines)
    return ExitCode.OK


@cli.command(name="release-lease")
@click.option("--domain", required=True, help="The domain.")
@click.option("--type", "object_type", required=True, help="The object type.")
@click.option("--force", is_flag=True, help="Release although a submitted job is not shown by the service (yet).")
@shared_options
@reported
def release_lease_command(domain: str, object_type: str, force: bool) -> int:
    """Free a stuck object type: only when its last job is not IN_PROGRESS, and only the lease as read.

    Checks the execution that holds the lease, ListDataIntegrationAssociations and the job ledger;
    exits 1 (nothing deleted) when any check refuses.
    """
    run = invocation()
    deployment = run.deployment()
    check_selection(deployment, [domain], [object_type])
    release = release_lease(
        deployment.stack_name,
        run.state_table(),
        run.appintegrations(),
        run.client("stepfunctions"),
        domain,
        object_type,
        force=force,
    )
    if run.json:
        emit_json(release.to_json())
    else:
        show_release(release)
    return ExitCode.NOT_OK if release.refused else ExitCode.OK


@cli.command()
@click.option(
    "--data-integration-quota",
    type=click.IntRange(min=1),
    default=DEFAULT_DATA_INTEGRATION_QUOTA,
    show_default=True,
    help="Your account's AppIntegrations data-integration quota in this Region (adjustable).",
)
@shared_options
@reported
def doctor(data_integration_quota: int) -> int:
    """Check a deployment: resources, bucket and key policies, quotas, schedule, alarms and who is paged.

    Exits 1 when a check fails (warnings do not).
    """
    run = invocation()
    deployment = run.deployment(with_resources=True)
    results = Doctor(deployment, run.connection, run.appintegrations(), data_integration_quota).run()
    verdict = max((result.verdict for result in results), default=CheckVerdict.OK)
    if run.json:
        emit_json(
            {
                "stackName": deployment.stack_name,
                "region": deployment.region,
                "status": verdict.label,
                "checks": [result.to_json() for result in results],
            }
        )
    else:
        show_doctor(results, deployment.stack_name)
    return ExitCode.NOT_OK if verdict == CheckVerdict.FAIL else ExitCode.OK


@cli.command()
@click.option("--domain", help="The domain to export (default: the first configured).")
@click.option("--type", "object_type", help="The object type to export (default: _profile, else the first configured).")
@click.option(
    "--minutes",
    type=click.IntRange(min=1, max=1440),
    default=DEFAULT_MINUTES,
    show_default=True,
    help="Length of the exported window, which ends a minute before the watermark.",
)
@click.option("--checks-only", is_flag=True, help="Only the permission checks (read-only): start no export.")
@click.option(
    "--poll-seconds", type=click.FloatRange(min=0.05), default=5.0, show_default=True, help="How often to look."
)
@click.option("--timeout", type=float, help="Stop waiting for the export after this many seconds.")
@shared_options
@reported
def verify(
    domain: str | None,
    object_type: str | None,
    minutes: int,
    checks_only: bool,
    poll_seconds: float,
    timeout: float | None,
) -> int:
    """Prove a deployment exports: every role's permissions simulated, then a real export of a few minutes.

    The export is a backfill of one domain and object type ending a minute before the watermark (a range
    already exported), marked as a verification: no watermark moves. One line per step, with the fix
    when it fails. Exits 1 when a step fails.
    """
    run = invocation()
    deployment = run.deployment(with_resources=True)
    now = now_utc()
    state = run.state_table()
    target = choose_target(deployment, state, domain, object_type, minutes, now)
    resources = StackResources(deployment, run.connection, run.appintegrations(), now)
    scope = Scope(target.domain_name, target.object_type)
    steps = permission_steps(resources, run.connection, scope)
    if not run.json:
        for step in steps:
            show_step(step)
    execution: dict[str, Any] | None = None
    if checks_only:
        later = not_started("not run (--checks-only)")
    elif worst(steps) == Verdict.FAIL:
        later = not_started("not started: a permission check failed, and the export would fail with it")
    else:
        started, later = _verification_export(run, deployment, state, target, now, poll_seconds, timeout)
        execution = started
    steps += later
    if run.json:
        emit_json(
            {
                "stackName": deployment.stack_name,
                "region": deployment.region,
                "status": worst(steps).label,
                "target": {
                    "domainName": target.domain_name,
                    "objectType": target.object_type,
                    "window": target.window.to_wire(),
                    "watermark": render_utc(target.watermark) if target.watermark else None,
                },
                "execution": execution,
                "steps": [step.to_json() for step in steps],
            }
        )
    else:
        for step in later:
            show_step(step)
        show_verdict(steps, deployment.stack_name)
    return ExitCode.NOT_OK if worst(steps) == Verdict.FAIL else ExitCode.OK


def _verification_export(
    run: Invocation,
    deployment: Deployment,
    state: StateTable,
    target: Target,
    now: datetime,
    poll_seconds: float,
    timeout: float | None,
) -> tuple[dict[str, Any], list[Step]]:
    """Start the verification's backfill, follow it with progress on stderr, and check what it left."""
    name = execution_name("verify", now)
    request = verification_request(target, name)
    plan = plan_request(deployment, state, request, name, now)
    stepfunctions = run.client("stepfunctions")
    started = start_execution(stepfunctions, deployment, request, name, plan)
    show_lines(
        [
            f"Started verification {started.name}: {target.domain_name}/{target.object_type} "
            f"{describe_window(plan.exports[0].window)}",
            f"  Console: {started.console_url}",
        ],
        stderr=True,
    )
    try:
        with ExecutionProgress(console(stderr=True)) as progress:
            story = follow_execution(stepfunctions, started.execution_arn, progress.update, poll_seconds, timeout)
    except StillRunning as still:
        waiting = not_started("not checked: the export is still running")
        waiting[0] = Step(
            "export",
            Verdict.FAIL,
            str(still),
            f"cpexport explain {started.name} once it ends; or cpexport verify --timeout with more time",
        )
        return started.to_json(), waiting
    except KeyboardInterrupt:
        raise CliError(f"stopped following; the verification goes on: {started.execution_arn}") from None
    checks = ExportChecks(deployment, run.connection, run.appintegrations(), state, target)
    return started.to_json(), checks.run(story)


def main() -> None:
    """The console script's entry point."""
    cli(prog_name="cpexport")


def run_cli(arguments: list[str]) -> int:
    """Run one command in this process and return its exit code (e.g. `status` at the end of `make demo`)."""
    try:
        code = cli.main(args=arguments, prog_name="cpexport", standalone_mode=False)
    except click.ClickException as error:
        error.show()
        return error.exit_code
    except click.exceptions.Exit as done:
        return done.exit_code
    return int(code or 0)


__all__ = ["InvalidInput", "cli", "main", "run_cli"]
