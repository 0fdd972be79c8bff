"""Notifications fit what SNS accepts, whatever a request carried, and name each job's reporter."""

import json

from cpexport.models import ExportResult, NotifyInput, Rejection
from cpexport.notify import MESSAGE_LIMIT_BYTES, build_message, build_subject, result_events

EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:export:run-1"
WINDOW = {"start": "2026-11-01T00:00:00Z", "end": "2026-11-01T23:30:00Z"}


def result(**changes):
    return ExportResult.model_validate(
        {"domainName": "shop", "objectType": "_profile", "window": WINDOW, "status": "SUCCEEDED"} | changes
    )


def test_a_subject_is_printable_ascii_on_one_line_and_at_most_100_characters():
    rejection = Rejection(message="bad", domain_name=None, request_excerpt="{}")
    notify = NotifyInput(execution_arn=EXECUTION, rejection=rejection, results=[result(domainName="é\n" * 80)])
    subject = build_subject(notify)
    assert len(subject) <= 100
    assert subject.isascii() and subject.isprintable() and "\n" not in subject


def test_a_message_never_exceeds_the_sns_limit_and_keeps_each_failure_line():
    failures = [result(status="FAILED", objectType=f"t{i}", message="x" * 1500) for i in range(400)]
    message = build_message(NotifyInput(execution_arn=EXECUTION, results=failures), "bucket")
    assert len(message.encode()) <= MESSAGE_LIMIT_BYTES
    assert "shop / t0: FAILED" in message


def test_a_rejection_message_has_the_reason_and_no_stack_trace():
    broken = NotifyInput.model_validate(
        {
            "executionArn": EXECUTION,
            "planError": {
                "Error": "TransientServiceError",
                "Cause": json.dumps(
                    {"errorMessage": "GetItem: throttled", "stackTrace": ['  File "/var/task/app.py", line 3']}
                ),
            },
        }
    )
    message = build_message(broken, "bucket")
    assert "GetItem: throttled" in message and EXECUTION in message
    assert "stackTrace" not in message and "File " not in message


def test_a_job_reported_by_another_execution_gets_no_event_and_fails_nothing():
    notify = NotifyInput(
        execution_arn=EXECUTION,
        results=[result(status="FAILED", reported=False, reportedBy="arn:first"), result(objectType="_order")],
    )
    kinds = [(kind, detail["objectType"]) for kind, detail in result_events(notify, "bucket")]
    assert kinds == [("Customer Profiles Export Succeeded", "_order")]
    assert build_subject(notify).startswith("Customer Profiles export SUCCEEDED")
    assert "already reported by execution arn:first" in build_message(notify, "bucket")


class _FlakyBus:
    def __init__(self, fail: bool) -> None:
        self.fail, self.published = fail, 0

    def publish(self, topic_arn, subject, message, attributes, message_structure=None):
        self.published += 1
        return "message-1"

    def put_events(self, bus_name, source, entries):
        from cpexport.errors import TransientServiceError

        if self.fail:
            raise TransientServiceError("PutEvents: InternalException")
        return 0


def test_events_that_eventbridge_refuses_do_not_make_the_notification_go_out_twice(monkeypatch):
    # A raised error would make the state machine retry Notify, and on-call would get the message again
    from cpexport.config import load_settings
    from cpexport.notify import notify_on_call

    settings = load_settings(
        {
            "STACK_NAME": "cpx",
            "ACCOUNT_ID": "123456789012",
            "AWS_REGION": "us-east-1",
            "DOMAIN_NAMES": "shop",
            "OBJECT_TYPES": "_profile",
            "EXPORT_BUCKET_NAME": "exports-bucket",
            "KMS_KEY_ARN": "arn:aws:kms:us-east-1:123456789012:key/abc",
            "STATE_TABLE_NAME": "state",
            "INITIAL_START_TIME": "2026-11-01T00:00:00Z",
            "NOTIFICATION_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:topic",
        }
    )
    monkeypatch.setattr("cpexport.notify.record_failed_events", lambda count: None)
    bus = _FlakyBus(fail=True)
    verdict = notify_on_call(NotifyInput(execution_arn=EXECUTION, results=[result()]), settings, bus)
    assert verdict.status == "SUCCEEDED" and bus.published == 1
    # and the verdict says what EventBridge did not take (cpexport verify reads it from the history)
    assert (verdict.message_id, verdict.events, verdict.events_failed) == ("message-1", 1, 1)


def _partition(stamp: str) -> dict[str, object]:
    values = ["shop", WINDOW["start"], WINDOW["end"], stamp, "false"]
    name = "/".join(
        f"{key}={value}"
        for key, value in zip(("domain", "window_start", "window_end", "requested_at", "backfill"), values, strict=True)
    )
    return {"name": name, "values": values, "location": f"s3://bucket/exports/1/shop/{stamp}/_profile/"}


def test_a_job_written_into_two_request_folders_names_both_partitions_and_a_failure_names_none():
    first, second = _partition("2026-11-02T00:00:10Z"), _partition("2026-11-02T00:00:11Z")
    catalogued = result(database="db", table="profile_versions", partitions=[first, second])
    failed = result(objectType="_order", status="FAILED", message="boom")
    notify = NotifyInput(execution_arn=EXECUTION, results=[catalogued, failed])

    events = {detail["objectType"]: detail for _, detail in result_events(notify, "bucket")}
    message = build_message(notify, "bucket")

    assert events["_profile"]["partition"] == first and events["_profile"]["partitions"] == [first, second]
    assert events["_profile"]["table"] == "profile_versions" and events["_profile"]["database"] == "db"
    assert {"table", "partition", "partitions"}.isdisjoint(events["_order"])
    assert f"queryable: table db.profile_versions, partitions {first['name']}; {second['name']}" in message
    assert message.count("queryable:") == 1


def test_a_verification_is_recognisable_in_the_subject_the_message_and_its_result_event():
    # Given the result of the backfill `cpexport verify` ran
    notify = NotifyInput(execution_arn=EXECUTION, results=[result(backfill=True, verification=True)])

    # When on-call and other systems are told
    subject, message = build_subject(notify), build_message(notify, "bucket")
    ((_, detail),) = result_events(notify, "bucket")

    # Then nobody mistakes it for a night's export
    assert subject.startswith("Customer Profiles export verification SUCCEEDED: shop")
    assert "shop / _profile: SUCCEEDED (verification)" in message
    assert detail["verification"] is True and detail["backfill"] is True
    # and an ordinary export's event says it is none
    assert (
        result_events(NotifyInput(execution_arn=EXECUTION, results=[result()]), "bucket")[0][1]["verification"] is False
    )
