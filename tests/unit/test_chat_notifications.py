"""Every notification reaches email as text and chat as a custom notification, within SNS's and chat's limits.

Each verdict an execution can have is published through `notify_on_call` and checked as SNS and
Amazon Q Developer in chat applications would take it (`tests/chat_contract.py`).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from cpexport.chat import DESCRIPTION_LIMIT, NEXT_STEPS_MAX, TITLE_LIMIT
from cpexport.config import load_settings
from cpexport.models import NotifyInput
from cpexport.notify import notify_on_call
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.chat_contract import chat_of, chat_problems, sns_problems

EXECUTION = "arn:aws:states:eu-west-1:123456789012:execution:ExportStateMachine:run-7"
WINDOW = {"start": "2026-11-01T00:00:00Z", "end": "2026-11-01T23:30:00Z"}
SETTINGS = load_settings(
    {
        "STACK_NAME": "cpx",
        "ACCOUNT_ID": "123456789012",
        "AWS_REGION": "eu-west-1",
        "DOMAIN_NAMES": "shop",
        "OBJECT_TYPES": "_profile,_order",
        "EXPORT_BUCKET_NAME": "exports-bucket",
        "KMS_KEY_ARN": "arn:aws:kms:eu-west-1:123456789012:key/abc",
        "STATE_TABLE_NAME": "state",
        "INITIAL_START_TIME": "2026-11-01T00:00:00Z",
        "NOTIFICATION_TOPIC_ARN": "arn:aws:sns:eu-west-1:123456789012:notifications",
    }
)
CLI = "--stack-name cpx --region eu-west-1"


class Topic:
    """Takes what `notify_on_call` publishes, as SNS's Publish would receive it."""

    def __init__(self) -> None:
        self.published: list[dict[str, Any]] = []

    def publish(self, topic_arn, subject, message, attributes, message_structure=None):
        self.published.append(
            {"subject": subject, "message": message, "attributes": attributes, "structure": message_structure}
        )
        return f"message-{len(self.published)}"

    def put_events(self, bus_name, source, entries):
        return 0


def result(**changes: Any) -> dict[str, Any]:
    base = {
        "domainName": "shop",
        "objectType": "_profile",
        "window": WINDOW,
        "status": "SUCCEEDED",
        "files": 3,
        "records": 150,
        "bytes": 12_345,
        "manifestKey": "exports/123456789012/shop/20261102T000010/20261101T000000-20261101T233000/_profile.manifest.json",
    }
    return base | changes


STATE = {"database": "cpx", "table": "profile_state", "deletedTable": "profile_deleted", "merged": True}
FAILED = result(
    objectType="_order",
    status="FAILED",
    files=0,
    records=0,
    bytes=0,
    manifestKey=None,
    message="FAILED: the service reported the job FAILED (S3 access denied)",
    watermark="2026-11-01T00:00:00Z",
)
VERDICTS = {
    "succeeded": {"results": [result(currentState=STATE)]},
    "failed": {"results": [FAILED]},
    "partially failed": {"results": [result(currentState=STATE), FAILED]},
    "rejected request": json.loads(
        '{"rejection": {"error": "InvalidExportRequest", "message": "domainName: unknown is not configured",'
        ' "domainName": "unknown", "requestExcerpt": "{\\"domainName\\": \\"unknown\\"}"}}'
    ),
    "current-state merge failed": {
        "results": [
            result(
                currentState=STATE
                | {"merged": False, "error": {"Error": "States.TaskFailed", "Cause": "ICEBERG_COMMIT_ERROR"}}
            )
        ]
    },
    "nothing to export": {"skipped": [{"domainName": "shop", "objectType": "_profile", "reason": "nothing new"}]},
    "the run broke": {"planError": {"Error": "CatalogConflict", "Cause": "table profile_versions is not ours"}},
}
EXPECTED = {
    "succeeded": ("SUCCEEDED", "ExportSucceeded"),
    "failed": ("FAILED", "ExportFailed"),
    "partially failed": ("PARTIALLY FAILED", "ExportPartiallyFailed"),
    "rejected request": ("REJECTED", "ExportRequestRejected"),
    "current-state merge failed": ("FAILED", "CurrentStateMergeFailed"),
    "nothing to export": ("SUCCEEDED", "ExportNothingNew"),
    "the run broke": ("FAILED", "ExportRunBroken"),
}


def publish(payload: dict[str, Any]) -> dict[str, Any]:
    topic = Topic()
    notify_on_call(NotifyInput.model_validate({"executionArn": EXECUTION} | payload), SETTINGS, topic)
    (published,) = topic.published
    return published


def attributes_of(published: dict[str, Any]) -> dict[str, str]:
    return {name: json.dumps(value) for name, value in published["attributes"].items()}


@pytest.mark.parametrize("verdict", list(VERDICTS))
def test_each_verdict_is_one_structured_message_sns_accepts_and_chat_renders(verdict):
    # When an execution with this verdict notifies
    published = publish(VERDICTS[verdict])

    # Then SNS takes it (structured, `default` present, within its limits) and its https part is a custom notification
    assert published["structure"] == "json"
    assert sns_problems(published["message"], published["subject"], attributes_of(published)) == []
    chat = chat_of(published["message"])
    word, event_type = EXPECTED[verdict]
    assert f"Customer Profiles export {word}:" in chat["content"]["title"]
    assert chat["metadata"]["eventType"] == event_type
    # One thread per execution, the execution first among the related resources, the email's subject as summary
    assert chat["metadata"]["threadId"] == EXECUTION
    assert chat["metadata"]["relatedResources"][0] == EXECUTION
    assert chat["metadata"]["summary"] == published["subject"]
    # What happened is always one command away
    assert chat["content"]["nextSteps"][0].endswith(f"`cpexport explain run-7 {CLI}`")
    # Email subscribers keep today's text
    assert json.loads(published["message"])["default"].startswith("Customer Profiles export ")


def test_the_title_names_the_verdict_and_the_domain_and_the_description_has_one_line_per_export():
    chat = chat_of(publish(VERDICTS["partially failed"])["message"])
    assert chat["content"]["title"].endswith("PARTIALLY FAILED: shop (1 exported, 1 failed)")
    lines = chat["content"]["description"].splitlines()
    (order,) = [line for line in lines if "`_order`" in line]
    assert "*FAILED*, window 2026-11-01T00:00:00Z .. 2026-11-01T23:30:00Z" in order
    assert "S3 access denied" in order and "watermark stays at 2026-11-01T00:00:00Z" in order
    (profile,) = [line for line in lines if "`_profile`" in line]
    assert "3 files, 150 records, 12.1 KB" in profile
    # A failure comes before a success: a cut description keeps what on-call must act on
    assert lines.index(order) < lines.index(profile)


def test_related_resources_are_the_execution_its_manifests_and_its_current_state_tables():
    chat = chat_of(publish(VERDICTS["succeeded"])["message"])
    assert chat["metadata"]["relatedResources"] == [
        EXECUTION,
        f"arn:aws:s3:::exports-bucket/{result()['manifestKey']}",
        "arn:aws:glue:eu-west-1:123456789012:table/cpx/profile_state",
    ]


@pytest.mark.parametrize(
    ("failure", "command"),
    [
        ({"message": "ExportBusy: the lease is held by run-3"}, "release-lease --domain shop --type _order"),
        (
            {"backfill": True},
            "backfill --domain shop --type _order --from 2026-11-01T00:00:00Z --to 2026-11-01T23:30:00Z",
        ),
        ({}, "run --domain shop --type _order --wait"),
        ({"message": "AccessDeniedException: not authorized"}, "doctor"),
    ],
    ids=["a held lease", "a backfill", "an incremental window", "a permission"],
)
def test_next_steps_name_the_cpexport_command_that_helps(failure, command):
    chat = chat_of(publish({"results": [FAILED | failure]})["message"])
    assert any(f"cpexport {command}" in step for step in chat["content"]["nextSteps"])


def test_a_table_that_missed_an_export_is_caught_up_with_rebuild_current():
    chat = chat_of(publish(VERDICTS["current-state merge failed"])["message"])
    assert f"`cpexport rebuild-current --domain shop --type _profile {CLI}`" in " ".join(chat["content"]["nextSteps"])
    assert "*NOT merged* into `cpx.profile_state`" in chat["content"]["description"]


def test_every_next_step_names_only_commands_cpexport_has():
    from cpexport_cli.app import cli

    for payload in VERDICTS.values():
        for step in chat_of(publish(payload)["message"])["content"]["nextSteps"]:
            for part in step.split("`cpexport ")[1:]:
                assert part.split()[0] in cli.commands, step


def test_four_hundred_failures_fit_both_sns_and_chat_and_the_cut_is_said():
    # Given an execution whose every export failed with a long reason
    failures = [FAILED | {"objectType": f"t{i}", "message": "x" * 1500} for i in range(400)]

    # When it notifies
    published = publish({"results": failures})

    # Then SNS takes it, chat's description and steps stay within their budgets and say what was cut
    assert sns_problems(published["message"], published["subject"], attributes_of(published)) == []
    chat = chat_of(published["message"])
    assert len(chat["content"]["description"]) <= DESCRIPTION_LIMIT
    assert "more line(s) cut to fit the chat message" in chat["content"]["description"]
    assert len(chat["content"]["nextSteps"]) == NEXT_STEPS_MAX
    assert "More steps in the email" in chat["content"]["nextSteps"][-1]
    # The email still holds the first failure
    assert "shop / t0: FAILED" in json.loads(published["message"])["default"]


@settings(max_examples=60, deadline=None)
@given(
    domain=st.text(min_size=1, max_size=300),
    reason=st.text(max_size=5000),
    correlation=st.one_of(st.none(), st.text(max_size=500)),
)
def test_whatever_a_request_or_a_service_sent_the_message_stays_valid(domain, reason, correlation):
    rejection = {"error": "InvalidExportRequest", "message": reason[:4000], "domainName": domain}
    for payload in (
        {"rejection": rejection, "correlationId": correlation},
        {"results": [FAILED | {"message": reason, "domainName": domain}], "correlationId": correlation},
    ):
        published = publish(payload)
        assert sns_problems(published["message"], published["subject"], attributes_of(published)) == []


# The contract can fail: a message the pipeline must never publish is caught.


def test_a_title_longer_than_chat_shows_is_refused():
    chat = chat_of(publish(VERDICTS["succeeded"])["message"])
    chat["content"]["title"] = "x" * (TITLE_LIMIT + 1)
    assert any(problem.startswith("content/title:") for problem in chat_problems(chat))


def test_a_structured_message_without_default_is_refused():
    published = publish(VERDICTS["failed"])
    structure = json.loads(published["message"])
    del structure["default"]
    assert sns_problems(json.dumps(structure), published["subject"]) == ["the mandatory `default` message is missing"]


def test_plain_text_a_foreign_source_or_a_long_subject_is_refused():
    assert sns_problems("Customer Profiles export FAILED", "s") == [
        "not a structured (MessageStructure=json) message: chat would show nothing"
    ]
    chat = chat_of(publish(VERDICTS["succeeded"])["message"])
    assert chat_problems(chat | {"source": "aws.states"})
    assert chat_problems({**chat, "content": {"title": "no description"}})
    structure = json.loads(publish(VERDICTS["succeeded"])["message"])
    assert sns_problems(json.dumps(structure), "x" * 101)
