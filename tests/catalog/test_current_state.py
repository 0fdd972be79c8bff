"""The current-state views and the saved queries, run by DuckDB over what the exports wrote."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime

from cpexport.catalog import CURRENT_COUNT_BY_OBJECT_TYPE, OBJECTS_CHANGED_PER_DAY, view_name

from local.athena import AthenaStandIn, current_state, current_versions
from local.emulator.synthetic import generate, mutate
from tests.catalog.conftest import ACCOUNT, DATABASE, DAY_MS, HOUR_MS, T0, Domain

LAG_MS = 30 * 60_000


def run_scheduled_day(aws, domain, object_type, watermark, day_end, *, fail=False):
    """One scheduled export of [watermark, day_end), requested after the lag; the next watermark."""
    aws.exporter.export(domain, object_type, watermark, day_end, day_end + LAG_MS + HOUR_MS, fail=fail)
    return watermark if fail else day_end


def test_the_current_view_is_the_newest_version_of_every_object_after_a_messy_history(aws):
    aws.create_catalog(["_profile", "_order"])
    shop, outlet = Domain("shop"), Domain("outlet")
    profiles = generate("_profile", 60, T0 - DAY_MS, T0, seed=11)
    shop.upsert("_profile", profiles)
    outlet.upsert("_profile", generate("_profile", 15, T0 - DAY_MS, T0, seed=12))
    shop.upsert("_order", generate("_order", 25, T0 - DAY_MS, T0, seed=13))
    watermarks = {(d.name, t): T0 - DAY_MS for d in (shop, outlet) for t in ("_profile", "_order")}

    def day(number, *, failing=()):
        end = T0 + number * DAY_MS
        for domain in (shop, outlet):
            for object_type in ("_profile", "_order"):
                key = (domain.name, object_type)
                watermarks[key] = run_scheduled_day(aws, domain, object_type, watermarks[key], end, fail=key in failing)

    day(0)
    # The same handful of profiles changes again and again, several times within one day too.
    hot = profiles[:8]
    for round_number in range(6):
        hot = mutate(hot, 8, T0 + round_number * 3 * HOUR_MS, seed=round_number, spread_ms=HOUR_MS)
        shop.upsert("_profile", hot)
    shop.upsert("_order", mutate(list(shop.objects["_order"].values()), 10, T0 + 2 * HOUR_MS, seed=21))
    # Day 1 of shop's profiles fails half-way: its partial files stay, the watermark does not move.
    day(1, failing={("shop", "_profile")})
    shop.upsert("_profile", mutate(list(shop.objects["_profile"].values()), 20, T0 + DAY_MS + HOUR_MS, seed=31))
    outlet.upsert("_profile", mutate(list(outlet.objects["_profile"].values()), 5, T0 + DAY_MS, seed=32))
    day(2)  # shop's profiles re-run from the old watermark: a two-day window
    # A backfill overlapping the scheduled windows exports versions the scheduled ones already hold.
    aws.exporter.export(shop, "_profile", T0 - DAY_MS, T0 + 2 * DAY_MS, T0 + 3 * DAY_MS, backfill=True)
    aws.exporter.export(shop, "_order", T0 - DAY_MS, T0 + DAY_MS, T0 + 3 * DAY_MS, backfill=True)

    for object_type in ("_profile", "_order"):
        expected = shop.current(object_type) | outlet.current(object_type)
        assert current_versions(DATABASE, object_type, glue=aws.glue, s3=aws.s3) == expected, object_type

    rows = {row["id"]: row for row in current_state(DATABASE, "_profile", glue=aws.glue, s3=aws.s3)}
    for object_id, obj in shop.objects["_profile"].items():
        row = rows[object_id]
        assert row["domain"] == "shop"
        assert row["firstname"] == obj["FirstName"] and row["phonenumber"] == obj["PhoneNumber"]
        assert row["address"]["city"] == obj["Address"]["City"]
        assert row["attributes"] == obj["Attributes"]  # map keys keep their case: attributes['loyaltyTier']


def test_a_tie_goes_to_the_export_requested_last(aws):
    aws.create_catalog(["_case"])
    shop = Domain("shop")
    case = generate("_case", 1, T0, T0 + HOUR_MS, seed=5)[0]
    shop.upsert("_case", [case])
    aws.exporter.export(shop, "_case", T0, T0 + DAY_MS, T0 + DAY_MS + HOUR_MS)
    aws.exporter.export(shop, "_case", T0 - DAY_MS, T0 + DAY_MS, T0 + 2 * DAY_MS, backfill=True)

    (row,) = current_state(DATABASE, "_case", glue=aws.glue, s3=aws.s3)

    assert row["id"] == case["id"] and row["lastupdated"] == case["lastUpdated"]
    assert (row["backfill"], row["requested_at"]) == ("true", "2026-11-03T00:00:00Z")


def test_the_saved_queries_count_what_was_exported(aws):
    aws.create_catalog(["_profile", "_asset"])
    shop = Domain("shop")
    profiles = generate("_profile", 40, T0, T0 + 2 * DAY_MS, seed=1)
    shop.upsert("_profile", profiles)
    shop.upsert("_asset", generate("_asset", 12, T0, T0 + DAY_MS, seed=2))
    aws.exporter.export(shop, "_profile", T0, T0 + DAY_MS, T0 + DAY_MS + HOUR_MS)
    aws.exporter.export(shop, "_asset", T0, T0 + DAY_MS, T0 + DAY_MS + HOUR_MS)
    # 9 profiles change on day 2 (before day 2's export), some of them already exported on day 1.
    shop.upsert("_profile", mutate(profiles, 9, T0 + DAY_MS + HOUR_MS, seed=3))
    aws.exporter.export(shop, "_profile", T0 + DAY_MS, T0 + 2 * DAY_MS, T0 + 2 * DAY_MS + HOUR_MS)
    exported = [json.loads(line) for line in exported_lines(aws)]
    per_day = Counter()
    for object_type, ids_by_day in distinct_ids_per_day(exported).items():
        for day, ids in ids_by_day.items():
            per_day[(object_type, day)] = len(ids)

    with AthenaStandIn(DATABASE, glue=aws.glue, s3=aws.s3) as athena:
        changed = athena.query(OBJECTS_CHANGED_PER_DAY)
        counts = athena.query(CURRENT_COUNT_BY_OBJECT_TYPE)

    assert {(r["object_type"], r["day"].isoformat()): r["objects_changed"] for r in changed} == per_day
    assert sum(per_day.values()) > 40 + 12  # the day-1 versions of changed profiles count on their day too
    assert counts == [
        {"object_type": "_asset", "domain": "shop", "objects": 12},
        {"object_type": "_profile", "domain": "shop", "objects": 40},
    ]


def exported_lines(aws):
    # The exports' folder only: the current-state tables' Parquet files lie beside it, under exports/current-state/.
    for page in aws.s3.get_paginator("list_objects_v2").paginate(Bucket="exports-bucket", Prefix=f"exports/{ACCOUNT}/"):
        for item in page.get("Contents", []):
            if not item["Key"].endswith(".manifest.json"):
                body = aws.s3.get_object(Bucket="exports-bucket", Key=item["Key"])["Body"].read().decode()
                yield from body.splitlines()


def distinct_ids_per_day(objects):
    found: dict[str, dict[str, set[str]]] = {}
    for obj in objects:
        object_type = "_profile" if "ProfileId" in obj and obj["ProfileId"] == obj["id"] else "_asset"
        day = datetime.fromtimestamp(obj["lastUpdated"] / 1000, tz=UTC).date().isoformat()
        found.setdefault(object_type, {}).setdefault(day, set()).add(obj["id"])
    return found


def test_a_custom_object_type_of_unknown_schema_still_answers_queries(aws):
    aws.create_catalog(["Loyalty-Card"])
    shop = Domain("shop")
    cards = [
        {"id": f"card-{n}", "lastUpdated": T0 + n * 1000, "Tier": "gold" if n % 3 else "silver", "Points": n * 10}
        for n in range(9)
    ]
    shop.upsert("Loyalty-Card", cards)
    aws.exporter.export(shop, "Loyalty-Card", T0, T0 + DAY_MS, T0 + DAY_MS + HOUR_MS)
    changed = [dict(card, Tier="platinum", lastUpdated=T0 + DAY_MS + 5) for card in cards[:2]]
    shop.upsert("Loyalty-Card", changed)
    lines = [json.dumps(card) for card in changed] + ["", "not json at all", '{"Tier": "no id"}']
    aws.exporter.export(shop, "Loyalty-Card", T0 + DAY_MS, T0 + 2 * DAY_MS, T0 + 2 * DAY_MS + HOUR_MS, lines=lines)

    with AthenaStandIn(DATABASE, glue=aws.glue, s3=aws.s3) as athena:
        tiers = athena.query(
            f"SELECT json_extract_scalar(object, '$.Tier') AS tier, count(*) AS cards, "
            f"sum(CAST(json_extract_scalar(object, '$.Points') AS bigint)) AS points "
            f"FROM {view_name('Loyalty-Card')} GROUP BY 1 ORDER BY 1"
        )
        lines_read = athena.query("SELECT count(*) AS n FROM custom__loyalty_0_card_versions")

    expected: dict[str, dict[str, int]] = {}
    for card in shop.objects["Loyalty-Card"].values():
        tier = expected.setdefault(card["Tier"], {"cards": 0, "points": 0})
        tier["cards"] += 1
        tier["points"] += card["Points"]
    assert tiers == [{"tier": tier, **expected[tier]} for tier in sorted(expected)]
    assert [t["tier"] for t in tiers] == ["gold", "platinum", "silver"]
    # Every line is a row of the table (malformed ones too); the view keeps only objects with a key.
    assert lines_read == [{"n": 9 + len(lines)}]
    assert current_versions(DATABASE, "Loyalty-Card", glue=aws.glue, s3=aws.s3) == shop.current("Loyalty-Card")


def test_the_demo_prints_the_answers_of_the_saved_queries_and_profiles_by_tier(aws):
    from local.athena.report import print_answers

    aws.create_catalog(["_profile"])
    shop = Domain("shop")
    profiles = generate("_profile", 30, T0, T0 + DAY_MS, seed=8)
    shop.upsert("_profile", profiles)
    aws.exporter.export(shop, "_profile", T0, T0 + DAY_MS, T0 + DAY_MS + HOUR_MS)
    printed: list[str] = []

    print_answers(DATABASE, glue=aws.glue, s3=aws.s3, out=printed.append)

    text = "\n".join(printed)
    assert "Current count by object type" in text
    assert any(line.split() == ["_profile", "shop", "30"] for line in printed)
    tiers = Counter(p["Attributes"]["loyaltyTier"] for p in profiles)
    for tier, count in tiers.items():
        assert any(line.split() == [tier, str(count)] for line in printed), tier
