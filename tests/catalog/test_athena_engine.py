"""The offline Athena executes the pipeline's SQL on moto's Glue and S3, with Iceberg commits as on AWS."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from cpexport.catalog import table_name, view_name
from cpexport.current_state import vacuum_statement

from local.athena.executor import METADATA_LOCATION, AthenaEngine, AthenaQueryError, IcebergFaults
from tests.catalog.conftest import BUCKET, DATABASE, DAY_MS, HOUR_MS, T0, Aws, Domain

CURRENT = f"{DATABASE}.profile_current_state"
CREATE = (
    f"CREATE TABLE IF NOT EXISTS {CURRENT} (domain string, id string, lastupdated bigint, "
    "attributes map<string,string>, address struct<city:string,country:string>, tags array<string>) "
    f"LOCATION 's3://{BUCKET}/current/profile/' TBLPROPERTIES ('table_type'='ICEBERG', 'format'='parquet')"
)


def _merge(window_start: str) -> str:
    """Newest version wins: the source is one export partition's newest row per id."""
    versions = f"{DATABASE}.{table_name('_profile')}"
    return (
        f"MERGE INTO {CURRENT} AS t USING (\n"
        "  SELECT domain, id, lastupdated, attributes FROM (\n"
        "    SELECT domain, id, lastupdated, attributes,\n"
        "      row_number() OVER (PARTITION BY domain, id ORDER BY lastupdated DESC) AS r\n"
        f"    FROM {versions} WHERE domain = 'demo' AND window_start = '{window_start}'\n"
        "  ) AS v WHERE r = 1\n"
        ") AS s ON t.domain = s.domain AND t.id = s.id\n"
        "WHEN MATCHED AND s.lastupdated > t.lastupdated THEN UPDATE SET lastupdated = s.lastupdated, "
        "attributes = s.attributes\n"
        "WHEN NOT MATCHED THEN INSERT (domain, id, lastupdated, attributes) "
        "VALUES (s.domain, s.id, s.lastupdated, s.attributes)"
    )


def _profiles(domain: Domain, at: int, ids: list[str], tier: str) -> None:
    domain.upsert("_profile", [{"id": i, "lastUpdated": at, "attributes": {"tier": tier}} for i in ids])


def _rows(engine: AthenaEngine, sql: str) -> list[dict[str, Any]]:
    result = engine.execute(sql, DATABASE)
    names = [name for name, _ in result.columns]
    return [dict(zip(names, row, strict=True)) for row in result.rows]


def _pointer(aws: Aws) -> str:
    return str(
        aws.glue.get_table(DatabaseName=DATABASE, Name="profile_current_state")["Table"]["Parameters"][
            METADATA_LOCATION
        ]
    )


@pytest.fixture
def engine(aws: Aws) -> AthenaEngine:
    aws.create_catalog(["_profile"])
    engine = AthenaEngine(glue=aws.glue, s3=aws.s3)
    engine.execute(CREATE, DATABASE)
    return engine


def _window(day: int) -> str:
    from cpexport.models import render_utc

    from tests.catalog.conftest import at

    return render_utc(at(T0 + day * DAY_MS))


def _export_day(aws: Aws, domain: Domain, day: int) -> None:
    start = T0 + day * DAY_MS
    aws.exporter.export(domain, "_profile", start, start + DAY_MS, start + DAY_MS + HOUR_MS)


def test_create_makes_an_iceberg_table_in_glue_with_a_metadata_pointer(aws: Aws, engine: AthenaEngine) -> None:
    # Given the table created by Athena DDL (fixture); When Glue is asked for it
    table = aws.glue.get_table(DatabaseName=DATABASE, Name="profile_current_state")["Table"]
    # Then it is an external Iceberg table whose pointer names a metadata object in its folder
    assert table["TableType"] == "EXTERNAL_TABLE" and table["Parameters"]["table_type"] == "ICEBERG"
    assert table["Parameters"][METADATA_LOCATION].startswith(f"s3://{BUCKET}/current/profile/metadata/")
    types = {c["Name"]: c["Type"] for c in table["StorageDescriptor"]["Columns"]}
    assert types["address"] == "struct<city:string,country:string>" and types["attributes"] == "map<string,string>"
    # and creating it again with IF NOT EXISTS changes nothing
    pointer = _pointer(aws)
    engine.execute(CREATE, DATABASE)
    assert _pointer(aws) == pointer


def test_an_iceberg_table_in_a_bucket_root_is_refused(engine: AthenaEngine) -> None:
    with pytest.raises(AthenaQueryError, match="bucket root"):
        engine.execute(CREATE.replace("current_state", "elsewhere").replace("/current/profile/", "/"), DATABASE)


def test_merge_keeps_the_newest_version_and_a_replay_changes_nothing(aws: Aws, engine: AthenaEngine) -> None:
    # Given two exports: p1 and p2 on day 0, then p1 updated on day 1
    domain = Domain("demo")
    _profiles(domain, T0 + HOUR_MS, ["p1", "p2"], "silver")
    _export_day(aws, domain, 0)
    _profiles(domain, T0 + DAY_MS + HOUR_MS, ["p1"], "gold")
    _export_day(aws, domain, 1)
    # When each export is merged, the newer one first
    engine.execute(_merge(_window(1)), DATABASE)
    engine.execute(_merge(_window(0)), DATABASE)
    # Then each profile holds its newest version
    rows = _rows(engine, f"SELECT id, lastupdated, element_at(attributes, 'tier') AS tier FROM {CURRENT} ORDER BY id")
    assert rows == [
        {"id": "p1", "lastupdated": str(T0 + DAY_MS + HOUR_MS), "tier": "gold"},
        {"id": "p2", "lastupdated": str(T0 + HOUR_MS), "tier": "silver"},
    ]
    # and replaying an export changes no row and commits nothing
    pointer = _pointer(aws)
    result = engine.execute(_merge(_window(0)), DATABASE)
    assert result.update_count == 0 and _pointer(aws) == pointer


def test_a_target_row_matched_by_two_source_rows_fails_the_merge(aws: Aws, engine: AthenaEngine) -> None:
    # Given p1 in the table
    engine.execute(f"INSERT INTO {CURRENT} (domain, id, lastupdated) VALUES ('demo', 'p1', 1)", DATABASE)
    # When a source holds p1 twice
    twice = (
        f"MERGE INTO {CURRENT} t USING (SELECT 'demo' AS domain, 'p1' AS id, 2 AS lastupdated "
        "UNION ALL SELECT 'demo', 'p1', 3) s ON t.domain = s.domain AND t.id = s.id "
        "WHEN MATCHED THEN UPDATE SET lastupdated = s.lastupdated"
    )
    # Then the statement fails as Athena's does, and the table is unchanged
    with pytest.raises(AthenaQueryError, match="One MERGE target table row matched more than one source row"):
        engine.execute(twice, DATABASE)
    assert _rows(engine, f"SELECT lastupdated FROM {CURRENT}") == [{"lastupdated": "1"}]


def test_merge_deletes_rows_and_delete_from_removes_them(aws: Aws, engine: AthenaEngine) -> None:
    engine.execute(
        f"INSERT INTO {CURRENT} (domain, id, lastupdated) VALUES ('demo', 'p1', 1), ('demo', 'p2', 1), ('demo', 'p3', 1)",
        DATABASE,
    )
    # When a MERGE deletes p1 and a DELETE removes p2
    engine.execute(
        f"MERGE INTO {CURRENT} t USING (SELECT 'demo' AS domain, 'p1' AS id) s "
        "ON t.domain = s.domain AND t.id = s.id WHEN MATCHED THEN DELETE",
        DATABASE,
    )
    engine.execute(f"DELETE FROM {CURRENT} WHERE id = 'p2'", DATABASE)
    # Then only p3 is left
    assert _rows(engine, f"SELECT id FROM {CURRENT}") == [{"id": "p3"}]


def test_merge_into_a_hive_table_is_refused(aws: Aws, engine: AthenaEngine) -> None:
    versions = f"{DATABASE}.{table_name('_profile')}"
    with pytest.raises(AthenaQueryError, match="MERGE INTO is only supported for Iceberg tables"):
        engine.execute(
            f"MERGE INTO {versions} t USING (SELECT 'x' AS id) s ON t.id = s.id WHEN MATCHED THEN DELETE", DATABASE
        )


def test_a_commit_after_another_writer_committed_fails_with_iceberg_commit_error(
    aws: Aws, engine: AthenaEngine
) -> None:
    # Given a writer that, between its read and its commit, sees another writer commit
    other = AthenaEngine(glue=aws.glue, s3=aws.s3)

    def concurrent_commit(table: str) -> None:
        engine.before_commit = None
        other.execute(f"INSERT INTO {CURRENT} (domain, id, lastupdated) VALUES ('demo', 'other', 1)", DATABASE)

    engine.before_commit = concurrent_commit
    # When it commits
    with pytest.raises(AthenaQueryError) as failed:
        engine.execute(f"INSERT INTO {CURRENT} (domain, id, lastupdated) VALUES ('demo', 'mine', 1)", DATABASE)
    # Then it fails with ICEBERG_COMMIT_ERROR and only the other writer's row is there
    assert failed.value.error_type == "ICEBERG_COMMIT_ERROR"
    assert _rows(engine, f"SELECT id FROM {CURRENT}") == [{"id": "other"}]


def test_the_commit_fault_knob_fails_the_next_commits_then_lets_them_through(aws: Aws) -> None:
    aws.create_catalog(["_profile"])
    faults = IcebergFaults()
    engine = AthenaEngine(glue=aws.glue, s3=aws.s3, faults=faults)
    engine.execute(CREATE, DATABASE)
    faults.fail_next_commits(2)
    insert = f"INSERT INTO {CURRENT} (domain, id, lastupdated) VALUES ('demo', 'p1', 1)"
    for _ in range(2):
        with pytest.raises(AthenaQueryError, match="ICEBERG_COMMIT_ERROR"):
            engine.execute(insert, DATABASE)
    engine.execute(insert, DATABASE)
    assert _rows(engine, f"SELECT count(*) AS n FROM {CURRENT}") == [{"n": "1"}]


def test_optimize_compacts_into_one_file_and_keeps_the_rows_and_vacuum_removes_the_old_files(
    aws: Aws, engine: AthenaEngine
) -> None:
    # Given three inserts: three data files
    for i in range(3):
        engine.execute(f"INSERT INTO {CURRENT} (domain, id, lastupdated) VALUES ('demo', 'p{i}', {i})", DATABASE)
    # When OPTIMIZE runs
    engine.execute(f"OPTIMIZE {CURRENT} REWRITE DATA USING BIN_PACK WHERE domain = 'demo'", DATABASE)
    # Then the rows are kept, in one file
    assert _rows(engine, f"SELECT id FROM {CURRENT} ORDER BY id") == [{"id": "p0"}, {"id": "p1"}, {"id": "p2"}]
    metadata = json.loads(aws.s3.get_object(Bucket=BUCKET, Key=_pointer(aws).split(f"{BUCKET}/")[1])["Body"].read())
    current = next(s for s in metadata["snapshots"] if s["snapshot-id"] == metadata["current-snapshot-id"])
    assert len(current["data-files"]) == 1
    # When snapshots may be expired at once and VACUUM runs (the table name needs no backticks here)
    engine.execute(f"ALTER TABLE {CURRENT} SET TBLPROPERTIES ('vacuum_max_snapshot_age_seconds'='0')", DATABASE)
    engine.execute(f"VACUUM {CURRENT}", DATABASE)
    # Then only the current data file is left in S3, and the property reads back through Glue
    keys = [o["Key"] for o in aws.s3.list_objects_v2(Bucket=BUCKET, Prefix="current/profile/data/")["Contents"]]
    assert [f"s3://{BUCKET}/{k}" for k in keys] == current["data-files"]
    parameters = aws.glue.get_table(DatabaseName=DATABASE, Name="profile_current_state")["Table"]["Parameters"]
    assert parameters["vacuum_max_snapshot_age_seconds"] == "0"
    assert _rows(engine, f"SELECT count(*) AS n FROM {CURRENT}") == [{"n": "3"}]


def test_vacuum_answers_more_runs_needed_as_often_as_the_knob_says(aws: Aws) -> None:
    aws.create_catalog(["_profile"])
    faults = IcebergFaults()
    engine = AthenaEngine(glue=aws.glue, s3=aws.s3, faults=faults)
    engine.execute(CREATE.replace("profile_current_state", "_profile_current"), DATABASE)
    faults.need_more_vacuum_runs(1)
    with pytest.raises(AthenaQueryError) as first:
        engine.execute(f"VACUUM {DATABASE}.`_profile_current`", DATABASE)
    assert first.value.error_type == "ICEBERG_VACUUM_MORE_RUNS_NEEDED"
    engine.execute(f"VACUUM {DATABASE}.`_profile_current`", DATABASE)
    # and as the pipeline writes it (database and table in backticks)
    engine.execute(vacuum_statement(DATABASE, "_profile_current"), DATABASE)
    # and a name beginning with `_` without backticks is refused, as Athena's parser does
    with pytest.raises(AthenaQueryError, match="backticks"):
        engine.execute(f"VACUUM {DATABASE}._profile_current", DATABASE)


def test_a_merge_from_one_export_reads_only_that_partitions_files(aws: Aws, engine: AthenaEngine) -> None:
    # Given three days of exports
    domain = Domain("demo")
    exports = []
    for day in range(3):
        _profiles(domain, T0 + day * DAY_MS + HOUR_MS, [f"p{day}"], "silver")
        start = T0 + day * DAY_MS
        exports.append(aws.exporter.export(domain, "_profile", start, start + DAY_MS, start + DAY_MS + HOUR_MS))
    # When the second day's export is merged
    result = engine.execute(_merge(_window(1)), DATABASE)
    # Then the only export files read are that export's
    export_files = [uri for uri in result.files_read if uri.startswith(f"s3://{BUCKET}/exports/")]
    assert export_files == [f"s3://{BUCKET}/{key}" for key in exports[1].keys]
    assert _rows(engine, f"SELECT id FROM {CURRENT}") == [{"id": "p1"}]


def test_bytes_scanned_is_the_size_of_every_s3_object_the_statement_read(aws: Aws, engine: AthenaEngine) -> None:
    domain = Domain("demo")
    for day in range(2):
        _profiles(domain, T0 + day * DAY_MS + HOUR_MS, [f"p{day}"], "gold")
        _export_day(aws, domain, day)
    engine.execute(_merge(_window(0)), DATABASE)
    # When the state table and the exports' view are read
    for sql in (f"SELECT count(*) FROM {CURRENT}", f"SELECT count(*) FROM {DATABASE}.{view_name('_profile')}"):
        result = engine.execute(sql, DATABASE)
        # Then the bytes scanned are the whole sizes of the objects read (metadata, Parquet, JSON Lines)
        sizes = []
        for uri in result.files_read:
            bucket, key = uri[len("s3://") :].split("/", 1)
            sizes.append(aws.s3.head_object(Bucket=bucket, Key=key)["ContentLength"])
        assert result.files_read and result.bytes_scanned == sum(sizes)


def test_a_select_over_the_hive_table_and_its_view_reads_every_partition(aws: Aws, engine: AthenaEngine) -> None:
    domain = Domain("demo")
    for day in range(2):
        _profiles(domain, T0 + day * DAY_MS + HOUR_MS, [f"p{day}"], "gold")
        _export_day(aws, domain, day)
    # When the type's current-state view (Athena SQL stored in Glue) is queried
    views = [
        t["Name"] for t in aws.glue.get_tables(DatabaseName=DATABASE)["TableList"] if t["TableType"] == "VIRTUAL_VIEW"
    ]
    view = next(v for v in views if "profile" in v and "current" in v)
    # Then it reads both exports' partitions
    assert _rows(engine, f"SELECT id FROM {view} ORDER BY id") == [{"id": "p0"}, {"id": "p1"}]


def test_a_role_without_s3_get_object_gets_permission_denied(aws: Aws, engine: AthenaEngine) -> None:
    # Given a caller S3 refuses GetObject (in-process moto has no IAM: its client answers AccessDenied;
    # tests/harness/test_harness_athena.py does it with a real role)
    domain = Domain("demo")
    _profiles(domain, T0 + HOUR_MS, ["p1"], "gold")
    _export_day(aws, domain, 0)
    s3 = boto3.client("s3", region_name="us-east-1")

    def refuse(params: Any, **_: Any) -> None:
        from botocore.exceptions import ClientError

        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "GetObject")

    s3.meta.events.register("before-call.s3.GetObject", refuse)
    denied = AthenaEngine(glue=aws.glue, s3=s3)
    # When it merges an export
    with pytest.raises(AthenaQueryError) as failed:
        denied.execute(_merge(_window(0)), DATABASE)
    # Then the query fails with Athena's permission error
    assert failed.value.error_type == "PERMISSION_DENIED" and "Permission denied on S3 path" in failed.value.reason
