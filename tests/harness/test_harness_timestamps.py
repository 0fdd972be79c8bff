"""moto's response serializer, and the interpreter's SDK clients, read timestamp strings through
the harness's fast paths: same output.

`MotoPatches` replaces `parse_to_aware_datetime` in `moto.core.serialize` (dateutil's general parser
was half of what a ListObjectsV2 page cost the server). Whatever string a response holds, every
timestamp format moto renders must come out as it did. The interpreter's clients (a Distributed
Map's ItemReader lists in the server's process) parse response timestamps as the pipeline's clients
do (`cpexport.clients.timestamps`, tested in tests/unit/test_client_timestamps.py).
"""

from __future__ import annotations

from datetime import datetime

import pytest
from botocore.parsers import DEFAULT_TIMESTAMP_PARSER
from botocore.utils import parse_to_aware_datetime
from hypothesis import given
from moto.core.serialize import TimestampSerializer

from local.harness.moto_patches import _aware_datetime, _interpreter_client
from tests.timestamp_cases import moments, renderings

FAST = _aware_datetime(parse_to_aware_datetime)
FORMATS = ("iso8601", "iso8601_zeroed", "rfc822", "unixtimestamp")


def _rendered(parse: object, value: object) -> list[object]:
    serializer = TimestampSerializer("iso8601")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("moto.core.serialize.parse_to_aware_datetime", parse)
        return [serializer._convert_timestamp_to_str(value, form) for form in FORMATS]  # type: ignore[arg-type]


@given(moments)
def test_every_format_renders_an_iso_string_as_motos_own_parser_did(moment: datetime) -> None:
    for text in renderings(moment):
        assert FAST(text) == parse_to_aware_datetime(text)
        assert FAST(text).utcoffset() == parse_to_aware_datetime(text).utcoffset()
        assert _rendered(FAST, text) == _rendered(parse_to_aware_datetime, text)


@pytest.mark.parametrize(
    "value",
    [
        "1700000000",
        "2026-11-29",
        "2026-11-29 04:37:12",
        "Sun, 29 Nov 2026 04:37:12 GMT",
        1700000000,
        "20261129T043712Z",
    ],
)
def test_other_forms_still_go_to_motos_parser(value: object) -> None:
    assert _rendered(FAST, value) == _rendered(parse_to_aware_datetime, value)


def test_an_interpreter_client_reads_responses_with_the_fast_parser() -> None:
    client = _interpreter_client(
        service_name="s3", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b"
    )
    parser = client._endpoint._response_parser_factory.create_parser("rest-xml")
    assert parser._timestamp_parser.__wrapped__ is DEFAULT_TIMESTAMP_PARSER
    # and the process's default session, which the benchmark's baselines use, is left as it was
    import boto3

    default = boto3.client("s3", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")
    assert default._endpoint._response_parser_factory.create_parser("rest-xml")._timestamp_parser is (
        DEFAULT_TIMESTAMP_PARSER
    )
