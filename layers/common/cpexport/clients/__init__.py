"""The only place the pipeline calls boto3.

Clients are created once per process with botocore's standard retry mode (transient errors
are retried here a few times; the state machine's Retry takes over after that), and read response
timestamps with `timestamps.fast_timestamp_parser` (listing a large job parsed its files' dates
with dateutil for most of the listing's CPU).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from botocore.config import Config

from cpexport.clients.timestamps import fast_timestamp_session

_USER_AGENT = "customer-profiles-export"


@cache
def client(service: str, attempts: int = 3) -> Any:
    """A cached boto3 client; endpoints come from the standard AWS_ENDPOINT_URL_* variables.

    `attempts=1` turns botocore's own retries off: for a call that starts something (an export job),
    a retry after an error that hid a success would be refused or start a second job.
    """
    # total_max_attempts counts the first call; botocore's `max_attempts` would count only retries.
    config = Config(retries={"mode": "standard", "total_max_attempts": attempts}, user_agent_extra=_USER_AGENT)
    return fast_timestamp_session().client(service, config=config)


def reset_clients() -> None:
    """Forget cached clients (tests that change endpoints or credentials)."""
    client.cache_clear()
