"""Send the execution's one SNS notification and its result events."""

from typing import Any

from aws_lambda_powertools.utilities.idempotency import idempotent_function
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from cpexport.clients.notifications import Notifications
from cpexport.config import get_settings
from cpexport.idempotency import notify_idempotency_config, persistence_store
from cpexport.models import NotifyInput
from cpexport.notify import notify_on_call
from cpexport.observability import logger, metrics, tracer


@idempotent_function(
    data_keyword_argument="notification", config=notify_idempotency_config, persistence_store=persistence_store()
)
def notify(notification: dict[str, Any]) -> dict[str, Any]:
    """Once per execution: a retried invocation (a Lambda that died after publishing) publishes nothing more."""
    return notify_on_call(NotifyInput.model_validate(notification), get_settings(), Notifications()).to_wire()


@logger.inject_lambda_context(correlation_id_path="executionArn", clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=NotifyInput)
def lambda_handler(event: NotifyInput, context: LambdaContext) -> dict[str, Any]:
    notify_idempotency_config.register_lambda_context(context)
    return notify(notification=event.to_wire())
