"""Each knob is declared once: the README table, the config model and the randomized day all read it."""

from __future__ import annotations

import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from local.emulator import EmulatorConfig, random_faults
from local.emulator.config import drawn_knobs, knob_rows, knob_table

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "local" / "emulator" / "README.md"


def readme_table() -> str:
    text = README.read_text(encoding="utf-8")
    found = re.search(r"<!-- knob-table:begin[^>]*-->\n(.*?)<!-- knob-table:end -->", text, re.S)
    assert found, "the README lost its knob-table markers"
    return found.group(1)


def test_readme_knob_table_is_the_generated_one() -> None:
    # Given the declarations, When the table is generated, Then the README holds exactly it
    assert readme_table() == knob_table(), "regenerate with: python -m local.emulator --knob-table"


def test_knob_table_command_prints_the_table() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "local.emulator", "--knob-table"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout == knob_table()


def test_every_knob_is_in_the_table_with_a_meaning() -> None:
    rows = knob_rows()
    assert [r[0] for r in rows] == list(EmulatorConfig.model_fields)
    assert all(meaning for _, _, _, meaning, _ in rows)


@pytest.mark.parametrize("seed", range(40))
def test_random_faults_is_a_valid_partial_config_and_repeatable(seed: int) -> None:
    # Given a seed, When a day's faults are drawn twice from it
    first = random_faults(random.Random(seed))
    again = random_faults(random.Random(seed))

    # Then the draws are equal, name only drawn knobs, and validate as a config
    assert first == again
    assert set(first) == {name for name, _ in drawn_knobs()}
    config = EmulatorConfig(**first)
    assert config.model_dump(include=set(first)) == first


def test_random_faults_varies_across_days_and_uses_the_days_object_types() -> None:
    draws = [random_faults(random.Random(seed), object_types=("_order",)) for seed in range(200)]
    # Some days are calm and some are not, for every rate knob
    for knob in ("throttle_rate", "internal_error_rate", "stale_status_seconds"):
        values = {d[knob] for d in draws}
        assert 0.0 in values and len(values) > 1, knob
    # Forced failures only name the object types the day exports
    failing = [d["fail_object_types"] for d in draws if d["fail_object_types"]]
    assert failing and all(f == ["_order"] for f in failing)
    assert {d["update_while_in_progress"] for d in draws} == {"reject", "accept"}
