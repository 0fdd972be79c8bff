"""Start (or adopt) the export job of one domain x object type window."""

from typing import Any

from aws_lambda_powertools.utilities.idempotency import idempotent_function
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from cpexport.clients.appintegrations import AppIntegrations
from cpexport.clients.state_table import StateTable
from cpexport.config import get_settings
from cpexport.exports import start_export
from cpexport.idempotency import idempotency_config, persistence_store
from cpexport.models import ExportResult, ExportStatus, ExportTask
from cpexport.observability import logger, metrics, tracer


@idempotent_function(data_keyword_argument="task", config=idempotency_config, persistence_store=persistence_store())
def start(task: dict[str, Any]) -> dict[str, Any]:
    """Idempotent per execution and window: a retried invocation never submits a second job."""
    settings = get_settings()
    export = ExportTask.model_validate(task)
    started = start_export(export, settings, StateTable(settings.state_table_name), AppIntegrations())
    if started is not None:
        return started.to_wire()
    return ExportResult(
        domain_name=export.domain_name,
        object_type=export.object_type,
        window=export.window,
        status=ExportStatus.SKIPPED,
        message="another execution already exported this window",
        backfill=export.backfill,
        verification=export.verification,
    ).to_wire()


@logger.inject_lambda_context(correlation_id_path="executionArn", clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=ExportTask)
def lambda_handler(event: ExportTask, context: LambdaContext) -> dict[str, Any]:
    idempotency_config.register_lambda_context(context)
    logger.append_keys(object_type=event.object_type, domain_name=event.domain_name)
    return start(task=event.to_wire())
