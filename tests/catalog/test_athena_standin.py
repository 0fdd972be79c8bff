"""The stand-in reads lines as Athena's SerDes do, speaks Athena's functions, and refuses stale views."""

from __future__ import annotations

import json

import duckdb
import pytest
from cpexport.catalog import (
    JSON_SERDE,
    RAW_LINE_SERDE,
    STANDARD_COLUMNS,
    Column,
    parse_hive_type,
    view_definition,
    view_input,
)

from local.athena import AthenaStandIn, SerdeError, StaleView
from local.athena.dialect import ATHENA_MACROS, SESSION_SETTINGS
from local.athena.serde import decode, split_lines
from tests.catalog.conftest import DATABASE, DAY_MS, T0, Domain

PROFILE = [(c.name, parse_hive_type(c.type)) for c in STANDARD_COLUMNS["_profile"]]


def test_keys_and_struct_fields_match_whatever_their_case_but_map_keys_keep_theirs():
    row = decode(
        JSON_SERDE,
        json.dumps(
            {"ID": "p1", "LastUpdated": 5, "Address": {"CITY": "Austin"}, "Attributes": {"loyaltyTier": "gold"}}
        ),
        PROFILE,
    )
    assert (row["id"], row["lastupdated"], row["address"]["city"]) == ("p1", 5, "Austin")
    assert row["attributes"] == {"loyaltyTier": "gold"}


def test_lines_athena_cannot_parse_are_rows_of_nulls():
    for line in ("", "not json", '{"id": "p1", ', '"just a string"'):
        assert set(decode(JSON_SERDE, line, PROFILE).values()) == {None}, line


def test_text_columns_take_any_json_value_as_its_canonical_text_and_out_of_range_numbers_are_null():
    row = decode(JSON_SERDE, '{"id": 12, "firstname": {"a": [1, 2.50]}, "lastupdated": 1e40}', PROFILE)
    assert row["id"] == "12" and row["firstname"] == '{"a":[1,2.50]}' and row["lastupdated"] is None


def test_an_object_where_a_number_is_expected_fails_the_query_as_on_athena():
    with pytest.raises(SerdeError):
        decode(JSON_SERDE, '{"lastUpdated": {"ms": 1}}', PROFILE)


def test_the_raw_line_serde_keeps_every_line_whole():
    body = '{"id": "a"}\r\n\n{"id":\t"b", "x": "\\u0001"}\n'
    lines = split_lines(body)
    assert lines == ['{"id": "a"}', "", '{"id":\t"b", "x": "\\u0001"}']
    assert decode(RAW_LINE_SERDE, lines[2], [("line", ("string",))]) == {"line": lines[2]}


@pytest.fixture
def duck():
    connection = duckdb.connect()
    for statement in (*SESSION_SETTINGS, *ATHENA_MACROS):
        connection.execute(statement)
    yield connection
    connection.close()


def test_athenas_functions_mean_what_athena_documents(duck):
    ((day, at_midnight),) = duck.execute(
        "SELECT CAST(from_unixtime(1793577599999 / 1000) AS date), CAST(from_unixtime(1793577600) AS date)"
    ).fetchall()
    assert (str(day), str(at_midnight)) == ("2026-11-01", "2026-11-02")
    assert duck.execute(
        'SELECT json_extract_scalar(\'{"a": {"b": 1}, "c": 2}\', \'$.a\'), '
        "json_extract_scalar('{\"a\": {\"b\": 1}, \"c\": 2}', '$.c'), json_extract_scalar('broken', '$.c')"
    ).fetchall() == [(None, "2", None)]
    assert duck.execute(
        "SELECT element_at(MAP {'loyaltyTier': 'gold'}, 'loyaltyTier'), element_at(MAP {'a': 'b'}, 'zz')"
    ).fetchall() == [("gold", None)]


def test_a_view_whose_sql_no_longer_gives_its_declared_columns_is_refused(aws):
    aws.create_catalog(["_case"])
    shop = Domain("shop")
    aws.exporter.export(shop, "_case", T0, T0 + DAY_MS, T0 + 2 * DAY_MS)
    view = aws.catalog.table(DATABASE, "current_by_type")
    columns = view["StorageDescriptor"]["Columns"]
    sql = view_definition(view["ViewOriginalText"])["originalSql"]
    declared = [Column(c["Name"], c["Type"]) for c in columns] + [Column("extra", "string")]
    aws.glue.update_table(
        DatabaseName=DATABASE, TableInput=view_input(DATABASE, "current_by_type", sql, declared, "stale")
    )
    with pytest.raises(StaleView, match="current_by_type"):
        AthenaStandIn(DATABASE, glue=aws.glue, s3=aws.s3).load()
