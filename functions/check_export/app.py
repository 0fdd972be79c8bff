"""Check the export job's status after one wait of the poll loop."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from cpexport.clients.appintegrations import AppIntegrations
from cpexport.config import get_settings
from cpexport.exports import check_export
from cpexport.models import PollingExport
from cpexport.observability import logger, metrics, tracer


@logger.inject_lambda_context(correlation_id_path="executionArn", clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=PollingExport)
def lambda_handler(event: PollingExport, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(object_type=event.object_type, domain_name=event.domain_name)
    checked = check_export(event, get_settings(), AppIntegrations())
    logger.info("export status", extra={"status": checked.status.value, "poll": checked.poll.to_wire()})
    return checked.to_wire()
