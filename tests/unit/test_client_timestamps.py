"""The pipeline's clients read response timestamps without dateutil, and get botocore's very datetimes.

`cpexport.clients.timestamps.fast_timestamp_parser` reads a UTC ISO 8601 string ("...Z", what S3's
listings hold) with `datetime.fromisoformat`; anything else goes to botocore's parser. Whatever the
string and the process's local zone, the answer must be the one botocore gives: same instant, same
zone class, same rendering.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from botocore.parsers import DEFAULT_TIMESTAMP_PARSER
from cpexport.clients import client, reset_clients
from cpexport.clients.timestamps import fast_timestamp_parser
from hypothesis import given

from tests.timestamp_cases import moments, renderings

FAST = fast_timestamp_parser(DEFAULT_TIMESTAMP_PARSER)


def _same(text: object) -> None:
    fast, slow = FAST(text), DEFAULT_TIMESTAMP_PARSER(text)
    assert fast == slow
    assert type(fast.tzinfo) is type(slow.tzinfo)
    assert fast.isoformat() == slow.isoformat()


@given(moments)
def test_every_rendering_parses_as_botocore_parses_it(moment: datetime) -> None:
    for text in renderings(moment):
        _same(text)


@pytest.mark.parametrize(
    "value", ["1700000000", "2026-11-29", "Sun, 29 Nov 2026 04:37:12 GMT", 1700000000, "2026-11-29T04:37:12+02:00"]
)
def test_other_forms_go_to_botocores_parser(value: object) -> None:
    _same(value)


@pytest.mark.parametrize("local_zone", ["UTC", "Europe/Berlin", "America/St_Johns"])
def test_a_z_time_gets_botocores_zone_whatever_the_local_zone(local_zone: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", local_zone)
    time.tzset()
    try:
        fast = fast_timestamp_parser(DEFAULT_TIMESTAMP_PARSER)
        for text in ("2026-07-01T12:00:00.000Z", "2026-01-01T00:00:00Z", "1999-12-31T23:59:59.999999Z"):
            assert fast(text) == DEFAULT_TIMESTAMP_PARSER(text)
            assert type(fast(text).tzinfo) is type(DEFAULT_TIMESTAMP_PARSER(text).tzinfo)
            assert fast(text).isoformat() == DEFAULT_TIMESTAMP_PARSER(text).isoformat()
    finally:
        monkeypatch.undo()
        time.tzset()


def test_the_pipelines_clients_parse_with_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    reset_clients()
    try:
        s3 = client("s3")
        parser = s3._endpoint._response_parser_factory.create_parser("rest-xml")
        assert parser._timestamp_parser.__wrapped__ is DEFAULT_TIMESTAMP_PARSER
        when = parser._timestamp_parser("2026-11-29T04:37:12.000Z")
        assert when == datetime(2026, 11, 29, 4, 37, 12, tzinfo=UTC)
    finally:
        reset_clients()
