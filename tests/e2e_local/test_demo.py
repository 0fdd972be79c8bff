"""`make demo` end to end: its own completeness check must pass."""

import argparse

import pytest

from local import demo

pytestmark = pytest.mark.e2e


def test_the_demo_runs_three_days_and_finds_nothing_missing(tmp_path, capsys):
    code = demo.run(argparse.Namespace(days=3, time_scale=0.01, log=tmp_path / "lambdas.log"))
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Demo PASSED: nothing is missing." in out
    assert "[FAILED] Customer Profiles export FAILED: demo-domain: 2 exported, 1 failed" in out
    assert "result event: Customer Profiles Export Succeeded" in out
    # The handlers' JSON lines (metrics at least) went to the log file, not the terminal
    assert sum(line.startswith("{") for line in (tmp_path / "lambdas.log").read_text().splitlines()) > 10
    assert not any(line.startswith('{"_aws"') for line in out.splitlines())
