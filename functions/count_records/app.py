"""Count the records of one batch of a job's files (a child of the indexing Distributed Map)."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from cpexport.clients.s3 import ExportBucket
from cpexport.config import get_settings
from cpexport.indexing import count_batch
from cpexport.models import CountBatchInput
from cpexport.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=CountBatchInput)
def lambda_handler(event: CountBatchInput, context: LambdaContext) -> dict[str, Any]:
    settings = get_settings()
    counted = count_batch(event, ExportBucket(event.batch_input.bucket), settings.kms_key_arn)
    logger.info("batch counted", extra={"files": counted.files, "records": counted.records, "part": counted.part})
    return counted.to_wire()
