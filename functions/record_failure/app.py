"""Record a failed or timed-out export; the watermark stays so the next run covers the window."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from cpexport.clients.state_table import StateTable
from cpexport.config import get_settings
from cpexport.indexing import record_failure
from cpexport.models import FailedExport
from cpexport.observability import logger, metrics, record_export_metrics, tracer


@logger.inject_lambda_context(correlation_id_path="executionArn", clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=FailedExport)
def lambda_handler(event: FailedExport, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(object_type=event.object_type, domain_name=event.domain_name)
    result = record_failure(event, StateTable(get_settings().state_table_name))
    record_export_metrics(result)
    return result.to_wire()
