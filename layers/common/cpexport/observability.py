"""Powertools logger, tracer and metrics: created once, imported everywhere."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from cpexport.config import get_settings
from cpexport.models import ExportResult, ExportStatus, PlanOutput
from cpexport.retention import RetentionResult

logger = Logger()
tracer = Tracer()
metrics = Metrics()


def record_export_metrics(result: ExportResult) -> None:
    """Per object type metrics (files, bytes, records, duration, failures) for the dashboard and alarms."""
    dimensions = {"DomainName": result.domain_name, "ObjectType": result.object_type}
    values: list[tuple[str, MetricUnit, float]]
    if result.status == ExportStatus.SUCCEEDED:
        values = [
            ("ExportsSucceeded", MetricUnit.Count, 1),
            ("FilesExported", MetricUnit.Count, result.files),
            ("RecordsExported", MetricUnit.Count, result.records),
            ("BytesExported", MetricUnit.Bytes, result.bytes),
        ]
        if result.duration_seconds is not None:
            values.append(("ExportDuration", MetricUnit.Seconds, result.duration_seconds))
    else:
        values = [("ExportsFailed", MetricUnit.Count, 1)]
    for name, unit, value in values:
        with single_metric(name=name, unit=unit, value=value) as metric:
            for key, dimension in dimensions.items():
                metric.add_dimension(name=key, value=dimension)


def record_watermark_ages(plan: PlanOutput, stack_name: str) -> None:
    """How far behind each object type is at plan time: the dashboard's lag and the silent-failure alarm.

    `OldestWatermarkAgeHours` (dimension StackName only) is what the stale-export alarm watches:
    when no export of some object type has succeeded for too long, it grows past the threshold.
    """
    if any(task.backfill for task in plan.exports):
        return  # a backfill's window says nothing about how current the exports are
    ages = {(task.domain_name, task.object_type): plan.clock - task.window.start for task in plan.exports} | {
        (s.domain_name, s.object_type): plan.clock - s.watermark for s in plan.skipped if s.watermark is not None
    }
    if not ages:
        return
    for (domain_name, object_type), age in ages.items():
        with single_metric(name="WatermarkAgeHours", unit=MetricUnit.Count, value=age.total_seconds() / 3600) as metric:
            metric.add_dimension(name="DomainName", value=domain_name)
            metric.add_dimension(name="ObjectType", value=object_type)
    with single_metric(
        name="OldestWatermarkAgeHours", unit=MetricUnit.Count, value=max(ages.values()).total_seconds() / 3600
    ) as metric:
        metric.add_dimension(name="StackName", value=stack_name)


def record_failed_events(count: int) -> None:
    """Result events EventBridge did not take: the ResultEventsFailedAlarm watches this."""
    with single_metric(name="ResultEventsFailed", unit=MetricUnit.Count, value=count) as metric:
        metric.add_dimension(name="StackName", value=get_settings().stack_name)


def record_dropped_partitions(result: RetentionResult) -> None:
    """Partitions the retention job dropped and kept, per object type (the dashboard's view of retention)."""
    for table in result.tables:
        for name, value in (("PartitionsExpired", table.dropped), ("PartitionsKept", table.kept)):
            with single_metric(name=name, unit=MetricUnit.Count, value=value) as metric:
                metric.add_dimension(name="ObjectType", value=table.object_type)
