"""`make demo` end to end: its own completeness check must pass, and its query answers match what it seeded."""

from datetime import datetime

import pytest

from local import demo

pytestmark = pytest.mark.e2e


def _newest(objects):
    latest = {}
    for obj in objects:
        if obj["id"] not in latest or obj["lastUpdated"] >= latest[obj["id"]]["lastUpdated"]:
            latest[obj["id"]] = obj
    return latest


def test_the_demo_runs_three_days_finds_nothing_missing_and_answers_queries_from_its_objects(tmp_path, capsys):
    outcome = demo.run_demo(days=3, time_scale=0.01, log_path=tmp_path / "lambdas.log")
    out = capsys.readouterr().out
    assert outcome.code == 0, out
    assert "Demo PASSED: nothing is missing." in out
    assert "[FAILED] Customer Profiles export FAILED: demo-domain: 2 exported, 1 failed" in out
    assert "result event: Customer Profiles Export Succeeded" in out
    # The handlers' JSON lines (metrics at least) went to the log file, not the terminal
    assert sum(line.startswith("{") for line in (tmp_path / "lambdas.log").read_text().splitlines()) > 10
    assert not any(line.startswith('{"_aws"') for line in out.splitlines())

    # The saved query's current counts are the seeded objects: every profile seeded is there (profiles never
    # fail in the demo and appear before the lag), each type at least all objects due before its watermark
    counts = {row["object_type"]: row["objects"] for row in outcome.answers["Current count by object type"]}
    profiles = _newest(outcome.seeded["_profile"])
    assert counts["_profile"] == len(profiles)
    for object_type, objects in outcome.seeded.items():
        newest = _newest(objects)
        cutoff = datetime.fromisoformat(outcome.watermarks[object_type].replace("Z", "+00:00")).timestamp() * 1000
        due = [obj for obj in newest.values() if obj["lastUpdated"] < cutoff]
        assert len(due) <= counts[object_type] <= len(newest), object_type
    # profiles by loyalty tier add up to the same profiles, with the tiers the seeded newest versions carry
    tiers = outcome.answers["Current profiles by loyalty tier"]
    assert sum(row["profiles"] for row in tiers) == len(profiles)
    seeded_tiers = {(obj.get("Attributes") or {}).get("loyaltyTier") for obj in profiles.values()}
    assert {row["loyalty_tier"] for row in tiers} <= seeded_tiers
    # objects changed per day: no day counts more objects than were seeded
    per_day = outcome.answers["Objects changed per day"]
    assert per_day and all(
        row["objects_changed"] <= len(_newest(outcome.seeded[row["object_type"]])) for row in per_day
    )
    # and on-call's status is green once day 3 recovered day 2's failure
    assert outcome.status_code == 0
    assert "$ cpexport status" in out and "-> OK" in out
