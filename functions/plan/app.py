"""Plan: validate the input, choose one window per domain x object type, and get the export catalog ready."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from cpexport.clients.glue import GlueCatalog
from cpexport.clients.state_table import StateTable
from cpexport.config import get_settings
from cpexport.models import PlanInput
from cpexport.observability import logger, metrics, record_watermark_ages, tracer
from cpexport.planning import ensure_export_catalog, missing_current_tables, plan_exports


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
    # Never for a rejected request (nothing changes then); a failure here alerts through NotifyBroken.
    catalog = GlueCatalog()
    changed = {name: done for name, done in ensure_export_catalog(settings, catalog).items() if done != "unchanged"}
    plan = plan.model_copy(update={"create_tables": missing_current_tables(settings, catalog)})
    record_watermark_ages(plan, settings.stack_name)
    logger.info(
        "planned", extra={"exports": len(plan.exports), "skipped": len(plan.skipped), "catalog_changes": changed}
    )
    return plan.to_wire()
