"""Pure parts of the harness: trigger inputs, packaging, substitutions."""

from __future__ import annotations

import json
import zipfile
from datetime import UTC, datetime, timedelta, timezone
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from local.harness.sam import package_template, substitute_definition, zip_folder
from local.harness.triggers import json_path, normalize_event, render_scheduler_input, transform_input

EVENT = {
    "source": "shop",
    "detail-type": "OrderPlaced",
    "time": "2024-05-01T02:00:00Z",
    "detail": {"id": "o-1", "amount": 12.5, "tags": ["a", "b"], "note": 'say "hi"'},
}


@given(
    st.datetimes(
        min_value=datetime(1970, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=-7)), timezone(timedelta(hours=5))]),
    )
)
def test_scheduled_time_is_rendered_in_utc_to_the_second(moment: datetime) -> None:
    rendered = render_scheduler_input('{"t": "<aws.scheduler.scheduled-time>"}', moment, "arn:s", "id-1")

    text = json.loads(rendered)["t"]
    parsed = datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert len(text) == len("2022-03-22T18:59:43Z")
    assert parsed == moment.astimezone(UTC).replace(microsecond=0)


def test_scheduler_keywords_are_all_replaced() -> None:
    template = '{"a": "<aws.scheduler.schedule-arn>", "e": "<aws.scheduler.execution-id>", "n": <aws.scheduler.attempt-number>}'

    rendered = json.loads(render_scheduler_input(template, datetime(2024, 1, 1), "arn:sched", "exec-9"))

    assert rendered == {"a": "arn:sched", "e": "exec-9", "n": 1}


def test_input_transformer_quotes_values_outside_strings_only() -> None:
    transformer = {
        "InputPathsMap": {
            "id": "$.detail.id",
            "amount": "$.detail.amount",
            "tags": "$.detail.tags",
            "note": "$.detail.note",
            "missing": "$.detail.nope",
        },
        "InputTemplate": '{"id": <id>, "text": "order <id> of <amount>", "tags": <tags>, "note": <note>, '
        '"quoted": "<note>", "missing": <missing>, "rule": "<aws.events.rule-name>"}',
    }

    rendered = json.loads(transform_input(transformer, EVENT, "arn:rule", "my-rule"))

    assert rendered == {
        "id": "o-1",
        "text": "order o-1 of 12.5",
        "tags": ["a", "b"],
        "note": 'say "hi"',
        "quoted": 'say "hi"',
        "missing": None,
        "rule": "my-rule",
    }


def test_moto_events_are_normalized_to_what_a_target_receives() -> None:
    event = normalize_event({"time": 1714528800.0, "ingestion-time": 1.0, "source": "shop"})

    assert event == {"time": "2024-05-01T02:00:00Z", "source": "shop"}


def test_json_path_resolves_members_and_indexes() -> None:
    assert json_path(EVENT, "$.detail.tags[1]") == "b"
    assert json_path(EVENT, "$") is EVENT
    assert json_path(EVENT, "$.detail.absent") is None


def test_substitutions_replace_placeholders_and_reject_missing_ones() -> None:
    definition = '{"Resource": "${FnArn}", "Next": "$$.Execution.Id"}'

    assert (
        substitute_definition(definition, {"FnArn": "arn:fn"}, "M")
        == '{"Resource": "arn:fn", "Next": "$$.Execution.Id"}'
    )
    with pytest.raises(ValueError, match="FnArn"):
        substitute_definition(definition, {}, "M")


def test_packaging_uploads_code_without_caches_and_inlines_definitions(tmp_path: Path) -> None:
    (tmp_path / "fn" / "__pycache__").mkdir(parents=True)
    (tmp_path / "fn" / "app.py").write_text("def handler(e, c): return e\n")
    (tmp_path / "fn" / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"x")
    (tmp_path / "sm.asl.json").write_text('{"StartAt": "A", "States": {"A": {"Type": "Succeed"}}}')
    template: dict[str, Any] = {
        "Globals": {"Function": {"Runtime": "python3.11"}},
        "Resources": {
            "Fn": {"Type": "AWS::Serverless::Function", "Properties": {"CodeUri": "fn/", "Handler": "app.handler"}},
            "Remote": {"Type": "AWS::Serverless::Function", "Properties": {"CodeUri": "s3://b/k.zip"}},
            "Sm": {"Type": "AWS::Serverless::StateMachine", "Properties": {"DefinitionUri": "sm.asl.json"}},
        },
    }
    uploads: dict[str, bytes] = {}

    def upload(hint: str, data: bytes) -> tuple[str, str]:
        uploads[hint] = data
        return "bucket", f"{hint}.zip"

    packaged, code = package_template(template, tmp_path, upload)

    assert packaged["Resources"]["Fn"]["Properties"]["CodeUri"] == {"Bucket": "bucket", "Key": "Fn.zip"}
    assert packaged["Resources"]["Remote"]["Properties"]["CodeUri"] == "s3://b/k.zip"
    assert packaged["Resources"]["Sm"]["Properties"]["Definition"]["StartAt"] == "A"
    assert code[("bucket", "Fn.zip")].path == (tmp_path / "fn").resolve()
    assert zipfile.ZipFile(BytesIO(uploads["Fn"])).namelist() == ["app.py"]
    assert zip_folder(tmp_path / "fn") == uploads["Fn"]  # deterministic
    assert template["Resources"]["Fn"]["Properties"]["CodeUri"] == "fn/"  # input untouched


def test_the_emulator_gets_the_authorizer_once_its_constructor_takes_one(monkeypatch: pytest.MonkeyPatch) -> None:
    import local.emulator
    from local.harness.servers import start_emulator

    received: dict[str, Any] = {}

    class EmulatorWithAuthorizer:
        def __init__(self, *, authorizer: Any = None, **options: Any) -> None:
            received.update(options, authorizer=authorizer)
            self.url = "http://127.0.0.1:1"

        def start(self) -> None:
            received["started"] = True

    class EmulatorWithout(EmulatorWithAuthorizer):
        def __init__(self, **options: Any) -> None:
            received.clear()
            received.update(options)

    authorizer = object()
    monkeypatch.setattr(local.emulator, "EmulatorServer", EmulatorWithAuthorizer)
    start_emulator(
        s3_endpoint_url="http://s3", region="us-east-1", account_id="1", port=0, config={}, authorizer=authorizer
    )
    assert received["authorizer"] is authorizer and received["started"] and received["host"] == "127.0.0.1"

    monkeypatch.setattr(local.emulator, "EmulatorServer", EmulatorWithout)
    start_emulator(
        s3_endpoint_url="http://s3", region="us-east-1", account_id="1", port=0, config={}, authorizer=authorizer
    )
    assert "authorizer" not in received and received["started"]
