"""Polling on the offline stack: the real state machine polls emulated export jobs of chosen lengths.

Each scenario runs in a process of its own, which is one offline AWS account (moto's state is
process-global), so each stays within the account's quotas on its own: at most 20 bulk-export
jobs at a time (not adjustable on AWS). The three run side by side:

- `learned`: the pipeline with history next to a fixed 60 s poll (a second stack of the same
  template whose functions get a tiny `POLL_LAG_FRACTION`, so every wait is the 60 s floor). Each
  object type first runs prior jobs, which the Index step records in the job ledger; then the
  measured job runs, the schedule predicting it from those durations.
- `sweep`: jobs of many lengths from 1 s to 24 h without history (the dense schedule), for the
  detection lag against its allowance. It needs one data integration per length (that quota is
  adjustable on AWS, and is raised here for this account only).
- `all_types`: 20 object types with 24-hour jobs in one execution, without history.

Time is scaled: a Wait of w seconds lasts w x scale, a job of d seconds d x scale, but Lambda code
runs at real speed (see `history.detection_lag`). Run: `python -m bench.polling SCENARIO --out FILE`.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cpexport.polling import CHECK_MARGIN_SECONDS, Prediction, allowance, schedule

from bench.history import detection_lag, poll_overhead_seconds, polling_of, split_by_iteration
from bench.meter import RequestMeter, install
from bench.sizes import DURATIONS, SIZES, Sizes, sweep_lengths

ROOT = Path(__file__).resolve().parents[1]
DOMAIN = "bench"
INITIAL = datetime(2024, 1, 1, tzinfo=UTC)
SAFETY_LAG = timedelta(minutes=30)
WINDOW = timedelta(hours=24)
# History from shorter windows is scaled up by the window ratio (capped at 10 by the schedule): prior
# jobs of long types run a tenth of the measured length over a tenth of the window, to save time.
HISTORY_RATIO = 10
SHORT_HISTORY_UP_TO = 3600  # prior jobs of types this short run at full length (ratio 1)
# A fixed 60 s poll: the dense schedule's fraction made negligible leaves only the 60 s floor.
FIXED_POLL_LAG_FRACTION = "0.000001"
# and a floor whose dense wait (the floor less the Check's margin) is 60 s
FIXED_POLL_FLOOR = 60 + CHECK_MARGIN_SECONDS
PARAMETERS = {
    "DomainNames": DOMAIN,
    "InitialStartTime": "2024-01-01T00:00:00Z",
    # A 24-hour job must not meet the default 24-hour timeout while it is being measured.
    "ExportTimeoutHours": "30",
}
MAX_CONCURRENT_JOBS = 20  # Customer Profiles bulk exports per account and Region (not adjustable)
MAX_DATA_INTEGRATIONS = 20  # AppIntegrations data integrations per Region (adjustable)


def iso(moment: datetime) -> str:
    """UTC ISO 8601 with Z (the state machine's scheduledTime)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def fixed_poll(template: dict[str, Any]) -> dict[str, Any]:
    """A template customizer: every function polls at the 60 s floor (the fixed-poll baseline)."""
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") == "AWS::Lambda::Function":
            environment = resource.setdefault("Properties", {}).setdefault("Environment", {})
            variables = environment.setdefault("Variables", {})
            variables["POLL_LAG_FRACTION"] = FIXED_POLL_LAG_FRACTION
            variables["POLL_FLOOR_SECONDS"] = str(FIXED_POLL_FLOOR)
    return template


@dataclass
class Gate:
    """Files through which scenario processes start their measured jobs together."""

    ready_file: Path | None = None  # touched once this scenario's prior jobs are done
    wait_for: tuple[Path, ...] = ()  # measured jobs start once all of these exist

    def ready(self) -> None:
        """Say this scenario may start its measured jobs."""
        if self.ready_file is not None and not self.ready_file.exists():
            self.ready_file.touch()

    def open(self) -> bool:
        """Whether every scenario is ready."""
        return all(path.exists() for path in self.wait_for)


@dataclass
class Step:
    """One execution: some object types of a stack, each job lasting its (unscaled) duration."""

    name: str
    stack: Any  # DeployedStack
    durations: dict[str, float]  # object type -> job seconds, in the Map's order
    clock: datetime
    after: tuple[str, ...] = ()
    measured: bool = True
    fixed_poll: bool = False
    arn: str = ""
    started: float = 0.0
    finished: float = 0.0
    status: str = ""
    requests_before: dict[str, dict[str, int]] = field(default_factory=dict)


class Scenario:
    """Runs steps on an offline account as their prerequisites finish, then reads what happened."""

    def __init__(self, stack: Any, sizes: Sizes, meter: RequestMeter) -> None:
        self.stack, self.sizes, self.meter = stack, sizes, meter
        self.control = stack.emulator_control
        self.job_seconds: dict[str, float] = {}

    def run(self, steps: list[Step], timeout: float, gate: Gate) -> None:
        """Start each step once the steps it follows have finished; wait for all of them.

        Measured steps also wait for the gate: every prior step here has finished and the other
        scenarios are ready, so that measured jobs start together, after the history was made.
        """
        sfn = self.stack.client("stepfunctions")
        deadline = time.monotonic() + timeout
        while any(not step.finished for step in steps):
            if all(step.finished for step in steps if not step.measured):
                gate.ready()
            for step in steps:
                if step.arn or any(not other.finished for other in steps if other.name in step.after):
                    continue
                if step.measured and not gate.open():
                    continue
                if step.measured:
                    self.seed(step)
                self.job_seconds.update(step.durations)
                # A job's length is fixed when it starts: later changes leave running jobs alone.
                self.control.configure(job_duration_by_object_type=self.job_seconds)
                step.requests_before = {t: self.meter.of(step.stack.stack_name, t) for t in step.durations}
                step.arn = step.stack.start_execution(
                    {"scheduledTime": iso(step.clock), "objectTypes": list(step.durations)}, name=f"bench-{step.name}"
                )
                step.started = time.monotonic()
                print(f"  {step.name}: started ({len(step.durations)} object types)", flush=True)
            for step in steps:
                if step.arn and not step.finished:
                    described = sfn.describe_execution(executionArn=step.arn)
                    if described["status"] != "RUNNING":
                        step.finished, step.status = time.monotonic(), described["status"]
                        print(f"  {step.name}: {step.status} after {step.finished - step.started:.0f} s", flush=True)
                        if step.status != "SUCCEEDED":
                            print(f"    why: {failure_reasons(step.stack.execution_history(step.arn))}", flush=True)
            if time.monotonic() > deadline:
                raise TimeoutError(f"steps still running after {timeout:.0f} s: {[s.name for s in steps]}")
            time.sleep(0.5)

    def seed(self, step: Step) -> None:
        """Objects in the last 24 hours of the step's windows: each export writes a few files to index."""
        count = self.sizes.records_per_export
        end_ms = int((step.clock - SAFETY_LAG).timestamp() * 1000)
        span_ms = int(WINDOW.total_seconds() * 1000)
        for object_type in step.durations:
            objects = [
                {
                    "id": f"{object_type}-{i:06d}",
                    "lastUpdated": end_ms - span_ms + (i * span_ms) // count,
                    "Note": "x" * 200,
                }
                for i in range(count)
            ]
            self.control.seed(DOMAIN, object_type, objects)

    def report(self, steps: list[Step]) -> dict[str, Any]:
        """Per measured object type: checks, events, detection lag, cost inputs; per execution: events."""
        names = {
            resource.physical_id: resource.logical_id
            for deployed in [self.stack, *self.stack.others]
            for resource in deployed.deployment.of_type("AWS::Lambda::Function")
        }
        jobs = self.control.jobs()
        offset_ms = int(self.control.config().get("clock_offset_ms", 0))
        scale = self.sizes.time_scale
        types: dict[str, Any] = {}
        executions: dict[str, Any] = {}
        for step in steps:
            history = step.stack.execution_history(step.arn)
            iterations, shared = split_by_iteration(history)
            executions[step.name] = {
                "stack": step.stack.stack_name,
                "status": step.status,
                "object_types": len(step.durations),
                "history_events": len(history),
                "shared_history_events": len(shared),
                "wall_s": round(step.finished - step.started, 1),
            }
            if not step.measured:
                continue
            for iteration in iterations:
                polling = polling_of(iteration)
                seconds = step.durations[polling.object_type]
                job = _job_of(jobs, polling.data_integration_name, polling.window_start, polling.window_end)
                record: dict[str, Any] = {
                    "stack": step.stack.stack_name,
                    "execution": step.name,
                    "job_seconds": seconds,
                    "history": polling.expected_seconds is not None,
                    "expected_seconds": list(polling.expected_seconds) if polling.expected_seconds else None,
                    "status": polling.final_status,
                    "checks": polling.checks,
                    "history_events": polling.events,
                    "state_transitions": polling.transitions,
                    "allowance_s": allowance(seconds),
                    **self._schedule(seconds, polling.expected_seconds, step.fixed_poll),
                    "lambda_invocations": _invocations_by_function(polling.lambda_calls, names),
                    "requests": _difference(
                        self.meter.of(step.stack.stack_name, polling.object_type),
                        step.requests_before.get(polling.object_type, {}),
                    ),
                }
                overheads = poll_overhead_seconds(polling.waits)
                record["poll_overhead_median_s"] = round(statistics.median(overheads), 4) if overheads else None
                clock = (job or {}).get("clock") or {}
                if clock.get("finished") is not None and clock.get("finishSeen") is not None:
                    # On the account's held clock: the job's end and the poll that first showed it.
                    lag_s = (clock["finishSeen"] - clock["finished"]) / scale
                    record |= {
                        "detection_lag_s": round(lag_s, 1),
                        "job_clock_s": round((clock["finished"] - clock["started"]) / scale, 1),
                        "lag_fraction_of_allowance": round(lag_s / allowance(seconds), 3),
                        "waited_at_seen_s": polling.waited_at_seen,
                    }
                if job is not None and job.get("finishedTimeMs") and polling.seen_at is not None:
                    # The same lag read off the wall clock (every late wake-up of a busy machine / scale).
                    end = datetime.fromtimestamp((int(job["finishedTimeMs"]) - offset_ms) / 1000, UTC)
                    record["detection_lag_wall_s"] = round(
                        detection_lag(end, polling.seen_at, polling.waits, scale).seconds, 1
                    )
                types[polling.object_type] = record
        return {"object_types": types, "executions": executions, "functions": self.functions()}

    def _schedule(self, seconds: float, expected: tuple[int, int] | None, fixed: bool) -> dict[str, Any]:
        """What the pure schedule gives for this length and prediction: the executed run's reference."""
        prediction = Prediction(*expected) if expected else None
        options = {"dense_fraction": float(FIXED_POLL_LAG_FRACTION), "floor": FIXED_POLL_FLOOR} if fixed else {}
        polls = schedule(seconds, prediction, **options)
        return {"schedule_checks": len(polls), "schedule_lag_s": polls[-1] - seconds}

    def functions(self) -> dict[str, Any]:
        """Per function (logical id): its memory and its warm invocations' median duration, for the cost."""
        memory: dict[str, int] = {}
        for deployed in [self.stack, *self.stack.others]:
            for resource in deployed.deployment.of_type("AWS::Lambda::Function"):
                configuration = self.stack.client("lambda").get_function_configuration(
                    FunctionName=resource.physical_id
                )
                memory[resource.logical_id] = int(configuration["MemorySize"])
        durations: dict[str, list[float]] = {}
        for invocation in self.stack.invocations:
            if not invocation.cold_start and invocation.error_type is None:
                durations.setdefault(invocation.logical_id, []).append(invocation.duration_ms)
        return {
            logical: {
                "memory_mb": mb,
                "warm_invocations": len(durations.get(logical, [])),
                "median_warm_ms": round(statistics.median(durations[logical]), 2) if logical in durations else None,
            }
            for logical, mb in memory.items()
        }


def failure_reasons(history: list[dict[str, Any]]) -> list[str]:
    """What an execution's failed exports and its end said (for the log of a failed step)."""
    reasons = []
    for event in history:
        details = event.get("stateEnteredEventDetails") or {}
        if details.get("name") == "RecordFailure":
            failed = json.loads(details.get("input") or "{}")
            error = failed.get("error") or {}
            reasons.append(f"{failed.get('objectType')}: {failed.get('statusMessage') or error.get('Cause', '')[:300]}")
        if event["type"] == "ExecutionFailed":
            cause = event.get("executionFailedEventDetails", {})
            reasons.append(f"execution: {cause.get('error')}: {str(cause.get('cause'))[:300]}")
    return reasons[:5]


def _job_of(jobs: list[dict[str, Any]], name: str, start: str, end: str) -> dict[str, Any] | None:
    start_ms = int(datetime.fromisoformat(start.replace("Z", "+00:00")).timestamp() * 1000) if start else -1
    end_ms = int(datetime.fromisoformat(end.replace("Z", "+00:00")).timestamp() * 1000) if end else -1
    found = [
        j for j in jobs if j["dataIntegrationName"] == name and (j["startTimeMs"], j["endTimeMs"]) == (start_ms, end_ms)
    ]
    return found[-1] if found else None


def _invocations_by_function(calls: list[tuple[str, float]], functions: dict[str, str]) -> dict[str, int]:
    """How many times the export invoked each function (by logical id)."""
    counts: dict[str, int] = {}
    for arn, _ in calls:
        name = arn.split(":function:")[-1].split(":")[0]
        logical = functions.get(name, name)
        counts[logical] = counts.get(logical, 0) + 1
    return counts


def _difference(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {key: value - before.get(key, 0) for key, value in after.items()}


# ----------------------------------------------------------------------------------------- scenarios
def learned(stack: Any, sizes: Sizes) -> tuple[list[Step], dict[str, tuple[str, ...]]]:
    """Prior jobs give each `learn_*` and `vary_*` type its history; `fixed_*` types poll every 60 s."""
    fixed = stack.add_stack("bench-fixed", _parameters(_fixed_types(), sizes), customize=fixed_poll)
    durations = sizes.durations()
    short = {f"learn_{label}": s for label, s in durations.items() if DURATIONS[label] <= SHORT_HISTORY_UP_TO}
    long = {f"learn_{label}": s for label, s in durations.items() if DURATIONS[label] > SHORT_HISTORY_UP_TO}
    day = durations["24h"]
    vary = {"vary_8h": day / 3, "vary_24h": day}
    prior = WINDOW / HISTORY_RATIO
    steps = [
        # Ratio 1: the prior job is as long as the measured one, over as long a window.
        Step("prior-short", stack, short, INITIAL + WINDOW + SAFETY_LAG, measured=False),
        Step("learned-short", stack, short, INITIAL + 2 * WINDOW + SAFETY_LAG, after=("prior-short",)),
        # Ratio 10: a tenth of the length over a tenth of the window predicts the full length.
        Step(
            "prior-long",
            stack,
            {t: s / HISTORY_RATIO for t, s in long.items()} | {t: day / HISTORY_RATIO for t in vary},
            INITIAL + prior + SAFETY_LAG,
            measured=False,
        ),
        Step("learned-long", stack, long, INITIAL + prior + WINDOW + SAFETY_LAG, after=("prior-long",)),
        # Jobs that vary by 3x: a 24 h and an 8 h job before; measured at both ends of that range.
        Step(
            "prior-vary",
            stack,
            {t: day / 3 / HISTORY_RATIO for t in vary},
            INITIAL + 2 * prior + SAFETY_LAG,
            after=("prior-long",),
            measured=False,
        ),
        Step("varying", stack, vary, INITIAL + 2 * prior + WINDOW + SAFETY_LAG, after=("prior-vary",)),
        Step(
            "fixed",
            fixed,
            {f"fixed_{label}": s for label, s in durations.items()},
            INITIAL + WINDOW + SAFETY_LAG,
            fixed_poll=True,
        ),
    ]
    return steps, {stack.stack_name: _learned_types(), fixed.stack_name: _fixed_types()}


def _learned_types() -> tuple[str, ...]:
    return (*(f"learn_{label}" for label in DURATIONS), "vary_8h", "vary_24h")


def _fixed_types() -> tuple[str, ...]:
    return tuple(f"fixed_{label}" for label in DURATIONS)


def sweep(stack: Any, sizes: Sizes) -> tuple[list[Step], dict[str, tuple[str, ...]]]:
    """Jobs of many lengths, longest first, without history."""
    lengths = sorted(sweep_lengths(sizes.sweep_lengths, sizes.sweep_longest), reverse=True)
    durations = {_sweep_type(i): seconds for i, seconds in enumerate(lengths)}
    return [Step("sweep", stack, durations, INITIAL + WINDOW + SAFETY_LAG)], {stack.stack_name: tuple(durations)}


def _sweep_type(index: int) -> str:
    return f"sweep_{index + 1:02d}"


def all_types(stack: Any, sizes: Sizes) -> tuple[list[Step], dict[str, tuple[str, ...]]]:
    """`sizes.all_types` object types of 24-hour jobs (quick: shorter) in one execution, without history."""
    durations = {f"all_{i + 1:02d}": float(sizes.all_types_job_seconds) for i in range(sizes.all_types)}
    return [Step("all-types", stack, durations, INITIAL + WINDOW + SAFETY_LAG)], {stack.stack_name: tuple(durations)}


SCENARIOS = {"learned": learned, "sweep": sweep, "all_types": all_types}


def object_types_of(scenario: str, sizes: Sizes) -> tuple[str, ...]:
    """The primary stack's object types of a scenario (its ObjectTypes parameter)."""
    if scenario == "learned":
        return _learned_types()
    if scenario == "sweep":
        return tuple(_sweep_type(i) for i in range(len(sweep_lengths(sizes.sweep_lengths, sizes.sweep_longest))))
    return tuple(f"all_{i + 1:02d}" for i in range(sizes.all_types))


def _parameters(object_types: tuple[str, ...], sizes: Sizes) -> dict[str, str]:
    return PARAMETERS | {
        "ObjectTypes": ",".join(object_types),
        "MaxConcurrentExports": str(sizes.max_concurrent_exports),
    }


def run_account(
    names: list[str],
    sizes: Sizes,
    log_dir: Path,
    gate: Gate | None = None,
    index_files: tuple[int, ...] = (),
    threshold_files: tuple[int, ...] = (),
) -> dict[str, Any]:
    """Deploy into a fresh offline account, run the scenarios one after another, then index; their reports.

    `make bench` runs one scenario per account (they overlap in time, and each stays within the
    account's 20 concurrent jobs); the quick run chains all of them, and the indexing, in one.
    """
    from bench import indexing
    from local.harness.stack import OfflineStack

    logging.getLogger("moto").setLevel(logging.CRITICAL)
    logging.getLogger("local").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message="Tried to parse")
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    index_types = tuple(indexing.object_type_of(n) for n in sorted(set(index_files) | set(threshold_files)))
    object_types = tuple(t for name in names for t in object_types_of(name, sizes)) + index_types
    began = time.monotonic()
    with OfflineStack(
        ROOT / "template.yaml",
        _parameters(object_types, sizes),
        time_scale=sizes.time_scale,
        stack_name=f"bench-{names[0].replace('_', '-')}" if names != ["learned"] else "bench",
        lambda_log=log_dir / "lambdas.log",
        # A poll due at t sees exactly the jobs that ended by t, however late a busy machine wakes it.
        held_clock=True,
    ) as stack:
        if index_types:
            stack.emulator_control.configure(never_ending_object_types=list(index_types))
        planned: dict[str, list[Step]] = {}
        types_by_stack: dict[str, tuple[str, ...]] = {stack.stack_name: object_types}
        for name in names:
            steps, types = SCENARIOS[name](stack, sizes)
            previous = [step.name for steps_before in planned.values() for step in steps_before]
            for step in steps:
                step.after = step.after or tuple(previous)  # chained: after every step of the scenarios before
            planned[name] = steps
            for stack_name, its_types in types.items():
                types_by_stack.setdefault(stack_name, its_types)
        data_integrations = sum(len(types) for types in types_by_stack.values())
        if data_integrations > MAX_DATA_INTEGRATIONS:
            # Data integrations per Region: 20 by default, adjustable on AWS (a quota increase).
            stack.emulator_control.configure(max_data_integrations=data_integrations)
        meter = install(stack, types_by_stack)
        deployed = time.monotonic() - began
        every_step = [step for steps in planned.values() for step in steps]
        longest = sum(max(s for s in step.durations.values()) for step in every_step)
        scenario = Scenario(stack, sizes, meter)
        scenario.run(every_step, timeout=3 * longest * sizes.time_scale + 1200, gate=gate or Gate())
        reports: dict[str, Any] = {}
        for name, steps in planned.items():
            reports[name] = scenario.report(steps) | {
                "scenario": name,
                "time_scale": sizes.time_scale,
                "deploy_s": round(deployed, 1),
                "wall_s": round(time.monotonic() - began, 1),
            }
        if index_files:
            reports["index"] = indexing.index_jobs(stack, index_files, threshold_files)
    return reports


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.polling", description=__doc__)
    parser.add_argument("scenarios", nargs="+", choices=sorted(SCENARIOS), help="run one after another")
    parser.add_argument("--sizes", choices=sorted(SIZES), default="full")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--ready-file", type=Path, help="touched once this scenario's prior jobs are done")
    parser.add_argument("--wait-for", type=Path, nargs="*", default=[], help="start measured jobs once these exist")
    parser.add_argument("--index-files", type=int, nargs="*", default=[], help="then index jobs of these sizes")
    parser.add_argument("--threshold-files", type=int, nargs="*", default=[], help="and these, inline and distributed")
    args = parser.parse_args(argv)
    gate = Gate(args.ready_file, tuple(args.wait_for))
    with tempfile.TemporaryDirectory(prefix="bench-logs-") as logs:
        report = run_account(
            args.scenarios, SIZES[args.sizes], Path(logs), gate, tuple(args.index_files), tuple(args.threshold_files)
        )
    args.out.write_text(json.dumps(report, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
