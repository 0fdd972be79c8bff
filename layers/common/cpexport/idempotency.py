"""Powertools idempotency for the one step whose retry could repeat a side effect: starting a job."""

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig

from cpexport.clients import client
from cpexport.config import get_settings

# One key per execution, object type and window: a retried Lambda inside the same execution gets
# the first result back; another execution goes through the lease and adoption rules instead.
idempotency_config = IdempotencyConfig(
    event_key_jmespath="[executionArn, domainName, objectType, window.start, window.end]",
    raise_on_no_idempotency_key=True,
    expires_after_seconds=24 * 3600,
)


# The notification of an execution is sent once, whichever of its Notify states runs.
notify_idempotency_config = IdempotencyConfig(
    event_key_jmespath="executionArn",
    raise_on_no_idempotency_key=True,
    expires_after_seconds=24 * 3600,
)


def persistence_store() -> DynamoDBPersistenceLayer:
    """The idempotency table named by the function's environment."""
    return DynamoDBPersistenceLayer(table_name=get_settings().idempotency_table_name, boto3_client=client("dynamodb"))
