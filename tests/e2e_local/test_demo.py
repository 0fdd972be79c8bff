"""`make demo` end to end: its own completeness check must pass, and its query answers match what it seeded."""

import contextlib
import io

import pytest

from local import demo

pytestmark = pytest.mark.e2e


def _newest(objects):
    latest = {}
    for obj in objects:
        if obj["id"] not in latest or obj["lastUpdated"] >= latest[obj["id"]]["lastUpdated"]:
            latest[obj["id"]] = obj
    return latest


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    """One run of the demo (about a minute) for every test of this module: its outcome, stdout and log."""
    log = tmp_path_factory.mktemp("demo") / "lambdas.log"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        outcome = demo.run_demo(days=3, time_scale=0.01, log_path=log)
    return outcome, printed.getvalue(), log


def test_the_demo_runs_three_days_finds_nothing_missing_and_answers_queries_from_its_objects(ran):
    outcome, out, log = ran
    assert outcome.code == 0, out
    assert "Demo PASSED: nothing is missing, and the current state is exact as of the reconcile." in out
    assert "[FAILED] Customer Profiles export FAILED: demo-domain: 2 exported, 1 failed" in out
    assert "result event: Customer Profiles Export Succeeded" in out
    # The failure as chat gets it, beside the email text
    assert "The same message as a Slack or Teams channel gets it" in out
    assert '"title": ":warning: Customer Profiles export PARTIALLY FAILED: demo-domain (2 exported, 1 failed)"' in out
    # The handlers' JSON lines (metrics at least) went to the log file, not the terminal
    assert sum(line.startswith("{") for line in log.read_text().splitlines()) > 10
    assert not any(line.startswith('{"_aws"') for line in out.splitlines())

    # Saturday took a few objects from the domain: a merge (profiles) and deletions (orders, assets)
    removed = outcome.removed
    assert outcome.merged_away and removed["_order"] and set(outcome.merged_away) <= set(removed["_profile"])
    # Before the reconcile the current-state tables held every seeded object; after it, fewer, by at least
    # the objects gone (see test below for "exactly")
    counts = {row["object_type"]: row["objects"] for row in outcome.answers["Current count by object type"]}
    assert counts == outcome.counts_after
    for object_type, objects in outcome.seeded.items():
        assert outcome.counts_before[object_type] == len(_newest(objects)), object_type
        assert outcome.counts_after[object_type] <= outcome.counts_before[object_type] - len(removed[object_type])
        # the ids gone are absent from the _state table
        assert not set(removed[object_type]) & set(outcome.tables_after[object_type]), object_type
    # the merged-away profile and the deleted order followed by the demo are in the _deleted tables
    for object_type in ("_profile", "_order"):
        (row,) = outcome.deleted_rows[object_type]
        assert row["id"] in removed[object_type]
        assert row["deleted_by"].startswith("reconcile demo-domain ") and row["detected_at"].endswith("Z")
    assert "before the reconcile the `_state` tables still hold them" in out
    assert out.count("exact_as_of.demo-domain = ") == 3
    # live profiles by loyalty tier add up to the profiles the _state table holds
    tiers = outcome.answers["Live profiles by loyalty tier"]
    assert sum(row["profiles"] for row in tiers) == outcome.counts_after["_profile"]
    seeded_tiers = {
        (obj.get("Attributes") or {}).get("loyaltyTier") for obj in _newest(outcome.seeded["_profile"]).values()
    }
    assert {row["loyalty_tier"] for row in tiers} <= seeded_tiers
    # objects changed per day: no day counts more objects than were seeded
    per_day = outcome.answers["Objects changed per day"]
    assert per_day and all(
        row["objects_changed"] <= len(_newest(outcome.seeded[row["object_type"]])) for row in per_day
    )
    # and on-call's status is green once day 3 recovered day 2's failure
    assert outcome.status_code == 0
    assert "$ cpexport status" in out and "-> OK" in out


def test_the_reconcile_removes_exactly_the_objects_gone_from_the_domain(ran):
    outcome, _, _ = ran
    for object_type, ids in outcome.removed.items():
        assert outcome.counts_after[object_type] == outcome.counts_before[object_type] - len(ids), object_type
