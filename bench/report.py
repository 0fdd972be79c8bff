"""From the scenarios' raw records to `bench/results.json`: each figure beside its baseline, and the table printed.

The required keys (`required_keys`) are what the quick test checks: every one must hold a number.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

from cpexport.polling import allowance, schedule

from bench.cost import PRICE_REGION, PRICES_USD, export_cost
from bench.sizes import COST_DURATIONS, DURATIONS, REPORTED_DURATIONS, Sizes

HISTORY_LIMIT = 25_000
SCHEDULE_GRID = 5000  # job lengths the pure schedule is checked at (log-spaced, 1 s to 24 h)
POLL_FIELDS = ("checks", "history_events_per_type", "baseline_history_events_per_type", "detection_lag_s")
INDEX_FIELDS = ("ratio_to_listing", "ratio_to_listing_and_reading", "peak_rss_mb", "max_timeout_fraction")
COLD_START_FIELDS = ("import_ratio", "build_bytes")


def required_keys(sizes: Sizes, functions: list[str]) -> list[str]:
    """Every dotted key the results must hold a number at."""
    keys = [f"poll.{d}.{field}" for d in REPORTED_DURATIONS for field in POLL_FIELDS]
    keys += ["poll.lag_sweep.worst_fraction_of_allowance", "poll.all_types_24h_history_events"]
    keys += [f"index.{n}.{field}" for n in sizes.index_files for field in INDEX_FIELDS]
    keys += [f"cold_start.{f}.{field}" for f in functions for field in COLD_START_FIELDS]
    keys += [f"cost.{d}.{field}" for d in COST_DURATIONS for field in ("usd", "baseline_usd")]
    keys += ["demo.wall_s"] if sizes.demo_days else []
    keys += current_keys(sizes)
    return keys


def current_keys(sizes: Sizes) -> list[str]:
    """The current-state benchmark's keys: per checkpoint the current count's bytes over the table and the view,
    an id's lookup at the last one, the merges' and the reconcile's wall time."""
    days = [f"{day}d" for day in sizes.current_days]
    keys = [f"current.{source}_bytes.{day}" for source in ("table", "view") for day in days]
    keys += [f"current.lookup_bytes.{source}.{days[-1]}" for source in ("table", "view")]
    keys += ["current.merge_seconds", "current.reconcile_seconds"]
    return keys


def lookup(results: dict[str, Any], dotted: str) -> Any:
    """The value at a dotted key (None when a part is missing)."""
    node: Any = results
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def schedule_worst_fraction(lengths: int) -> float:
    """The pure schedule's worst lag over `lengths` job lengths from 1 s to 24 h, as a fraction of its allowance."""
    worst = 0.0
    for i in range(lengths):
        seconds = math.exp(math.log(86_400) * i / (lengths - 1))
        polls = schedule(seconds, None)
        worst = max(worst, (polls[-1] - seconds) / allowance(seconds))
    return round(worst, 4)


def _export(record: dict[str, Any]) -> dict[str, Any]:
    """The figures of one measured export, for the results."""
    keys = (
        "checks",
        "schedule_checks",
        "history_events",
        "state_transitions",
        "detection_lag_s",
        "detection_lag_wall_s",
        "job_clock_s",
        "schedule_lag_s",
        "allowance_s",
        "lag_fraction_of_allowance",
        "expected_seconds",
        "status",
    )
    return {key: record.get(key) for key in keys}


def poll_section(learned: dict[str, Any], sweep: dict[str, Any], all_types: dict[str, Any]) -> dict[str, Any]:
    """The `poll` section: each duration with history, without, and the fixed 60 s poll run the same way."""
    exports = learned["object_types"]
    by_length = {record["job_seconds"]: record for record in sweep["object_types"].values()}
    section: dict[str, Any] = {}
    for label in DURATIONS:
        with_history, fixed = exports[f"learn_{label}"], exports[f"fixed_{label}"]
        seconds = with_history["job_seconds"]
        without = by_length.get(float(seconds), {})
        section[label] = {
            "job_seconds": seconds,
            "checks": with_history["checks"],
            "history_events_per_type": with_history["history_events"],
            "detection_lag_s": with_history.get("detection_lag_s"),
            "baseline_checks": fixed["checks"],
            "baseline_history_events_per_type": fixed["history_events"],
            "baseline_detection_lag_s": fixed.get("detection_lag_s"),
            "allowance_s": with_history["allowance_s"],
            "with_history": _export(with_history),
            "without_history": _export(without) if without else None,
            "fixed_60s_poll": _export(fixed),
        }
    points = sorted(sweep["object_types"].values(), key=lambda r: r["job_seconds"])
    measured = [p for p in points if p.get("lag_fraction_of_allowance") is not None]
    worst = max(measured, key=lambda p: p["lag_fraction_of_allowance"]) if measured else {}
    section["lag_sweep"] = {
        "job_lengths": len(points),
        "measured": len(measured),
        "shortest_s": points[0]["job_seconds"] if points else None,
        "longest_s": points[-1]["job_seconds"] if points else None,
        "worst_fraction_of_allowance": worst.get("lag_fraction_of_allowance"),
        "worst_at_job_seconds": worst.get("job_seconds"),
        "worst_wall_fraction_of_allowance": _round(
            max(
                (p["detection_lag_wall_s"] / p["allowance_s"] for p in measured if "detection_lag_wall_s" in p),
                default=None,
            )
        ),
        "schedule_worst_fraction_of_allowance": _round(
            max((p["schedule_lag_s"] / p["allowance_s"] for p in points), default=None)
        ),
        "schedule_worst_fraction_dense_grid": schedule_worst_fraction(SCHEDULE_GRID),
        "history_events_total": sum(p["history_events"] for p in points),
        "points": [
            {
                "job_s": p["job_seconds"],
                "checks": p["checks"],
                "lag_s": p.get("detection_lag_s"),
                "lag_wall_s": p.get("detection_lag_wall_s"),
                "job_clock_s": p.get("job_clock_s"),
                "allowance_s": p["allowance_s"],
                "fraction": p.get("lag_fraction_of_allowance"),
                "schedule_lag_s": p["schedule_lag_s"],
            }
            for p in points
        ],
    }
    (all_run,) = all_types["executions"].values()
    all_exports = list(all_types["object_types"].values())
    section["all_types_24h_history_events"] = all_run["history_events"]
    section["all_types_24h"] = {
        "object_types": all_run["object_types"],
        "job_seconds": all_exports[0]["job_seconds"],
        "history_events": all_run["history_events"],
        "of_limit": round(all_run["history_events"] / HISTORY_LIMIT, 3),
        "status": all_run["status"],
        "history_events_per_type_max": max(r["history_events"] for r in all_exports),
        "checks_per_type_median": statistics.median(r["checks"] for r in all_exports),
        "worst_fraction_of_allowance": max((r.get("lag_fraction_of_allowance") or 0) for r in all_exports),
        "baseline_fixed_60s_poll_estimate": all_run["object_types"] * exports["fixed_24h"]["history_events"]
        + all_run["shared_history_events"],
    }
    section["history_predicts_well"] = _export(exports["learn_24h"]) | {"history": "jobs of the same length"}
    section["history_varies_3x"] = {
        "history": "one job of 8 h and one of 24 h",
        "8h": _export(exports["vary_8h"]),
        "24h": _export(exports["vary_24h"]),
    }
    overheads = [
        r["poll_overhead_median_s"]
        for scenario in (learned, sweep, all_types)
        for r in scenario["object_types"].values()
        if r.get("poll_overhead_median_s") is not None
    ]
    scale = learned["time_scale"]
    section["time_scale"] = scale
    section["poll_round_trip_median_s"] = round(statistics.median(overheads), 4) if overheads else None
    return section


def index_section(report: dict[str, Any]) -> dict[str, Any]:
    """The `index` section: per job size, the index against bare S3 work, memory and timeouts."""
    return {key: value for key, value in report.items()}


def cost_section(learned: dict[str, Any], sweep: dict[str, Any]) -> dict[str, Any]:
    """The `cost` section: one export with history, without, and polled every 60 s, at list prices."""
    section: dict[str, Any] = {
        "prices_usd": PRICES_USD | {},
        "price_region": PRICE_REGION,
        "lambda_architecture": "arm64",
    }
    by_length = {record["job_seconds"]: record for record in sweep["object_types"].values()}
    for label in COST_DURATIONS:
        with_history = export_cost(learned["object_types"][f"learn_{label}"], learned["functions"])
        fixed = export_cost(learned["object_types"][f"fixed_{label}"], learned["functions"])
        without = by_length.get(float(learned["object_types"][f"learn_{label}"]["job_seconds"]))
        section[label] = {
            "usd": with_history["usd"],
            "baseline_usd": fixed["usd"],
            "without_history_usd": export_cost(without, sweep["functions"])["usd"] if without else None,
            "with_history": with_history,
            "fixed_60s_poll": fixed,
        }
    return section


def _cell(value: Any, spec: str = "") -> str:
    if value is None:
        return "-"
    return format(value, spec) if spec else str(value)


def print_figures(results: dict[str, Any]) -> None:
    """The figures, as a reader of the README sees them."""
    poll = results["poll"]
    print(f"\nPolling, executed (time scale {poll['time_scale']}; lags on the held clock)")
    print(
        f"  {'job':>4} | {'checks: history / none / fixed':>30} | {'events/type: history / none / fixed':>36} |"
        f" {'lag s: history / none / fixed':>30} | allowance"
    )
    for label in DURATIONS:
        row = poll[label]
        none = row["without_history"] or {}
        print(
            f"  {label:>4} | {row['checks']:>8} / {_cell(none.get('checks')):>6} / {row['baseline_checks']:>6}      |"
            f" {row['history_events_per_type']:>10} / {_cell(none.get('history_events')):>6} /"
            f" {row['baseline_history_events_per_type']:>6}          |"
            f" {_cell(row['detection_lag_s']):>10} / {_cell(none.get('detection_lag_s')):>6} /"
            f" {_cell(row['baseline_detection_lag_s']):>6}      | {row['allowance_s']:.0f}"
        )
    sweep = poll["lag_sweep"]
    print(
        f"  lag sweep: {sweep['job_lengths']} lengths {sweep['shortest_s']:g}-{sweep['longest_s']:g} s, worst lag "
        f"{_cell(sweep['worst_fraction_of_allowance'])} of its allowance (at {_cell(sweep['worst_at_job_seconds'])} s);"
        f" the schedule alone: {_cell(sweep['schedule_worst_fraction_of_allowance'], '.3f')}"
    )
    every = poll["all_types_24h"]
    print(
        f"  {every['object_types']} types x 24 h in one execution: {every['history_events']:,} history events "
        f"({every['of_limit']:.0%} of 25,000), {every['status']}; worst lag {every['worst_fraction_of_allowance']} "
        f"of its allowance; a fixed 60 s poll: ~{every['baseline_fixed_60s_poll_estimate']:,}"
    )
    for name, row in (("predicts well (24 h)", poll["history_predicts_well"]),):
        print(
            f"  history {name}: {row['checks']} checks, {row['history_events']} events, lag {row['detection_lag_s']} s"
        )
    for label in ("8h", "24h"):
        row = poll["history_varies_3x"][label]
        print(
            f"  history varies 3x, {label} job: {row['checks']} checks, {row['history_events']} events,"
            f" lag {row['detection_lag_s']} s"
        )
    if "index" in results:
        print("\nIndexing")
        for n, row in results["index"].items():
            if not isinstance(row, dict) or "ratio_to_listing" not in row:
                continue
            print(
                f"  {int(n):>7,} files: {row['wall_s']:.1f} s, {row['ratio_to_listing']:.2f}x a bare listing, "
                f"{row['ratio_to_listing_and_reading']:.2f}x listing + reading every file; peak "
                f"{row['peak_rss_mb']:.0f} MB, at most {row['max_timeout_fraction']:.1%} of a Lambda timeout"
            )
    cold = results["cold_start"]
    print(f"\nCold start (median of {cold['runs']} fresh interpreters; baseline {cold['baseline_import_s']} s)")
    for name, row in cold.items():
        if isinstance(row, dict) and "import_ratio" in row:
            print(
                f"  {name:<22} import {row['import_s']:.3f} s = {row['import_ratio']:.2f}x boto3;"
                f" {row['build_bytes']:,} bytes + layer {cold['layer_bytes']:,} ({cold['sizes_from']})"
            )
    cost = results["cost"]
    print("\nCost of one export at list prices (us-east-1, arm64)")
    for label in COST_DURATIONS:
        row = cost[label]
        print(
            f"  {label:>4}: ${row['usd']:.5f} with history, ${_cell(row['without_history_usd'], '.5f')} without,"
            f" ${row['baseline_usd']:.5f} with a fixed 60 s poll"
        )
    demo = results["demo"]
    print(f"\nDemo: {demo['wall_s']} s ({demo['command']})" if "wall_s" in demo else f"\nDemo: {demo['skipped']}")


def _mb(value: int) -> str:
    return f"{value / 1_000_000:,.1f} MB"


def _current_lines(current: dict[str, Any]) -> list[str]:
    """The current-state table against the view: a Markdown table and its notes."""
    days = list(current["table_bytes"])
    last = days[-1]
    reconcile = current["reconcile"]
    out = [
        f"Current state, {current['objects']:,} `{current['object_type']}` objects of which"
        f" {current['changed_per_day']:,} change a day, one export partition a day merged into the state table"
        f" (bytes: the S3 objects the offline Athena read, whole; docs/benchmarks.md):",
        "",
        "| after | current count: table | view | table / view | lookup of one id: table | view |",
        "|---|---|---|---|---|---|",
    ]
    for day in days:
        lookup_cells = (
            f" {_mb(current['lookup_bytes']['table'][day])}, {current['lookup_seconds']['table'][day]:.2f} s |"
            f" {_mb(current['lookup_bytes']['view'][day])}, {current['lookup_seconds']['view'][day]:.2f} s |"
            if day in current["lookup_bytes"]["table"]
            else " - | - |"
        )
        out.append(
            f"| {day} | {_mb(current['table_bytes'][day])}, {current['table_seconds'][day]:.2f} s |"
            f" {_mb(current['view_bytes'][day])}, {current['view_seconds'][day]:.2f} s |"
            f" {current['table_bytes'][day] / current['view_bytes'][day]:.3f} |{lookup_cells}"
        )
    out += [
        "",
        f"- Table bytes for the count, {last} / {days[0]}: {current['table_bytes_last_over_first']:.3f};"
        f" table / view at {last}: {current['table_over_view_bytes']:.4f}"
        f" (1/{current['view_bytes'][last] / current['table_bytes'][last]:.0f}).",
        f"- {current['merges']} daily merges: median {current['merge_seconds']:.2f} s"
        f" (longest {current['merge_seconds_max']:.2f} s), median {_mb(current['merge_bytes'])} read;"
        f" the first ({current['objects']:,} objects) {current['initial_merge']['seconds']:.2f} s.",
        f"- Reconcile at {last} ({reconcile['left_the_domain']:,} objects left the domain): record the deleted"
        f" {reconcile['record_deleted_seconds']:.2f} s ({_mb(reconcile['record_deleted_bytes'])}), apply them"
        f" {reconcile['apply_deleted_seconds']:.2f} s ({_mb(reconcile['apply_deleted_bytes'])}): together"
        f" {current['reconcile_seconds']:.2f} s; merging its full export first {reconcile['full_export_merge_seconds']:.2f} s"
        f" ({_mb(reconcile['full_export_merge_bytes'])}). The whole simulation: {current['wall_s']:.0f} s.",
    ]
    return out


def print_current(results: dict[str, Any]) -> None:
    """The current-state table against the view (printed after the figures)."""
    if "current" in results:
        print("")
        print("\n".join(_current_lines(results["current"])))


def _threshold_lines(index: dict[str, Any]) -> list[str]:
    threshold = index.get("threshold")
    if not isinstance(threshold, dict):
        return []
    lines = []
    for n, row in sorted(threshold["sizes"].items(), key=lambda item: int(item[0])):
        lines.append(
            f"  {int(n):>7,} files: inline {row['inline']['wall_s']:.2f} s, Distributed Map "
            f"{row['distributed']['wall_s']:.2f} s ({row['distributed_over_inline']:.2f}x)"
        )
    crossing = threshold["crossover_files"]
    lines.append(
        f"  crossover: {'none in the sizes measured' if crossing is None else f'~{crossing:,} files'}"
        f" (InlineIndexMaxFiles default {threshold['default_inline_index_max_files']:,})"
    )
    return lines


def print_threshold(results: dict[str, Any]) -> None:
    """Inline against the Distributed Map, per size (printed after the figures)."""
    lines = _threshold_lines(results.get("index", {}))
    if lines:
        print("\nCounting inline or by the Distributed Map")
        print("\n".join(lines))


def _ratio(value: Any) -> str:
    return "-" if value is None else f"{value:.2f}x"


def markdown(results: dict[str, Any]) -> str:
    """The README's benchmark tables, rendered from `bench/results.json` (the README holds exactly this text)."""
    poll, machine = results["poll"], results["machine"]
    out = [
        f"Measured by `{results['command']}` on {machine['cpus']} CPUs ({machine['cpu']}), {machine['memory_gb']} GB,"
        f" Python {machine['python']}, started {results['started_at']} (load average at start"
        f" {machine['load_average_at_start'][0]}); time scale {poll['time_scale']} (a 60 s Wait lasts"
        f" {60 * poll['time_scale']:g} s); detection lags read off the accounts' held clock, on which a poll"
        f" due at t sees exactly the jobs that ended by t however busy the machine (docs/benchmarks.md).",
        "",
        "| job | checks (history / none / fixed 60 s) | history events per type (history / fixed) |"
        " detection lag s (history / none / fixed) | allowance s |",
        "|---|---|---|---|---|",
    ]
    for label in REPORTED_DURATIONS:
        row = poll[label]
        none = row["without_history"] or {}
        out.append(
            f"| {label} | {row['checks']} / {_cell(none.get('checks'))} / {row['baseline_checks']} |"
            f" {row['history_events_per_type']} / {row['baseline_history_events_per_type']} |"
            f" {_cell(row['detection_lag_s'])} / {_cell(none.get('detection_lag_s'))} /"
            f" {_cell(row['baseline_detection_lag_s'])} | {row['allowance_s']:.0f} |"
        )
    sweep, every = poll["lag_sweep"], poll["all_types_24h"]
    vary = poll["history_varies_3x"]
    out += [
        "",
        f"- Lag sweep, {sweep['job_lengths']} job lengths from {sweep['shortest_s']:g} s to {sweep['longest_s']:g} s"
        f" without history: worst lag {_cell(sweep['worst_fraction_of_allowance'])} of its allowance"
        f" (at {_cell(sweep['worst_at_job_seconds'])} s; the schedule alone, on a grid of"
        f" {SCHEDULE_GRID:,} lengths: {_cell(sweep['schedule_worst_fraction_dense_grid'])}; read off the wall"
        f" clock, as a busy machine's late wake-ups make it: {_cell(sweep['worst_wall_fraction_of_allowance'])}).",
        f"- {every['object_types']} object types x 24 h in one execution: {every['history_events']:,} history events"
        f" ({every['of_limit']:.0%} of the 25,000 limit), {every['status']}; a fixed 60 s poll:"
        f" ~{every['baseline_fixed_60s_poll_estimate']:,}.",
        f"- History that predicts well (24 h): {poll['history_predicts_well']['checks']} checks, lag"
        f" {_cell(poll['history_predicts_well']['detection_lag_s'])} s. History that varies 3x: 8 h job"
        f" {vary['8h']['checks']} checks, lag {_cell(vary['8h']['detection_lag_s'])} s; 24 h job"
        f" {vary['24h']['checks']} checks, lag {_cell(vary['24h']['detection_lag_s'])} s"
        f" (allowance {vary['24h']['allowance_s']:.0f} s).",
        "",
        "| files | wall s | x bare listing | x listing + reading | peak MB per Lambda | max fraction of a timeout |",
        "|---|---|---|---|---|---|",
    ]
    index = results["index"]
    for n, row in index.items():
        if isinstance(row, dict) and "ratio_to_listing" in row:
            out.append(
                f"| {int(n):,} | {row['wall_s']:.1f} | {_ratio(row['ratio_to_listing'])} |"
                f" {_ratio(row['ratio_to_listing_and_reading'])} | {row['peak_rss_mb']:.0f} |"
                f" {row['max_timeout_fraction']:.1%} |"
            )
    threshold = _threshold_lines(index)
    if threshold:
        out += ["", "Counting inline or by the Distributed Map (`InlineIndexMaxFiles`):", "", "```", *threshold, "```"]
    cold = results["cold_start"]
    out += [
        "",
        f"| function | import s (median of {cold['runs']}) | x `import boto3; boto3.client('s3')`"
        f" ({cold['baseline_import_s']} s) | built bytes (+ layer {cold['layer_bytes']:,}) |",
        "|---|---|---|---|",
    ]
    for name, row in cold.items():
        if isinstance(row, dict) and "import_ratio" in row:
            out.append(f"| {name} | {row['import_s']:.3f} | {row['import_ratio']:.2f}x | {row['build_bytes']:,} |")
    cost = results["cost"]
    out += ["", "| one export of one object type | with history | without | fixed 60 s poll |", "|---|---|---|---|"]
    for label in COST_DURATIONS:
        row = cost[label]
        out.append(
            f"| {label} job | ${row['usd']:.5f} | ${_cell(row['without_history_usd'], '.5f')} |"
            f" ${row['baseline_usd']:.5f} |"
        )
    out += ["", f"Demo: {results['demo']['wall_s']} s (`{results['demo']['command']}`)."]
    if "current" in results:
        out += ["", *_current_lines(results["current"])]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    import json
    import sys
    from pathlib import Path

    path = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).with_name("results.json"))
    print(markdown(json.loads(path.read_text())), end="")
