"""Every duration the pipeline runs on, and whether the offline stack's time scale applies to it.

Offline, a time scale F (`python -m local serve --time-scale F`, `OfflineStack(time_scale=F)`, the demo,
the soak, the bench) is meant to run the pipeline as AWS runs it with every duration multiplied by F
(0.01: a 60 s Wait lasts 0.6 s). Scaling the state machine's sleeps alone is not that: a rule a Lambda
compares with its own clock (a grace period, a lease TTL, a holder deadline) would keep AWS's length
while the retries that wait it out shrink, and a scaled run meets orderings AWS never produces (a retry
budget that ends before the grace, a lease that outlives every retry). So each duration is declared here
once, with how it scales (`Scaling`), and every entry point gets its scaled environment from here:
`OfflineStack` deploys each pipeline function with its wall-clock rules scaled
(`scaled_wall_clock_rules`), the account gives the emulator the same F, and the interpreter patches
sleep the ASL's seconds x F.

Why this lives in `local/` and not in the Lambda layer: the product's durations are already declared
once, as the settings model's defaults (`cpexport.config.Settings`) and the modules' constants, which
this module reads rather than copies; what is added here (how the offline stack simulates each clock,
and the floors) is a fact of the offline stack only, and the layer ships nothing it does not run.

Floors. Lambda code runs at wall speed offline, so a wall-clock rule that bounds Lambda work keeps a
floor above what a busy machine's Lambdas take, or a scaled run would take over a Start still running or
give up on a holder still indexing. A floor lengthens its rule relative to the retries that wait it out,
so below `smallest_faithful_time_scale()` a floor outlasts Start's whole `ExportBusy` retry budget, an
ordering AWS never produces: the stack warns.

`python -m local.durations` prints the table of `local/harness/README.md`.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from functools import cache
from pathlib import Path
from typing import Any

from cpexport import current_state, exports, idempotency, indexing, planning, polling, retention
from cpexport.clients import athena as athena_client
from cpexport.config import ENV_NAMES, MIN_SAFETY_LAG_MINUTES, Settings, holder_deadline_seconds

from local.clock import HeldClock
from local.emulator.server import BODY_TIMEOUT_SECONDS
from local.harness import athena_sync

LOG = logging.getLogger("local.durations")
ROOT = Path(__file__).resolve().parents[1]
EXPORT_ASL = ROOT / "statemachine" / "export.asl.json"
_UNIT_SECONDS = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86_400}
# The emulator's knobs that are durations, and its fault rules' (a test holds them to the models).
EMULATOR_DURATION_KNOBS = (
    "job_duration_seconds",
    "job_duration_by_object_type",
    "stale_status_seconds",
    "late_files_seconds",
    "file_delay_seconds",
    "empty_status_seconds",
    "status_regression_seconds",
)
FAULT_RULE_DURATIONS = ("start_seconds", "duration_seconds")
# The Settings fields the holder deadline is derived from when it is not set.
HOLDER_DEADLINE_INPUTS = ("export_timeout_hours", "index_settle_seconds", "index_settle_attempts")


class Scaling(Enum):
    """How the offline stack runs a duration at time scale F."""

    INTERPRETER = "x F: state machine time (the interpreter's Wait and Retry sleeps)"
    ENVIRONMENT = "x F in the function's environment"
    EMULATOR = "x F: the emulator's time_scale"
    HARNESS = "x F: the harness's own sleep"
    NONE = "not scaled"


@dataclass(frozen=True)
class Duration:
    """One duration: where its AWS value is set, that value, how it scales offline and why."""

    name: str
    where: str  # the setting, template property, ASL field, knob or constant that sets it
    seconds: float | None  # its value on AWS (a setting's default); None: per call, knob or derived
    scaling: Scaling
    why: str
    setting: str | None = None  # the `Settings` field, for the functions' settings
    parameter: str | None = None  # the template parameter that sets it
    floor_seconds: int = 0  # ENVIRONMENT only: never scaled below this
    outlasted_by_start_retries: bool = False  # on AWS, Start's ExportBusy retries wait it out

    @property
    def env(self) -> str | None:
        """The function environment variable of its setting."""
        return ENV_NAMES[self.setting] if self.setting else None

    def offline(self) -> str:
        """How it runs offline, in words."""
        if self.scaling is Scaling.ENVIRONMENT:
            return f"{self.scaling.value}, at least {self.floor_seconds} s"
        return str(self.scaling.value)


def _default_seconds(setting: str) -> float | None:
    """A setting's default in seconds (the field name ends with its unit)."""
    default = Settings.model_fields[setting].default
    if default is None:
        return None
    unit = setting.rsplit("_", 1)[-1]
    return float(default) * _UNIT_SECONDS[unit]


def _setting(name: str, where: str, scaling: Scaling, why: str, **more: Any) -> Duration:
    return Duration(name, where, _default_seconds(more["setting"]), scaling, why, **more)


def _default_holder_deadline() -> float:
    timeout_hours, settle_seconds, attempts = (Settings.model_fields[name].default for name in HOLDER_DEADLINE_INPUTS)
    return holder_deadline_seconds(timeout_hours, settle_seconds, attempts)


def _constant(name: str, where: str, seconds: float, why: str) -> Duration:
    return Duration(name, where, seconds, Scaling.NONE, why)


# ------------------------------------------------------------------------------------------------ the declaration
_WALL_CLOCK = "compared with the Lambda's own clock (`datetime.now()`), which scaling the sleeps does not slow down"
_DATA_TIME = "measured back from the tick's `scheduledTime` (data time); offline the caller picks each tick's time"
_WALL_SPEED = "bounds work that runs at wall speed offline too (Lambda code, the offline Athena)"

DURATIONS: tuple[Duration, ...] = (
    # The functions' wall-clock rules (`cpexport.exports`): scaled in their environment.
    _setting(
        "unsubmitted lease TTL",
        "`Settings.unsubmitted_lease_ttl_seconds`",
        Scaling.ENVIRONMENT,
        f"{_WALL_CLOCK}. Floor: a lease not yet marked submitted may belong to a Start still running, which "
        "takes seconds on a busy machine (a cold sandbox, botocore's retries); shorter, a live Start is taken over",
        setting="unsubmitted_lease_ttl_seconds",
        floor_seconds=10,
        outlasted_by_start_retries=True,
    ),
    _setting(
        "ambiguous submission grace",
        "`Settings.ambiguous_submit_grace_seconds`",
        Scaling.ENVIRONMENT,
        f"{_WALL_CLOCK}. Floor: as on AWS, the retry that follows the ambiguous answer (a Lambda round trip later, "
        "seconds on a busy machine) must still be inside the grace, so the listing is read again after a wait "
        "before the window is given up",
        setting="ambiguous_submit_grace_seconds",
        floor_seconds=5,
        outlasted_by_start_retries=True,
    ),
    Duration(
        "lease holder deadline",
        "`Settings.lease_holder_deadline_seconds`; unset: ExportTimeoutHours + IndexSettleSeconds x "
        "index_settle_attempts + `HOLDER_DEADLINE_MARGIN_SECONDS` (`cpexport.config.holder_deadline_seconds`)",
        _default_holder_deadline(),
        Scaling.ENVIRONMENT,
        f"{_WALL_CLOCK}; derived from the function's own ExportTimeoutHours and settle settings, then scaled. "
        "Floor: the holder's polls, index and merge run at wall speed (the Athena merge alone takes seconds), "
        "which the scaled timeout does not cover",
        setting="lease_holder_deadline_seconds",
        floor_seconds=30,
    ),
    # State machine time: turned into Wait seconds, or compared with a sum of them.
    _setting(
        "export timeout",
        "`Settings.export_timeout_hours`",
        Scaling.INTERPRETER,
        "compared with the sum of the poll waits (`waitedSeconds`), not with a clock",
        setting="export_timeout_hours",
        parameter="ExportTimeoutHours",
    ),
    _setting(
        "poll floor",
        "`Settings.poll_floor_seconds` (`cpexport.polling.FLOOR_SECONDS`)",
        Scaling.INTERPRETER,
        "becomes WaitForExport's seconds",
        setting="poll_floor_seconds",
    ),
    _setting(
        "settle wait",
        "`Settings.index_settle_seconds`",
        Scaling.INTERPRETER,
        "becomes WaitForFiles' seconds (and an input of the holder deadline)",
        setting="index_settle_seconds",
        parameter="IndexSettleSeconds",
    ),
    Duration(
        "poll check margin",
        "`cpexport.polling.CHECK_MARGIN_SECONDS`",
        polling.CHECK_MARGIN_SECONDS,
        Scaling.INTERPRETER,
        "taken off a dense poll's Wait seconds",
    ),
    Duration(
        "Wait states",
        "ASL `Seconds`, `SecondsPath`",
        None,
        Scaling.INTERPRETER,
        "`moto_patches`: `WaitFunction._wait_interval` sleeps seconds x F on the account's clock",
    ),
    Duration(
        "Retry intervals",
        "ASL `IntervalSeconds`, `MaxDelaySeconds` (x `BackoffRate`)",
        None,
        Scaling.INTERPRETER,
        "`moto_patches`: the retrier's `time.sleep` sleeps seconds x F",
    ),
    Duration(
        "Task timeouts",
        "ASL `TimeoutSeconds`",
        None,
        Scaling.NONE,
        f"{_WALL_SPEED}; moto's interpreter enforces them on the wall clock",
    ),
    # Data time and schedules: the caller simulates them.
    _setting(
        "safety lag",
        "`Settings.safety_lag_minutes`",
        Scaling.NONE,
        _DATA_TIME,
        setting="safety_lag_minutes",
        parameter="SafetyLagMinutes",
    ),
    _setting(
        "raw export retention",
        "`Settings.raw_export_retention_days`; the bucket's lifecycle rules",
        Scaling.NONE,
        "counted from the partition job's `scheduledTime` and, for S3, from `apply_lifecycle(now)`'s `now`: "
        "both picked by the caller",
        setting="raw_export_retention_days",
        parameter="RawExportRetentionDays",
    ),
    Duration(
        "schedule periods",
        "`ScheduleExpression`, `ReconcileIntervalDays`, `MaintenanceScheduleExpression`, the partition job's "
        "`rate(1 day)`",
        None,
        Scaling.NONE,
        "nothing fires by itself offline: `fire_schedule(scheduled_time=...)` is each tick, at the time its caller "
        "simulates",
        parameter="ReconcileIntervalDays",
    ),
    Duration(
        "flexible schedule window",
        "`ScheduleFlexibleWindowMinutes`",
        None,
        Scaling.NONE,
        "not modelled: a fired tick starts at once",
        parameter="ScheduleFlexibleWindowMinutes",
    ),
    Duration(
        "Scheduler's retry of a refused start",
        "`RetryPolicy` (`MaximumEventAgeInSeconds`) of every schedule",
        None,
        Scaling.HARNESS,
        "`firing`: at most `trigger_retry_attempts` retries, min(60, 2^n) s x F apart (the event age is not modelled)",
    ),
    Duration(
        "stale export alarm",
        "`StaleExportAlarmHours`",
        None,
        Scaling.NONE,
        "not evaluated offline (moto's CloudWatch alarms never change state)",
        parameter="StaleExportAlarmHours",
    ),
    Duration(
        "log retention",
        "`LogRetentionDays`",
        None,
        Scaling.NONE,
        "not modelled (moto keeps log groups' settings, never expires events)",
        parameter="LogRetentionDays",
    ),
    # Fixed rules of the pipeline's modules.
    _constant(
        "Scheduler skew",
        "`cpexport.planning.SCHEDULER_SKEW`",
        planning.SCHEDULER_SKEW.total_seconds(),
        "compares the tick's `scheduledTime` with the execution's start: data time against the wall clock, "
        "whatever the scale",
    ),
    _constant(
        "service request clock skew",
        "`cpexport.indexing.REQUEST_CLOCK_SKEW`",
        indexing.REQUEST_CLOCK_SKEW.total_seconds(),
        "allows for the service's clock and the ledger's to differ; offline both are the wall clock "
        "(plus the emulator's `clock_offset_ms`)",
    ),
    _constant(
        "service export lag",
        "`cpexport.current_state.SERVICE_LAG`; the emulator's `lag_minutes`",
        current_state.SERVICE_LAG.total_seconds(),
        "data time: objects updated this long before a job's request may be missing from it",
    ),
    _constant(
        "window shift",
        "`cpexport.exports.MAX_WINDOW_SHIFT_SECONDS`",
        exports.MAX_WINDOW_SHIFT_SECONDS,
        "data time: how far a used window's end may move",
    ),
    _constant(
        "minimum safety lag",
        "`cpexport.config.MIN_SAFETY_LAG_MINUTES`",
        MIN_SAFETY_LAG_MINUTES * 60,
        "a bound on the safety lag (data time)",
    ),
    _constant(
        "retention period and margin",
        "`cpexport.retention.RETENTION_JOB_PERIOD`, `RETENTION_MARGIN`, `MIN_RETENTION_DAYS`, `MAX_RETENTION_DAYS`",
        retention.RETENTION_MARGIN.total_seconds(),
        "data time, counted from the partition job's `scheduledTime`",
    ),
    _constant(
        "idempotency record expiry",
        "`cpexport.idempotency` (`expires_after_seconds`)",
        float(idempotency.idempotency_config.expires_after_seconds),
        f"{_WALL_CLOCK}. Left at AWS's length: it only has to outlast one execution's retries of a Start (or its "
        "Notify), and the scaled retries end sooner",
    ),
    _constant(
        "CLI Athena polls",
        "`cpexport.clients.athena.FIRST_POLL_SECONDS`, `Athena.run(poll_seconds, timeout_seconds)`",
        athena_client.FIRST_POLL_SECONDS,
        f"`cpexport rebuild-current` waits for queries that run at wall speed: {_WALL_SPEED}",
    ),
    Duration(
        "function timeouts",
        "each function's `Timeout`",
        None,
        Scaling.NONE,
        f"{_WALL_SPEED}; the sandbox enforces it on the wall clock",
    ),
    # The offline stack's own stand-ins.
    Duration(
        "Athena `.sync` polls",
        "`local.harness.athena_sync.POLL_INTERVAL_SECONDS`",
        athena_sync.POLL_INTERVAL_SECONDS,
        Scaling.HARNESS,
        "how often Step Functions looks at a running query",
    ),
    Duration(
        "held clock's hold limit",
        "`local.clock.HeldClock(hold_limit_seconds)`",
        HeldClock().hold_limit_seconds,
        Scaling.NONE,
        "a Lambda's longest run, on the wall clock: a thread that holds the clock longer has died",
    ),
    Duration(
        "emulated service's durations",
        ", ".join(f"`EmulatorConfig.{knob}`" for knob in EMULATOR_DURATION_KNOBS),
        None,
        Scaling.EMULATOR,
        "the emulated service's time (jobs, files, statuses), on the account's clock",
    ),
    Duration(
        "emulator's wait for a request body",
        "`local.emulator.server.BODY_TIMEOUT_SECONDS` (`EmulatorServer(body_timeout_seconds=)`)",
        BODY_TIMEOUT_SECONDS,
        Scaling.NONE,
        "a network timeout: bytes arrive at wall speed",
    ),
    Duration(
        "emulator fault windows",
        ", ".join(f"`FaultRule.{field}`" for field in FAULT_RULE_DURATIONS),
        None,
        Scaling.EMULATOR,
        "a rule's window on the emulated service's time",
    ),
)


def wall_clock_rules() -> tuple[Duration, ...]:
    """The durations scaled in the functions' environment."""
    return tuple(d for d in DURATIONS if d.scaling is Scaling.ENVIRONMENT)


def of_setting(setting: str) -> Duration:
    """The declared duration of a `Settings` field."""
    (found,) = (d for d in DURATIONS if d.setting == setting)
    return found


def declared_settings() -> set[str]:
    """The `Settings` fields declared here."""
    return {d.setting for d in DURATIONS if d.setting}


# ------------------------------------------------------------------------------------------------ scaling
def _setting_value(variables: Mapping[str, str], setting: str) -> float:
    raw = variables.get(ENV_NAMES[setting], "")
    if raw != "":
        return float(raw)
    default = Settings.model_fields[setting].default
    return float(default)


def aws_seconds(rule: Duration, variables: Mapping[str, str]) -> float:
    """The length of a wall-clock rule on AWS for a function with these environment variables."""
    assert rule.setting is not None and rule.scaling is Scaling.ENVIRONMENT
    raw = variables.get(ENV_NAMES[rule.setting], "")
    if raw != "":
        return float(raw)
    if rule.setting == "lease_holder_deadline_seconds":
        timeout_hours, settle_seconds, attempts = (_setting_value(variables, name) for name in HOLDER_DEADLINE_INPUTS)
        return holder_deadline_seconds(timeout_hours, settle_seconds, int(attempts))
    assert rule.seconds is not None
    return rule.seconds


def scaled_rules(variables: Mapping[str, str], time_scale: float) -> dict[str, str]:
    """The wall-clock rules of a function with these environment variables, at `time_scale` (none at 1)."""
    if time_scale == 1:
        return {}
    scaled = {}
    for rule in wall_clock_rules():
        assert rule.env is not None
        scaled[rule.env] = str(max(rule.floor_seconds, round(aws_seconds(rule, variables) * time_scale)))
    return scaled


# Variables that say a function reads `cpexport.config` (AWS_REGION is every function's).
_PIPELINE_VARIABLES = frozenset(ENV_NAMES.values()) - {"AWS_REGION"}
# Variables the wall-clock rules are read or derived from.
_INPUT_VARIABLES = frozenset(
    ENV_NAMES[name] for name in (*HOLDER_DEADLINE_INPUTS, *(rule.setting for rule in wall_clock_rules())) if name
)


def _resolved(value: Any, parameters: Mapping[str, Any], where: str) -> str:
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in parameters:
        return str(parameters[value["Ref"]])
    raise ValueError(f"{where} is {value!r}: the offline stack scales a literal or a parameter's Ref only")


def scaled_wall_clock_rules(
    time_scale: float, parameters: Mapping[str, str] | None = None
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A template customizer: each function that reads `cpexport.config` gets its wall-clock rules x `time_scale`.

    Applied to the transformed CloudFormation before deployment (so `GetFunctionConfiguration` shows
    what the functions run with); `parameters` are the stack's, over the template's Defaults.
    """

    def customize(template: dict[str, Any]) -> dict[str, Any]:
        if time_scale == 1:
            return template
        values = {name: spec.get("Default") for name, spec in (template.get("Parameters") or {}).items()}
        values |= dict(parameters or {})
        scaled: dict[str, dict[str, str]] = {}
        for logical_id, resource in (template.get("Resources") or {}).items():
            if resource.get("Type") != "AWS::Lambda::Function":
                continue
            variables = ((resource.get("Properties") or {}).get("Environment") or {}).get("Variables")
            if not variables or not _PIPELINE_VARIABLES & set(variables):
                continue
            inputs = {
                name: _resolved(value, values, f"{logical_id}: {name}")
                for name, value in variables.items()
                if name in _INPUT_VARIABLES
            }
            scaled[logical_id] = scaled_rules(inputs, time_scale)
            variables.update(scaled[logical_id])
        if scaled:
            distinct = {json.dumps(rules, sort_keys=True) for rules in scaled.values()}
            LOG.info("Wall-clock rules of %d functions at time scale %g: %s", len(scaled), time_scale, distinct)
            warn_if_unfaithful(time_scale)
        return template

    return customize


# ------------------------------------------------------------------------------------------------ faithfulness
def retry_budget_seconds(retrier: Mapping[str, Any]) -> float:
    """Seconds an ASL retrier waits in all before it gives up (its intervals, without jitter)."""
    interval = float(retrier.get("IntervalSeconds", 1))
    backoff = float(retrier.get("BackoffRate", 2.0))
    ceiling = float(retrier.get("MaxDelaySeconds", float("inf")))
    return sum(min(ceiling, interval * backoff**attempt) for attempt in range(int(retrier.get("MaxAttempts", 3))))


def _retriers(states: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in states.items():
        for retrier in state.get("Retry", []):
            yield name, retrier
        for nested in (state.get("Iterator"), state.get("ItemProcessor"), *state.get("Branches", [])):
            if nested:
                yield from _retriers(nested["States"])


@cache
def start_busy_budget_seconds(asl_path: Path = EXPORT_ASL) -> float:
    """How long StartExport's Retry on `ExportBusy` waits in all, on AWS (read from the ASL)."""
    definition = json.loads(asl_path.read_text(encoding="utf-8"))
    budgets = [
        retry_budget_seconds(retrier)
        for name, retrier in _retriers(definition["States"])
        if name == "StartExport" and "ExportBusy" in retrier["ErrorEquals"]
    ]
    if len(budgets) != 1:
        raise ValueError(f"{asl_path.name}: expected one ExportBusy retrier on StartExport, found {len(budgets)}")
    return budgets[0]


def smallest_faithful_time_scale() -> float:
    """Below this time scale, a floored rule outlasts Start's scaled ExportBusy retries (on AWS they outlast it)."""
    budget = start_busy_budget_seconds()
    return max(rule.floor_seconds / budget for rule in wall_clock_rules() if rule.outlasted_by_start_retries)


def warn_if_unfaithful(time_scale: float) -> None:
    """Log a warning when `time_scale` is below `smallest_faithful_time_scale()`."""
    smallest = smallest_faithful_time_scale()
    if time_scale < smallest:
        LOG.warning(
            "Time scale %g is below %.2g: the wall-clock rules' floors outlast Start's scaled ExportBusy retries "
            "(%.1f s), so a run that meets an ambiguous submission or a dead Start's lease may fail where AWS "
            "would not",
            time_scale,
            smallest,
            start_busy_budget_seconds() * time_scale,
        )


# ------------------------------------------------------------------------------------------------ the table
def _seconds_text(seconds: float | None) -> str:
    if seconds is None:
        return "as configured"
    if seconds == 0:
        return "0 (off)"
    for unit, size in (("d", 86_400), ("h", 3600)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g} {unit}"
    if seconds >= 3600:
        return f"{seconds:g} s ({seconds / 3600:.3g} h)"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


def duration_table() -> str:
    """The README's table of durations, in Markdown, generated from `DURATIONS`."""
    lines = ["| duration | set by | on AWS | offline at time scale F | why |", "|---|---|---|---|---|"]
    for d in DURATIONS:
        cells = (d.name, d.where, _seconds_text(d.seconds), d.offline(), d.why)
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(duration_table())
