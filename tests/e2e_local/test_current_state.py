"""The current-state tables end to end: scheduled exports merged into `{stem}_state`, deletions and
merges a reconcile finds, a merge that keeps failing and the `cpexport rebuild-current` that catches up.

One stack for the module and one story: each test starts from what the tests before it left (the
emulator is not reset between them), as the days of a domain follow each other.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner, Result
from cpexport.catalog import database_name, deleted_table_name, state_table_name
from cpexport_cli.app import cli

from local.emulator.synthetic import generate
from local.harness.stack import OfflineStack
from local.observe import PipelineObserver, Version
from tests.e2e_local.conftest import DAY0, deploy, ms, run, tick

pytestmark = pytest.mark.e2e
DOMAIN = "cs"
TYPES = ("_profile", "_order")


def at(day: int, hours: float = 0) -> datetime:
    return DAY0 + timedelta(days=day, hours=hours)


def utc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Story:
    """The stack, its observer, and the ids the tests act on as they go."""

    stack: OfflineStack
    observer: PipelineObserver
    picked: dict[str, str] = field(default_factory=dict)

    @property
    def database(self) -> str:
        return database_name(self.stack.stack_name)

    def live(self, object_type: str, before: datetime | None = None) -> dict[str, int]:
        """id -> lastUpdated of what the domain holds now (updated before `before`, when given)."""
        objects = self.stack.emulator_control.objects(DOMAIN, object_type)
        limit = ms(before) if before else None
        return {o["id"]: o["lastUpdated"] for o in objects if limit is None or o["lastUpdated"] < limit}

    def newest_exported(self, object_type: str) -> dict[str, int]:
        """id -> the newest lastUpdated any manifest of the run index holds."""
        newest: dict[str, int] = {}
        for version in self.observer.exported_versions(DOMAIN, object_type):
            newest[version.id] = max(version.last_updated, newest.get(version.id, 0))
        return newest

    def table(self, object_type: str) -> dict[str, int]:
        return self.observer.current_table(DOMAIN, object_type)

    def deleted_rows(self, object_type: str) -> list[dict[str, str | None]]:
        return self.observer.athena(
            f"SELECT id, lastupdated, deleted_by, detected_at FROM {deleted_table_name(object_type)} "  # nosec B608
            f"WHERE domain = '{DOMAIN}' ORDER BY id"
        )

    def seed(self, object_type: str, objects: list[dict[str, Any]]) -> None:
        self.stack.emulator_control.seed(DOMAIN, object_type, objects)

    def cli(self, *arguments: str) -> Result:
        options = [
            "--stack-name",
            self.stack.stack_name,
            "--region",
            self.stack.region,
            "--endpoint-url",
            self.stack.endpoint_url,
            "--appintegrations-endpoint-url",
            str(self.stack.appintegrations_endpoint_url),
        ]
        runner = CliRunner(mix_stderr=False, env={"COLUMNS": "250"})
        return runner.invoke(cli, [*arguments, *options], catch_exceptions=False)


@pytest.fixture(scope="module")
def story() -> Iterator[Story]:
    for stack, observer in deploy({"DomainNames": DOMAIN, "ObjectTypes": ",".join(TYPES)}):
        yield Story(stack, observer)


def newer_version(obj: dict[str, Any], moment: datetime) -> dict[str, Any]:
    return obj | {"lastUpdated": ms(moment)}


# ------------------------------------------------------------------------------- merged by every export
def test_scheduled_exports_leave_exactly_the_newest_exported_version_of_each_object(story):
    # Given a day of profiles and their orders, exported by the first tick
    profiles = generate("_profile", 20, ms(at(0)), ms(at(0, 20)), 11)
    orders = generate("_order", 30, ms(at(0)), ms(at(0, 20)), 12, profile_ids=[p["id"] for p in profiles])
    story.seed("_profile", profiles)
    story.seed("_order", orders)
    assert tick(story.stack, day=1)["status"] == "SUCCEEDED"
    # And a second day that updates some of them (a newer version of the same id) and adds orders
    story.seed("_profile", [newer_version(p, at(1, 2 + i)) for i, p in enumerate(profiles[:5])])
    story.seed("_order", [newer_version(o, at(1, 3 + i)) for i, o in enumerate(orders[:5])])
    story.seed("_order", generate("_order", 10, ms(at(1)), ms(at(1, 20)), 13, profile_ids=[p["id"] for p in profiles]))

    # When the second tick exports and merges them
    second = tick(story.stack, day=2)

    # Then each table holds every live object once, at its newest version: what the domain holds and
    # what the manifests say, both
    assert second["status"] == "SUCCEEDED", second
    watermark = at(2) - timedelta(minutes=30)
    for object_type in TYPES:
        assert story.observer.watermark(DOMAIN, object_type) == utc(watermark)
        table = story.table(object_type)
        assert table == story.live(object_type, before=watermark)
        assert table == story.newest_exported(object_type)
    assert len(story.table("_order")) == 40
    assert story.table("_order")[orders[0]["id"]] == ms(at(1, 3))  # the newer version won


def test_a_replayed_or_out_of_order_merge_changes_nothing(story):
    # Given the tables after two exports, the first of which held older versions of some objects
    before = {object_type: story.table(object_type) for object_type in TYPES}

    # When each export's MERGE runs again, the newest first and then the oldest (out of order)
    for object_type in TYPES:
        runs = [r for r in story.observer.runs(DOMAIN, object_type) if r["status"] == "SUCCEEDED"]
        assert len(runs) == 2
        for replayed in reversed(runs):
            story.observer.replay_merge(object_type, [p["name"] for p in replayed["partitions"]])

    # Then no row changed: an older version never replaces a newer one, the same one is no change
    assert {object_type: story.table(object_type) for object_type in TYPES} == before


# ------------------------------------------------------------------------------- deletions and merges
def test_a_reconcile_removes_what_the_domain_deleted_or_merged_away_and_says_so(story):
    stack, observer, control = story.stack, story.observer, story.stack.emulator_control
    orders, profiles = story.live("_order"), story.live("_profile")
    profile_ids = sorted(profiles)
    deleted_order = sorted(orders)[-1]
    main, merged_away = profile_ids[0], profile_ids[1]
    story.picked |= {"deleted_order": deleted_order, "main": main, "merged_away": merged_away}
    # Given an order deleted and two profiles merged in Customer Profiles
    control.delete(DOMAIN, "_order", [deleted_order])
    merge = control.merge(DOMAIN, main, [merged_away], at_ms=ms(at(2, 3)))
    assert merge["deleted"] == {"_profile": [merged_away]}

    # When the next incremental export runs
    assert tick(stack, day=3)["status"] == "SUCCEEDED"

    # Then the deleted order and the merged-away profile are still current: an export cannot see deletions
    assert deleted_order in story.table("_order")
    assert merged_away in story.table("_profile")
    assert story.table("_profile")[main] == ms(at(2, 3))  # the merge updated the main profile
    cutoff = at(3) - timedelta(minutes=30)
    # And an object updated after that watermark reaches the table through a backfill
    late = generate("_order", 1, ms(at(3, 0.75)), ms(at(3, 0.9)), 14, profile_ids=[main])
    story.seed("_order", late)
    story.picked["late_order"] = late[0]["id"]
    backfill = run(
        stack, {"domainName": DOMAIN, "objectTypes": ["_order"], "startTime": utc(cutoff), "endTime": utc(at(3, 1))}
    )
    assert backfill["status"] == "SUCCEEDED", backfill
    assert story.table("_order")[late[0]["id"]] == late[0]["lastUpdated"]
    watermarks = {object_type: observer.watermark(DOMAIN, object_type) for object_type in TYPES}
    observer.notifications(), observer.result_events()

    # When the reconcile schedule fires
    reconcile = stack.wait_execution(
        stack.fire_schedule("ExportStateMachineReconcile", scheduled_time=at(4)), timeout=120
    )

    # Then the deleted order and the merged-away profile are recorded as candidates, still in the tables: an
    # object updated after the full export's window is absent from it too, only the next export tells them apart
    assert reconcile["status"] == "SUCCEEDED", reconcile
    assert deleted_order in story.table("_order") and merged_away in story.table("_profile")
    (order_gone,) = story.deleted_rows("_order")
    (profile_gone,) = story.deleted_rows("_profile")
    assert (order_gone["id"], int(str(order_gone["lastupdated"]))) == (deleted_order, orders[deleted_order])
    assert profile_gone["id"] == merged_away
    for row in (order_gone, profile_gone):
        assert str(row["deleted_by"]).startswith(f"reconcile {DOMAIN} 2026-11-01T00:00:00Z..{utc(cutoff)} requested ")
        assert "reconcile-scheduled:" in str(row["deleted_by"])
        assert datetime.fromisoformat(str(row["detected_at"]).replace("Z", "+00:00")).tzinfo is not None
    # And the watermarks did not move
    assert {object_type: observer.watermark(DOMAIN, object_type) for object_type in TYPES} == watermarks
    # And the result events and the on-call message name the table, merged, reconcile, and when it is confirmed
    events = {e["detail"]["objectType"]: e["detail"] for e in observer.result_events()}
    assert set(events) == set(TYPES)
    for object_type, detail in events.items():
        assert detail["reconcile"] is True and detail["status"] == "SUCCEEDED"
        assert detail["window"] == {"start": "2026-11-01T00:00:00Z", "end": utc(cutoff)}
        state = detail["currentState"]
        assert (state["table"], state["merged"], state["reconcile"], state["error"]) == (
            f"{story.database}.{state_table_name(object_type)}",
            True,
            True,
            None,
        )
        # the moment the reconcile looked: its clock, plus how long it waited for its job
        assert state["confirmAfter"] >= utc(at(4)) and state["exactAsOf"] is None
    (message,) = observer.notifications()
    assert message["MessageAttributes"]["status"]["Value"] == "SUCCEEDED"
    for object_type in TYPES:
        assert f"current state: merged into {story.database}.{state_table_name(object_type)}" in message["Message"]
        assert f"are recorded in {story.database}.{deleted_table_name(object_type)}" in message["Message"]

    # When the next scheduled export moves the watermark past the moment the reconcile looked
    assert tick(stack, day=5)["status"] == "SUCCEEDED"

    # Then the deleted order and the merged-away profile are gone, the main profile is current
    orders_now, profiles_now = story.table("_order"), story.table("_profile")
    assert deleted_order not in orders_now and merged_away not in profiles_now
    assert profiles_now[main] == ms(at(2, 3))
    # And the order updated after the reconcile's cutoff is left alone (absence from the full export proves nothing)
    assert orders_now[late[0]["id"]] == late[0]["lastUpdated"]
    # And each table is exactly what the domain holds
    assert orders_now == story.live("_order")
    assert profiles_now == story.live("_profile")
    # And the confirming export says so, and the table says since when it is exact
    events = {e["detail"]["objectType"]: e["detail"] for e in observer.result_events()}
    assert set(events) == set(TYPES)
    for detail in events.values():
        assert detail["reconcile"] is False
        assert detail["currentState"]["exactAsOf"] == utc(cutoff)
        assert str(detail["currentState"]["confirmedReconcile"]).startswith(f"reconcile {DOMAIN} ")
    (message,) = observer.notifications()
    for object_type in TYPES:
        assert f"{DOMAIN} is exact as of {utc(cutoff)}" in message["Message"]
        assert f"deleted and merged-away objects removed from {state_table_name(object_type)}" in message["Message"]
    glue = stack.client("glue")
    for object_type in TYPES:
        parameters = glue.get_table(DatabaseName=story.database, Name=state_table_name(object_type))["Table"][
            "Parameters"
        ]
        assert parameters[f"exact_as_of.{DOMAIN}"] == utc(cutoff)


def test_a_deleted_id_that_comes_back_with_a_newer_version_is_current_again(story):
    deleted_order = story.picked["deleted_order"]
    # Given the deleted order shows up again, updated after its deletion
    back = {"id": deleted_order, "lastUpdated": ms(at(5, 1)), "ProfileId": story.picked["main"], "OrderId": "back"}
    story.seed("_order", [back])

    # When the next export runs
    assert tick(story.stack, day=6)["status"] == "SUCCEEDED"

    # Then it is current again, at its new version, and the record of its deletion stays
    assert story.table("_order")[deleted_order] == ms(at(5, 1))
    assert [row["id"] for row in story.deleted_rows("_order")] == [deleted_order]
    assert story.table("_order") == story.live("_order")


# ------------------------------------------------------------------------------- a merge that keeps failing
def test_a_merge_that_keeps_failing_alerts_once_and_rebuild_current_catches_the_table_up(story):
    stack, observer = story.stack, story.observer
    story.seed("_order", generate("_order", 5, ms(at(6, 1)), ms(at(6, 5)), 15, profile_ids=[story.picked["main"]]))
    observer.notifications(), observer.result_events()
    # Given every Iceberg commit conflicts, more often than MergeIntoCurrent retries
    stack.account.athena_faults.fail_next_commits(50)
    try:
        # When the next export of orders runs
        result = run(stack, {"scheduledTime": utc(at(7)), "objectTypes": ["_order"]})
    finally:
        stack.account.athena_faults.fail_next_commits(0)

    # Then the export itself succeeded and is indexed, the watermark moved
    last = story.observer.runs(DOMAIN, "_order")[-1]
    assert last["status"] == "SUCCEEDED" and last["records"] == 5 and last["partitions"]
    assert observer.watermark(DOMAIN, "_order") == utc(at(7) - timedelta(minutes=30))
    # But the execution failed, with exactly one message that says NOT merged and how to catch up
    assert result["status"] == "FAILED", result
    (message,) = observer.notifications()
    assert message["MessageAttributes"]["status"]["Value"] == "FAILED"
    text = message["Message"]
    assert f"current state: NOT merged into {story.database}.{state_table_name('_order')}" in text
    assert f"cpexport rebuild-current --domain {DOMAIN} --type _order" in text
    (event,) = observer.result_events()
    assert event["detail"]["status"] == "SUCCEEDED"
    assert event["detail"]["currentState"]["merged"] is False and event["detail"]["currentState"]["error"]
    # And explain tells the same story
    explained = story.cli("explain", result["executionArn"])
    assert f"Current state: NOT merged into {story.database}.order_state" in explained.stdout
    assert f"cpexport rebuild-current --domain {DOMAIN} --type _order" in explained.stdout
    assert "MergeIntoCurrent: States.TaskFailed x" in explained.stdout, explained.stdout
    assert "could not be merged into its current-state table" in explained.stdout
    # And the table lacks the new orders
    expected = story.live("_order")
    assert story.table("_order") != expected

    # When on-call runs the command the message names
    caught_up = story.cli("rebuild-current", "--domain", DOMAIN, "--type", "_order", "--output", "json")

    # Then the table is what the domain holds again
    assert caught_up.exit_code == 0, caught_up.stdout + caught_up.stderr
    (report,) = json.loads(caught_up.stdout)["tables"]
    assert report["objects"] == len(expected) and report["rebuilt"] is False
    assert report["exportsMerged"] == len([r for r in observer.runs(DOMAIN, "_order") if r["status"] == "SUCCEEDED"])
    assert story.table("_order") == expected
    assert story.table("_order") == {v.id: v.last_updated for v in _newest_live(story, "_order")}

    # And running it again changes nothing; a rebuild from scratch gives the same table
    again = story.cli("rebuild-current", "--domain", DOMAIN, "--type", "_order")
    assert again.exit_code == 0, again.stderr
    assert story.table("_order") == expected
    rebuilt = story.cli("rebuild-current", "--domain", DOMAIN, "--type", "_order", "--rebuild")
    assert rebuilt.exit_code == 0, rebuilt.stderr
    assert "after forgetting the domain's rows" in rebuilt.stdout
    assert story.table("_order") == expected
    assert deleted_table_rows_unchanged(story)


def _newest_live(story: Story, object_type: str) -> set[Version]:
    """The newest exported version of each object the domain still holds."""
    live = story.live(object_type)
    return {Version(i, t) for i, t in story.newest_exported(object_type).items() if i in live}


def deleted_table_rows_unchanged(story: Story) -> bool:
    return [row["id"] for row in story.deleted_rows("_order")] == [story.picked["deleted_order"]]


# ------------------------------------------------------------------------------- the limit of absence
@pytest.mark.xfail(
    strict=True,
    reason="open (issue 18): absence from a full export cannot prove a deletion when the object is updated after "
    "the reconcile's cutoff and again inside the lag of the export that confirms it; found by the soak (seed 2026, "
    "day 22). Needs a lookup of each candidate before it is removed.",
)
def test_an_object_updated_after_the_cutoff_and_again_inside_the_confirming_exports_lag_is_never_removed(story):
    stack = story.stack
    # (the last export of profiles was day 6's: the day-7 run exported orders only)
    assert story.observer.watermark(DOMAIN, "_profile") == utc(at(6) - timedelta(minutes=30))
    profile_id, version = min(
        (i, t) for i, t in story.table("_profile").items() if i in story.live("_profile") and t < ms(at(6))
    )
    (profile,) = [o for o in stack.emulator_control.objects(DOMAIN, "_profile") if o["id"] == profile_id]
    # Given a live profile updated after the next reconcile's cutoff (the watermark), before it looks
    story.seed("_profile", [newer_version(profile, at(6, 1))])
    reconcile = stack.wait_execution(
        stack.fire_schedule("ExportStateMachineReconcile", scheduled_time=at(8)), timeout=120
    )
    assert reconcile["status"] == "SUCCEEDED", reconcile
    assert profile_id in {row["id"] for row in story.deleted_rows("_profile")}  # a candidate: absent, older row
    # And updated again inside the lag of the export that confirms the reconcile (days 7 and 8 were not exported)
    story.seed("_profile", [newer_version(profile, at(8, 23.75))])

    # When that export moves the watermark past the moment the reconcile looked
    assert tick(stack, day=9)["status"] == "SUCCEEDED"

    # Then the profile, which lives on, is still in the table
    assert story.table("_profile").get(profile_id) == version
