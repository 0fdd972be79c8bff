"""The documented S3 layout."""

from datetime import UTC, datetime

from cpexport.models import ExportWindow
from cpexport.paths import (
    domain_root,
    export_folder,
    manifest_key,
    parse_export_key,
    parse_stamp,
    render_stamp,
    window_folder,
)
from hypothesis import given
from hypothesis import strategies as st


def test_parses_the_documented_example_key():
    key = (
        "folder/123456789012/my-domain-pdx/20240607T175023/20240101T235959-20240430T235959/_profile/"
        "123456789012-1234-1234-123456789012"
    )
    parsed = parse_export_key(key)
    assert parsed is not None
    assert parsed.prefix == "folder"
    assert parsed.domain_name == "my-domain-pdx"
    assert parsed.requested_at == datetime(2024, 6, 7, 17, 50, 23, tzinfo=UTC)
    assert parsed.window_start == datetime(2024, 1, 1, 23, 59, 59, tzinfo=UTC)
    assert parsed.window_end == datetime(2024, 4, 30, 23, 59, 59, tzinfo=UTC)
    assert parsed.object_type == "_profile"


def test_a_key_without_prefix_parses_and_a_manifest_is_not_an_export_file():
    window = ExportWindow(start=datetime(2026, 1, 1, tzinfo=UTC), end=datetime(2026, 1, 2, tzinfo=UTC))
    root = domain_root("", "123456789012", "d")
    assert root == "123456789012/d/"
    folder = export_folder(root, "20260102T000500", window, "_order")
    assert parse_export_key(folder + "abc") is not None
    assert parse_export_key(manifest_key(root, "20260102T000500", window, "_order")) is None
    assert not manifest_key(root, "20260102T000500", window, "_order").startswith(folder)


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)))
def test_stamps_round_trip_to_the_second(value):
    value = value.replace(microsecond=0, tzinfo=UTC)
    assert parse_stamp(render_stamp(value)) == value
    assert len(render_stamp(value)) == 15


def test_window_folder_renders_utc():
    window = ExportWindow(start=datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC), end=datetime(2026, 3, 5, tzinfo=UTC))
    assert window_folder(window) == "20260304T050607-20260305T000000"
