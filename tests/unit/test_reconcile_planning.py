"""A reconcile: a full export per object type, from InitialStartTime to the watermark, and its SQL."""

from datetime import UTC, datetime, timedelta

from cpexport.catalog import CURRENT_BY_TYPE, catalog_plan, state_table_name, view_definition
from cpexport.current_state import (
    PartitionRef,
    PendingReconcile,
    confirmation_moment,
    create_statements,
    current_state_location,
    reconcile_cutoff,
    update_for_export,
)
from cpexport.models import CatalogPartition, ExportResult, ExportStatus, ExportWindow, NotifyInput
from cpexport.notify import build_message, overall_status, result_events
from cpexport.planning import request_key

from tests.unit.test_planning import plan

MARK = datetime(2026, 11, 27, 0, 0, tzinfo=UTC)


def test_a_reconcile_exports_everything_up_to_the_watermark_and_never_past_it():
    # Given one object type with a watermark and one never exported
    marks = {("shop", "_profile"): MARK}
    # When a reconcile is requested for the shop domain
    result = plan({"reconcile": True, "domainName": "shop"}, marks)
    # Then the exported type gets one full window ending at its watermark, as a backfill (no watermark moves)
    (task,) = result.exports
    assert (task.object_type, task.window.start, task.window.end) == (
        "_profile",
        datetime(2026, 11, 1, tzinfo=UTC),
        MARK,
    )
    assert task.reconcile and task.backfill
    # And the type without a watermark has nothing to reconcile, and says so
    (skipped,) = result.skipped
    assert skipped.object_type == "_order" and "nothing to reconcile" in skipped.reason


def test_a_reconcile_with_a_window_of_its_own_is_rejected():
    result = plan({"reconcile": True, "startTime": "2026-11-02T00:00:00Z"})
    assert result.rejection is not None
    assert "reconcile exports from InitialStartTime to the watermark" in result.rejection.message
    assert result.exports == []


def test_a_reconcile_tick_is_another_request_than_the_export_tick_of_the_same_moment():
    from cpexport.models import ExportRequest

    tick = "2026-11-22T00:00:00Z"
    export = request_key(ExportRequest.model_validate({"scheduledTime": tick}), "a")
    reconcile = request_key(ExportRequest.model_validate({"scheduledTime": tick, "reconcile": True}), "b")
    assert export != reconcile
    assert reconcile == f"reconcile-scheduled:{tick}"


def test_the_reconcile_cutoff_leaves_the_services_lag_unproven():
    requested = MARK + timedelta(minutes=10)
    assert reconcile_cutoff(MARK, requested) == requested - timedelta(minutes=30)
    assert reconcile_cutoff(MARK, MARK + timedelta(hours=2)) == MARK


def test_current_state_tables_live_beside_the_exports_never_under_the_expiring_account_folder():
    location = current_state_location("b", "exports", "profile_state")
    assert location == "s3://b/exports/current-state/profile_state/"
    assert not location.startswith("s3://b/exports/123456789012/")
    assert current_state_location("b", "", "profile_state") == "s3://b/current-state/profile_state/"
    state, deleted = create_statements("db", "_profile", "b", "exports")
    assert "CREATE TABLE IF NOT EXISTS db.profile_state" in state and "'table_type'='ICEBERG'" in state
    assert "CREATE TABLE IF NOT EXISTS db.profile_deleted" in deleted


def _partition() -> CatalogPartition:
    values = ["shop", "2026-11-01T00:00:00Z", "2026-11-27T00:00:00Z", "2026-11-27T01:00:00Z", "true"]
    return CatalogPartition(name="x", values=values, location="s3://b/exports/1/shop/x/_profile/")


def test_a_reconcile_records_candidates_and_a_later_export_past_it_removes_them():
    # Given an incremental export with nothing pending: it only merges
    incremental = update_for_export(
        "db", "_profile", "shop", [_partition()], reconcile=False, window_end=MARK, requested_at=MARK, request_key="k"
    )
    assert incremental.statements is not None and incremental.statements.record_deleted is None
    assert incremental.statements.apply_deleted is None
    assert incremental.statements.merge.startswith("MERGE INTO db.profile_state")
    # When a reconcile is indexed: its ids missing from the full export become candidates, nothing is removed yet
    looked = MARK + timedelta(days=1)
    reconcile = update_for_export(
        "db",
        "_profile",
        "shop",
        [_partition()],
        reconcile=True,
        window_end=MARK,
        requested_at=MARK + timedelta(hours=1),
        request_key="k",
        looked_at=looked,
    )
    statements = reconcile.statements
    assert statements is not None
    assert statements.record_deleted is not None and statements.record_deleted.startswith(
        "MERGE INTO db.profile_deleted"
    )
    assert statements.apply_deleted is None and statements.exact is None
    assert (reconcile.cutoff, reconcile.confirm_after) == (MARK, looked)
    # The same partition in the reconcile's own export is what "present" means.
    assert PartitionRef(tuple(_partition().values)).predicate("r") in statements.record_deleted
    pending = PendingReconcile(reconcile.reconcile_label or "", MARK, looked)
    # Then an incremental export whose watermark has not passed the moment the reconcile looked removes nothing
    early = update_for_export(
        "db", "_profile", "shop", [_partition()], reconcile=False, window_end=MARK, requested_at=MARK,
        request_key="k2", watermark=looked - timedelta(seconds=1), pending=pending,
    )  # fmt: skip
    assert early.statements is not None and early.statements.apply_deleted is None and early.exact_as_of is None
    # And the first one past it removes the candidates still at their old version and marks the table exact
    confirming = update_for_export(
        "db", "_profile", "shop", [_partition()], reconcile=False, window_end=MARK, requested_at=MARK,
        request_key="k3", watermark=looked, pending=pending,
    )  # fmt: skip
    assert confirming.statements is not None and confirming.statements.apply_deleted is not None
    assert "THEN DELETE" in confirming.statements.apply_deleted
    assert "t.lastupdated <= s.lastupdated" in confirming.statements.apply_deleted
    assert confirming.statements.exact is not None and "exact_as_of.shop" in confirming.statements.exact
    assert (confirming.exact_as_of, confirming.confirmed_reconcile) == (MARK, reconcile.reconcile_label)


def test_the_moment_a_reconcile_looked_is_its_clock_plus_how_long_it_waited_for_its_job():
    clock = datetime(2026, 11, 22, tzinfo=UTC)
    started = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)  # offline: the wall clock runs days after the simulated one
    assert confirmation_moment(clock, started, started + timedelta(minutes=5, milliseconds=1)) == clock + timedelta(
        minutes=5, seconds=1
    )
    assert confirmation_moment(clock, started, started - timedelta(seconds=3)) == clock


def test_the_saved_current_count_reads_the_current_state_tables():
    plan_ = catalog_plan("db", ["_profile", "_order"], "s3://b/exports/1/")
    (view,) = [v for v in plan_.views if v["Name"] == CURRENT_BY_TYPE]
    sql = view_definition(view["ViewOriginalText"])["originalSql"]
    assert f"db.{state_table_name('_profile')}" in sql and f"db.{state_table_name('_order')}" in sql


def _result(**current) -> ExportResult:
    update = update_for_export(
        "db", "_profile", "shop", [_partition()], reconcile=True, window_end=MARK, requested_at=MARK, request_key="k"
    )
    return ExportResult(
        domain_name="shop",
        object_type="_profile",
        window=ExportWindow(start=datetime(2026, 11, 1, tzinfo=UTC), end=MARK),
        status=ExportStatus.SUCCEEDED,
        backfill=True,
        reconcile=True,
        current_state=update.model_copy(update={"statements": None, **current}),
    )


def test_a_merged_reconcile_and_the_export_that_confirms_it_are_named_in_messages_and_events():
    notify = NotifyInput(execution_arn="arn:x", results=[_result(merged=True)])
    message = build_message(notify, "b")
    assert "current state: merged into db.profile_state" in message
    # requested at the window's end: the last 30 minutes prove nothing
    assert (
        "ids older than 2026-11-26T23:30:00Z that the full export lacks are recorded in db.profile_deleted" in message
    )
    ((_, detail),) = result_events(notify, "b")
    assert detail["currentState"]["table"] == "db.profile_state" and detail["currentState"]["merged"] is True
    assert detail["reconcile"] is True and detail["currentState"]["confirmAfter"] == "2026-11-27T00:00:00Z"
    assert overall_status(notify) == "SUCCEEDED"
    confirming = _result(merged=True, reconcile=False, confirmed_reconcile="reconcile x", exact_as_of=MARK)
    message = build_message(NotifyInput(execution_arn="arn:y", results=[confirming]), "b")
    assert "reconcile confirmed: deleted and merged-away objects removed from profile_state" in message
    assert "shop is exact as of 2026-11-27T00:00:00Z" in message


def test_an_export_its_table_did_not_take_fails_the_execution_and_says_how_to_catch_up():
    from cpexport.models import ErrorInfo

    error = ErrorInfo(Error="States.TaskFailed", Cause="ICEBERG_COMMIT_ERROR")
    notify = NotifyInput(execution_arn="arn:x", results=[_result(merged=False, error=error)])
    assert overall_status(notify) == "FAILED"
    message = build_message(notify, "b")
    assert "NOT merged into db.profile_state" in message
    assert "cpexport rebuild-current --domain shop --type _profile" in message
    ((_, detail),) = result_events(notify, "b")
    assert detail["currentState"]["merged"] is False and detail["currentState"]["error"] == "States.TaskFailed"
