"""Powertools logger, tracer and metrics: created once, imported everywhere."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from cpexport.models import ExportResult, ExportStatus

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
