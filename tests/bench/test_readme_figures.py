"""The README's benchmark figures are the ones `make bench` wrote to `bench/results.json`, rendered as is."""

from __future__ import annotations

import json
from pathlib import Path

from bench.report import lookup, markdown, required_keys
from bench.sizes import FULL

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results.json"


def test_the_readme_states_the_figures_of_bench_results_json() -> None:
    results = json.loads(RESULTS.read_text())

    assert results["size"] == "full" and results["command"] == "make bench"
    functions = [name for name, row in results["cold_start"].items() if isinstance(row, dict)]
    assert all(isinstance(lookup(results, key), int | float) for key in required_keys(FULL, functions)), (
        "bench/results.json lacks a figure"
    )
    assert markdown(results) in (ROOT / "README.md").read_text(), (
        "README.md's benchmark section differs from bench/results.json: paste `python -m bench.report`"
    )
