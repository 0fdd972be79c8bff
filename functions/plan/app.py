"""Plan: validate the input and choose one window per domain x object type."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from cpexport.clients.state_table import StateTable
from cpexport.config import get_settings
from cpexport.models import PlanInput
from cpexport.observability import logger, metrics, record_watermark_ages, tracer
from cpexport.planning import plan_exports


@logger.inject_lambda_context(correlation_id_path="executionArn", clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=PlanInput)
def lambda_handler(event: PlanInput, context: LambdaContext) -> dict[str, Any]:
    settings = get_settings()
    plan = plan_exports(event, settings, StateTable(settings.state_table_name))
    if plan.rejection is not None:
        logger.warning("request rejected", extra={"reason": plan.rejection.message})
        return plan.to_wire()
    record_watermark_ages(plan, settings.stack_name)
    logger.info("planned", extra={"exports": len(plan.exports), "skipped": len(plan.skipped)})
    return plan.to_wire()
