"""Plan: windows per domain x object type, and clear rejections of bad requests."""

from datetime import UTC, datetime, timedelta

import pytest
from cpexport.config import load_settings
from cpexport.errors import ConfigurationError
from cpexport.models import PlanInput
from cpexport.planning import SCHEDULER_SKEW, plan_exports

EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:export:run-1"
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def settings(**overrides):
    env = {
        "STACK_NAME": "cpx",
        "ACCOUNT_ID": "123456789012",
        "AWS_REGION": "us-east-1",
        "DOMAIN_NAMES": "shop,support",
        "OBJECT_TYPES": "_profile,_order",
        "EXPORT_BUCKET_NAME": "exports-bucket",
        "KMS_KEY_ARN": "arn:aws:kms:us-east-1:123456789012:key/abc",
        "STATE_TABLE_NAME": "state",
        "INITIAL_START_TIME": "2026-11-01T00:00:00Z",
    } | overrides
    return load_settings(env)


class Watermarks:
    def __init__(self, marks=None):
        self.marks = marks or {}

    def get_watermark(self, domain_name, object_type):
        return self.marks.get((domain_name, object_type))


def plan(request, marks=None, **env):
    return plan_exports(
        PlanInput(request=request, execution_arn=EXECUTION, execution_start_time=NOW),
        settings(**env),
        Watermarks(marks),
    )


def test_empty_input_plans_every_configured_domain_and_object_type_from_the_initial_start():
    result = plan({})
    assert [(t.domain_name, t.object_type) for t in result.exports] == [
        ("shop", "_profile"),
        ("shop", "_order"),
        ("support", "_profile"),
        ("support", "_order"),
    ]
    assert {t.window.start for t in result.exports} == {datetime(2026, 11, 1, tzinfo=UTC)}
    assert {t.window.end for t in result.exports} == {NOW - timedelta(minutes=30)}
    assert result.correlation_id == "run-1"


def test_scheduled_time_is_the_clock_so_a_redelivered_tick_plans_the_same_window():
    tick = "2026-11-20T00:00:00Z"
    first, again = plan({"scheduledTime": tick}), plan({"scheduledTime": tick})
    assert [t.window for t in first.exports] == [t.window for t in again.exports]
    assert first.exports[0].window.end == datetime(2026, 11, 19, 23, 30, tzinfo=UTC)


def test_watermark_starts_the_next_window_and_an_up_to_date_type_is_skipped():
    marks = {("shop", "_profile"): datetime(2026, 11, 27, tzinfo=UTC), ("shop", "_order"): NOW}
    result = plan({"domainName": "shop"}, marks)
    assert [(t.object_type, t.window.start) for t in result.exports] == [
        ("_profile", datetime(2026, 11, 27, tzinfo=UTC))
    ]
    assert [(s.object_type, s.watermark) for s in result.skipped] == [("_order", NOW)]


def test_backfill_is_honoured_for_the_narrowed_selection():
    result = plan(
        {
            "domainName": "support",
            "objectTypes": ["_order"],
            "startTime": "2026-10-01T00:00:00Z",
            "endTime": "2026-10-02T00:00:00+02:00",
            "correlationId": "ticket-42",
        }
    )
    (task,) = result.exports
    assert task.backfill
    assert task.window.start == datetime(2026, 10, 1, tzinfo=UTC)
    assert task.window.end == datetime(2026, 10, 1, 22, tzinfo=UTC)
    assert result.correlation_id == "ticket-42"


def test_a_verification_is_a_backfill_marked_as_such_and_needs_its_range():
    # Given the request `cpexport verify` sends: a few minutes already exported, marked as a verification
    request = {
        "domainName": "shop",
        "objectTypes": ["_profile"],
        "startTime": "2026-11-27T23:20:00Z",
        "endTime": "2026-11-27T23:25:00Z",
        "verification": True,
    }

    # When it is planned
    (task,) = plan(request, {("shop", "_profile"): datetime(2026, 11, 27, 23, 30, tzinfo=UTC)}).exports

    # Then it is a backfill (no watermark moves) that every report can tell apart
    assert task.backfill and task.verification and not task.reconcile
    assert task.window.end == datetime(2026, 11, 27, 23, 25, tzinfo=UTC)
    # and a verification without a range, or of a reconcile, is refused
    assert "verification is a backfill" in plan({"verification": True}).rejection.message
    assert plan({"verification": True, "reconcile": True}).rejection is not None


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        ({"domainName": "nope"}, "domainName: nope is not a configured domain"),
        ({"domainName": "bad name!"}, "domainName: must be 1-64 characters"),
        ({"objectTypes": []}, "objectTypes: List should have at least 1 item"),
        ({"objectTypes": ["_case"]}, "objectTypes: _case is not a configured object type"),
        ({"objectTypes": ["_order", "_order"]}, "objectTypes: must not repeat an object type"),
        ({"objectTypes": "_order"}, "objectTypes: Input should be a valid list"),
        ({"startTime": "yesterday"}, "startTime: must be an ISO 8601 date-time"),
        ({"startTime": "2026-10-01T00:00:00"}, "startTime: must be an ISO 8601 date-time"),
        ({"endTime": "2026-10-01T00:00:00Z"}, "endTime needs a startTime"),
        (
            {"startTime": "2026-10-02T00:00:00Z", "endTime": "2026-10-01T00:00:00Z"},
            "startTime (2026-10-02T00:00:00Z) must be before endTime",
        ),
        ({"startTime": "2026-11-28T11:50:00Z"}, "leaves an empty window"),
        (
            {"startTime": "2026-11-01T00:00:00Z", "endTime": "2026-11-28T11:45:00Z"},
            "endTime: 2026-11-28T11:45:00Z is later than 2026-11-28T11:30:00Z",
        ),
        ({"domain": "shop"}, "domain: is not a known field"),
        ({"scheduledTime": 12}, "scheduledTime: must be an ISO 8601 date-time"),
        ({"correlationId": ""}, "correlationId: String should have at least 1 character"),
        # Digits are not times: pydantic alone reads them as epoch seconds (jobs from 1970).
        ({"startTime": "20261001"}, "startTime: must be an ISO 8601 date-time"),
        ({"scheduledTime": "1764000000"}, "scheduledTime: must be an ISO 8601 date-time"),
        ({"startTime": 1764000000}, "startTime: must be an ISO 8601 date-time"),
        ({"startTime": "2026-10-01"}, "startTime: must be an ISO 8601 date-time"),
        # Before 1970 there is no epoch-millisecond form; year 1 used to crash three Lambdas.
        ({"startTime": "0001-01-01T00:00:00Z"}, "startTime: must not be before 1970-01-01T00:00:00Z"),
        ({"scheduledTime": "0001-01-01T00:00:00+01:00"}, "scheduledTime: must not be before 1970"),
        ({"startTime": "1969-12-31T23:59:59Z"}, "startTime: must not be before 1970"),
        ({"startTime": "1970-01-01T00:30:00+01:00"}, "startTime: must not be before 1970"),
        # The clock may not run ahead of the execution (the Scheduler's own skew is allowed).
        ({"scheduledTime": "2030-01-01T00:00:00Z"}, "scheduledTime: 2030-01-01T00:00:00Z is in the future"),
        ({"scheduledTime": "2026-11-28T12:06:00Z"}, "scheduledTime: 2026-11-28T12:06:00Z is in the future"),
        (
            {"startTime": "2026-11-01T00:00:00Z", "endTime": "2098-01-01T00:00:00Z"},
            "endTime: 2098-01-01T00:00:00Z is later than",
        ),
        # Only the documented camelCase names; `source` is not a field of a request.
        ({"domain_name": "shop"}, "domain_name: is not a known field"),
        ({"object_types": ["_order"]}, "object_types: is not a known field"),
        ({"source": "crm"}, "source: is not a known field"),
    ],
)
def test_a_bad_request_is_rejected_with_a_message_naming_the_field(request_, expected):
    result = plan(request_)
    assert result.rejection is not None, result
    assert result.exports == [] and result.skipped == []
    assert expected in result.rejection.message
    assert result.rejection.message.startswith("invalid export request: ")


def test_a_scheduled_time_within_the_schedulers_skew_is_the_clock():
    tick = NOW + SCHEDULER_SKEW
    result = plan({"scheduledTime": tick.isoformat()})
    assert result.rejection is None
    assert result.clock == tick


def test_a_tick_and_a_request_name_their_request_so_duplicates_report_once():
    tick = plan({"scheduledTime": "2026-11-20T00:00:00Z"}).exports[0].request_key
    assert tick == plan({"scheduledTime": "2026-11-20T00:00:00Z"}).exports[0].request_key
    assert tick == "scheduled:2026-11-20T00:00:00Z"
    assert plan({"correlationId": "crm-7"}).exports[0].request_key == "correlation:crm-7"
    assert plan({}).exports[0].request_key == "execution:run-1"


def test_safety_lag_below_30_minutes_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="SAFETY_LAG_MINUTES"):
        settings(SAFETY_LAG_MINUTES="10")


def test_missing_environment_names_every_variable():
    with pytest.raises(ConfigurationError) as error:
        load_settings({})
    for name in ("STACK_NAME", "DOMAIN_NAMES", "EXPORT_BUCKET_NAME", "STATE_TABLE_NAME", "INITIAL_START_TIME"):
        assert name in str(error.value)


@pytest.mark.parametrize("raw", ["export please", ["shop"], 7, None, [], True, 1.5])
def test_an_input_that_is_not_an_object_is_rejected_clearly(raw):
    result = plan(raw)
    assert result.rejection is not None
    assert "input: must be a JSON object" in result.rejection.message


def test_a_rejection_carries_a_bounded_printable_excerpt_and_only_a_valid_domain():
    huge = {"domainName": "shop\nSubject: spoof", "correlationId": "x" * 200, "junk": "é" * 100_000}
    rejection = plan(huge).rejection
    assert rejection is not None
    assert len(rejection.request_excerpt) <= 1000 and rejection.request_excerpt.isascii()
    assert rejection.domain_name is None
    assert plan({"domainName": "nope"}).rejection.domain_name == "nope"  # type: ignore[union-attr]


def test_any_number_of_domains_is_planned():
    domains = [f"shop-{n:02d}" for n in range(1, 26)]
    result = plan({}, DOMAIN_NAMES=",".join(domains), OBJECT_TYPES="_profile")
    assert [export.domain_name for export in result.exports] == domains


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DOMAIN_NAMES", "shop,my shop"),
        ("DOMAIN_NAMES", "shop," + "d" * 65),
        ("DOMAIN_NAMES", "shop.eu"),
        ("OBJECT_TYPES", "_profile,order.line"),
    ],
)
def test_a_name_customer_profiles_would_refuse_is_a_configuration_error(variable, value):
    with pytest.raises(ConfigurationError, match=variable):
        settings(**{variable: value})
