"""Partitions: one per indexed export, at the folder holding exactly its files, registered idempotently."""

from __future__ import annotations

import json

import pytest
from cpexport.catalog import export_partitions, partition_input, table_name
from cpexport.errors import CatalogConflict, ConfigurationError

from local.athena import AthenaStandIn, catalog_partitions
from local.emulator.synthetic import generate, mutate
from tests.catalog.conftest import BUCKET, DATABASE, DAY_MS, T0, Domain


def manifests_and_partitions(aws):
    partitions = catalog_partitions(DATABASE, glue=aws.glue, s3=aws.s3)
    manifests = {}
    for key in aws.exporter.manifests:
        manifests[key] = json.loads(aws.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    return manifests, partitions


def test_every_manifest_has_one_partition_whose_folder_holds_exactly_its_files(aws):
    aws.create_catalog(["_profile", "_order"])
    domain = Domain("shop")
    domain.upsert("_profile", generate("_profile", 40, T0, T0 + 4 * DAY_MS, seed=1))
    domain.upsert("_order", generate("_order", 12, T0, T0 + 3 * DAY_MS, seed=2))
    for day in range(3):
        for object_type in ("_profile", "_order"):
            start = T0 + day * DAY_MS
            aws.exporter.export(domain, object_type, start, start + DAY_MS, start + DAY_MS + 3_600_000)
    failed = aws.exporter.export(domain, "_profile", T0 + 3 * DAY_MS, T0 + 4 * DAY_MS, T0 + 5 * DAY_MS, fail=True)

    manifests, partitions = manifests_and_partitions(aws)

    assert len(manifests) == 6 and len(partitions) == 6
    by_location = {p.location: p for p in partitions}
    for key, manifest in manifests.items():
        folder = key.removesuffix(f"{manifest['objectType']}.manifest.json") + f"{manifest['objectType']}/"
        partition = by_location[f"s3://{BUCKET}/{folder}"]
        assert partition.table == table_name(manifest["objectType"])
        assert partition.keys == sorted(f["key"] for f in manifest["files"])
        assert partition.values == [
            "shop",
            manifest["window"]["start"],
            manifest["window"]["end"],
            manifest["requestedAt"],
            "false",
        ]
    # The failed job's partial files are in no partition.
    assert failed.keys and not {k for p in partitions for k in p.keys} & set(failed.keys)


def test_registering_an_export_twice_adds_nothing(aws):
    aws.create_catalog(["_profile"])
    domain = Domain("shop")
    domain.upsert("_profile", generate("_profile", 10, T0, T0 + DAY_MS, seed=1))
    export = aws.exporter.export(domain, "_profile", T0, T0 + DAY_MS, T0 + DAY_MS + 60_000)
    manifest = json.loads(aws.s3.get_object(Bucket=BUCKET, Key=export.manifest_key)["Body"].read())

    again = aws.catalog.register_export(DATABASE, BUCKET, export.manifest_key, manifest)

    assert len(list(aws.catalog.partitions(DATABASE, "profile_versions"))) == 1
    assert [p.location for p in again] == [f"s3://{BUCKET}/{export.keys[0].rsplit('/', 1)[0]}/"]
    with AthenaStandIn(DATABASE, glue=aws.glue, s3=aws.s3) as athena:
        assert athena.query("SELECT count(*) AS n FROM profile_versions") == [{"n": 10}]


def test_the_same_values_at_another_location_are_a_conflict_and_change_nothing(aws):
    aws.create_catalog(["_profile"])
    domain = Domain("shop")
    domain.upsert("_profile", generate("_profile", 3, T0, T0 + DAY_MS, seed=1))
    export = aws.exporter.export(domain, "_profile", T0, T0 + DAY_MS, T0 + DAY_MS + 60_000)
    (existing,) = aws.catalog.partitions(DATABASE, "profile_versions")
    table = aws.catalog.table(DATABASE, "profile_versions")
    elsewhere = partition_input(table, existing["Values"], f"s3://{BUCKET}/somewhere/else/")

    with pytest.raises(CatalogConflict, match="already points at"):
        aws.catalog.register_partition(DATABASE, "profile_versions", elsewhere)

    (after,) = aws.catalog.partitions(DATABASE, "profile_versions")
    assert after["StorageDescriptor"]["Location"] == existing["StorageDescriptor"]["Location"]
    assert export.keys[0].startswith(after["StorageDescriptor"]["Location"].removeprefix(f"s3://{BUCKET}/"))


def test_partitions_need_the_object_types_table(aws):
    aws.create_catalog(["_profile"])
    domain = Domain("shop")
    domain.upsert("_order", generate("_order", 3, T0, T0 + DAY_MS, seed=1))
    with pytest.raises(ConfigurationError, match="order_versions does not exist"):
        aws.exporter.export(domain, "_order", T0, T0 + DAY_MS, T0 + DAY_MS + 60_000)


def test_an_empty_export_still_gets_its_partition_and_answers_with_no_rows(aws):
    aws.create_catalog(["_case"])
    export = aws.exporter.export(Domain("shop"), "_case", T0, T0 + DAY_MS, T0 + DAY_MS + 60_000)
    assert export.keys == []
    (partition,) = catalog_partitions(DATABASE, glue=aws.glue, s3=aws.s3)
    assert partition.keys == []
    assert partition.location.endswith("/shop/20261102T000100/20261101T000000-20261102T000000/_case/")
    with AthenaStandIn(DATABASE, glue=aws.glue, s3=aws.s3) as athena:
        assert athena.query("SELECT count(*) AS n FROM case_current") == [{"n": 0}]


def test_a_job_whose_files_landed_in_two_request_folders_gets_a_partition_per_folder():
    root = "exports/123456789012/shop/"
    manifest = {
        "domainName": "shop",
        "objectType": "_order",
        "window": {"start": "2026-11-01T00:00:00Z", "end": "2026-11-02T00:00:00Z"},
        "requestStamps": ["20261102T010000", "20261102T010500"],
        "backfill": True,
        "files": [
            {"key": f"{root}20261102T010000/20261101T000000-20261102T000000/_order/a"},
            {"key": f"{root}20261102T010500/20261101T000000-20261102T000000/_order/b"},
        ],
    }
    key = f"{root}20261102T010000/20261101T000000-20261102T000000/_order.manifest.json"

    first, second = export_partitions(BUCKET, key, manifest)

    assert first.files == [manifest["files"][0]["key"]] and second.files == [manifest["files"][1]["key"]]
    assert first.values[3] == "2026-11-02T01:00:00Z" and second.values[3] == "2026-11-02T01:05:00Z"
    assert first.values[4] == second.values[4] == "true"
    assert first.name == (
        "domain=shop/window_start=2026-11-01T00:00:00Z/window_end=2026-11-02T00:00:00Z/"
        "requested_at=2026-11-02T01:00:00Z/backfill=true"
    )


def test_a_manifest_naming_a_file_outside_its_folders_is_refused():
    root = "exports/123456789012/shop/"
    key = f"{root}20261102T010000/20261101T000000-20261102T000000/_order.manifest.json"
    manifest = {
        "domainName": "shop",
        "objectType": "_order",
        "window": {"start": "2026-11-01T00:00:00Z", "end": "2026-11-02T00:00:00Z"},
        "requestStamps": ["20261102T010000"],
        "files": [{"key": f"{root}20261102T010000/20261101T000000-20261102T000000/_order/deeper/x"}],
    }
    with pytest.raises(ValueError, match="lies in none of the export's folders"):
        export_partitions(BUCKET, key, manifest)


def test_a_re_run_window_and_a_backfill_each_get_their_own_partition(aws):
    aws.create_catalog(["_asset"])
    domain = Domain("shop")
    assets = generate("_asset", 20, T0, T0 + DAY_MS, seed=3)
    domain.upsert("_asset", assets)
    aws.exporter.export(domain, "_asset", T0, T0 + DAY_MS, T0 + DAY_MS + 60_000, fail=True)
    domain.upsert("_asset", mutate(assets, 5, T0 + DAY_MS + 1000, seed=4))
    aws.exporter.export(domain, "_asset", T0, T0 + 2 * DAY_MS, T0 + 2 * DAY_MS + 60_000)  # the re-run, wider
    aws.exporter.export(domain, "_asset", T0 - DAY_MS, T0 + DAY_MS, T0 + 3 * DAY_MS, backfill=True)

    partitions = catalog_partitions(DATABASE, glue=aws.glue, s3=aws.s3)

    assert sorted((p.values[1], p.values[2], p.values[4]) for p in partitions) == [
        ("2026-10-31T00:00:00Z", "2026-11-02T00:00:00Z", "true"),
        ("2026-11-01T00:00:00Z", "2026-11-03T00:00:00Z", "false"),
    ]
