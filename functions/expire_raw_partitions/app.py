"""Drop the Glue partitions of raw exports the bucket's lifecycle rule is about to expire (daily schedule)."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from cpexport.catalog import database_name
from cpexport.clients.glue import GlueCatalog
from cpexport.config import get_settings
from cpexport.observability import logger, metrics, record_dropped_partitions, tracer
from cpexport.retention import RetentionTick, expire_raw_partitions


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=RetentionTick)
def lambda_handler(event: RetentionTick, context: LambdaContext) -> dict[str, Any]:
    settings = get_settings()
    result = expire_raw_partitions(
        event.scheduled_time,
        settings.raw_export_retention_days,
        database_name(settings.stack_name),
        settings.object_types,
        GlueCatalog(),
    )
    record_dropped_partitions(result)
    logger.info("raw partitions expired", extra=result.to_wire())
    return result.to_wire()
