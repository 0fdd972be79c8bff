"""Send the execution's one SNS notification and its result events."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from cpexport.clients.notifications import Notifications
from cpexport.config import get_settings
from cpexport.models import NotifyInput
from cpexport.notify import notify_on_call
from cpexport.observability import logger, metrics, tracer


@logger.inject_lambda_context(correlation_id_path="executionArn", clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=NotifyInput)
def lambda_handler(event: NotifyInput, context: LambdaContext) -> dict[str, Any]:
    return notify_on_call(event, get_settings(), Notifications()).to_wire()
