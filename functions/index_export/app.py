"""Index a completed export once its files settle: manifest, partition, run record, then the watermark."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from cpexport.clients.glue import GlueCatalog
from cpexport.clients.s3 import ExportBucket
from cpexport.clients.state_table import StateTable
from cpexport.config import get_settings
from cpexport.indexing import index_export
from cpexport.models import ExportResult, IndexingExport
from cpexport.observability import logger, metrics, record_export_metrics, tracer


@logger.inject_lambda_context(correlation_id_path="executionArn", clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=IndexingExport)
def lambda_handler(event: IndexingExport, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(object_type=event.object_type, domain_name=event.domain_name)
    settings = get_settings()
    result = index_export(
        event,
        settings,
        ExportBucket(settings.export_bucket_name),
        StateTable(settings.state_table_name),
        GlueCatalog(),
    )
    if isinstance(result, ExportResult):
        record_export_metrics(result)
    return result.to_wire()
